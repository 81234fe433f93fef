package calm4j;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checks of learned behaviour (a trained model's score or success rate against a threshold), each printing what it
 * measured beside its threshold, so that a run of the suite shows how far every such check is from failing: the
 * thresholds are set at least four standard errors below what they measure, on one core and on two
 * ({@code grep '^margin:' target/surefire-reports/*-output.txt}).
 */
public final class Margins {
    private Margins() {}

    /** Asserts {@code measured >= threshold} and prints both; {@code context} is shown when it fails. */
    public static void atLeast(String what, double measured, double threshold, String context) {
        System.out.printf("margin: %s measured %.4g, threshold %.4g%n", what, measured, threshold);
        assertTrue(measured >= threshold, what + " = " + measured + " is below " + threshold + "\n" + context);
    }

    /** Asserts {@code count >= threshold} out of {@code of} trials and prints both. */
    public static void atLeast(String what, int count, int of, int threshold) {
        System.out.printf("margin: %s measured %d of %d, threshold %d%n", what, count, of, threshold);
        assertTrue(count >= threshold, what + ": " + count + " of " + of + ", below " + threshold);
    }
}
