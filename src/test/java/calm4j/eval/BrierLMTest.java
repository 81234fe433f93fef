package calm4j.eval;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class BrierLMTest {
    static BrierLM.Result of(double[]... perPosition) {
        BrierLM b = new BrierLM();
        for (double[] p : perPosition) b.add(p);
        return b.result();
    }

    @Test
    void isOneHundredTimesTheGeometricMeanOfBrierOneToFour() {
        BrierLM.Result r = of(new double[] {1, 1, 1, 0}, new double[] {1, 0, 0, 0}, new double[] {0, 1, 0, 1},
                new double[] {1, 0, 1, 1});
        assertArrayEquals(new double[] {0.75, 0.5, 0.5, 0.5}, r.brier(), 1e-12);
        assertEquals(100 * Math.pow(0.75 * 0.5 * 0.5 * 0.5, 0.25), r.brierLM(), 1e-9);
        assertTrue(r.brierLMStandardError() > 0);
    }

    @Test
    void isZeroWhenAnyBrierIsNotPositiveEvenIfTheProductIsPositive() {
        // Two negative means multiply into a positive product; the score must still be 0, not 100 * |...|^(1/4).
        BrierLM.Result r = of(new double[] {-1, -1, 1, 1}, new double[] {0, 0, 1, 1});
        assertEquals(-0.5, r.brier()[0], 1e-12);
        assertEquals(0.0, r.brierLM());
        assertEquals(0.0, of(new double[] {1, 0, 0, 0}).brierLM(), "Brier-2 of 0 gives 0");
    }
}
