package calm4j.report;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The report's first sentence states only what the measurements can tell apart. */
class ComparisonReportTest {
    static ComparisonReport.Row row(String kind, double brier1, double se, double tokensPerSecond) {
        var s = new ComparisonReport.Scores(1e13, new double[] {brier1, 0, 0, 0}, new double[] {se, 0, 0, 0}, 0, 0);
        return new ComparisonReport.Row(kind, kind, 1000, 1e13, 1e6, 1000, new double[] {tokensPerSecond,
                tokensPerSecond}, s, List.of(s));
    }

    @Test
    void aShareIsGivenWithItsErrorOnlyWhenBothScoresStandOutFromZero() {
        String both = ComparisonReport.versus(row("calm", 0.0211, 0.0018, 300), row("token", 0.0248, 0.0016, 100), 4);
        assertTrue(both.contains("Brier-1 is 85% +- 9% of the token model's"), both);
        assertTrue(both.contains("3.0x the token model's tokens/s"), both);
        // The demo's quick run: 0.00781 +- 0.0092 is inside one standard error of zero.
        String noise = ComparisonReport.versus(row("calm", 0.00781, 0.0092, 300), row("token", 0.00995, 0.003, 100),
                4);
        assertTrue(noise.contains("the CALM's Brier-1 cannot be told from zero"), noise);
        assertFalse(noise.contains("%"), noise);
        String tokenNoise = ComparisonReport.versus(row("calm", 0.02, 0.001, 300), row("token", 0.004, 0.003, 100),
                4);
        assertTrue(tokenNoise.contains("the token model's Brier-1 cannot be told from zero"), tokenNoise);
    }

    @Test
    void aRatiosStandardErrorCombinesBothRelativeErrors() {
        double[] r = ComparisonReport.ratio(2, 0.2, 4, 0.4);
        assertEquals(0.5, r[0], 1e-12);
        assertEquals(0.5 * Math.sqrt(0.02), r[1], 1e-12);
    }
}
