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

    @Test
    void theGoalsTableGivesEveryScoresShareTheSpeedInBothWeightTypesAndTheFlopsSplit() {
        var sc = new ComparisonReport.Scores(1e13, new double[] {0.02, 0.001, 1e-5, 0}, new double[] {0.002, 0.0002,
                2e-5, 0}, 0, 0);
        var st = new ComparisonReport.Scores(1e13, new double[] {0.025, 0.002, 5e-5, 1e-5}, new double[] {0.002, 0.0002,
                1e-5, 2e-5}, 0, 0);
        var calm = new ComparisonReport.Row("calm-run", "calm", 1000, 1e13, 4e6, 1000, new double[] {800, 4000}, sc,
                List.of(sc), new double[] {1600, 6000}, java.util.Map.of("backbone", 1e6, "decoder", 3e6));
        var token = new ComparisonReport.Row("token-run", "token-lm", 1000, 1e13, 9e6, 1000, new double[] {400, 1000},
                st, List.of(st), new double[] {500, 1500}, java.util.Map.of("output layer", 2e6));
        String md = ComparisonReport.goals(List.of(token, calm));
        assertTrue(md.contains("| Brier-1 | 0.0200 +- 0.0020 | 0.0250 +- 0.0020 | 80% +- 10% | positive beyond 2 SE: met |"), md);
        assertTrue(md.contains("| Brier-3 | 1.00e-05 +- 2.0e-05 | 5.00e-05 +- 1.0e-05 | CALM's cannot be told from "
                + "zero | positive beyond 2 SE: not met |"), md);
        assertTrue(md.contains("token model's cannot be told from zero"), "Brier-4: " + md);
        assertTrue(md.contains("| tokens/s, batch 1, fp32 | 800 | 400 | 2.00x | >= 2x: met |"), md);
        assertTrue(md.contains("| tokens/s, batch 16, int8 | 6,000 | 1,500 | 4.00x | >= 3x: met |"), md);
        assertTrue(md.contains("| inference FLOPs/token | 4e6 | 9e6 | 0.44 | <= 0.5: met |"), md);
        assertTrue(md.contains("| - decoder | 3e6 | | 0.33 | |"), md);
        assertTrue(md.contains("| tokens/s, batch 16, fp32 | 4,000 | 1,000 | 4.00x | >= 3x: met |"), md);
        assertTrue(md.contains("| tokens/s, batch 1, int8 | 1,600 | 500 | 3.20x | >= 2x: met |"), md);
        assertTrue(md.contains("| BrierLM |") && md.contains("| >= 75%: "), md);
    }
}
