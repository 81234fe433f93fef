package calm4j.run;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class PlotsTest {
    @Test
    void axisNumbersReadAsPeopleWriteThem() {
        assertEquals("4.2e12", Plots.human(4.1731227648e12));
        assertEquals("1e14", Plots.human(9.99e13), "rounding carries into the next power");
        assertEquals("3.1e-5", Plots.human(3.14e-5));
        assertEquals("-2e-4", Plots.human(-2e-4));
        assertEquals("0.0123", Plots.human(0.012345));
        assertEquals("250", Plots.human(250));
        assertEquals("0.5", Plots.human(0.5));
        assertEquals("0", Plots.human(0));
    }
}
