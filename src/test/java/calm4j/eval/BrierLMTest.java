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

    @Test
    void theManySampleEstimateWithTwoSamplesIsTheTwoSampleEstimate() {
        for (boolean a : new boolean[] {false, true}) {
            for (boolean b : new boolean[] {false, true}) {
                for (boolean agree : new boolean[] {false, true}) {
                    assertEquals(BrierLM.estimate(a, b, agree), BrierLM.estimate(2, (a ? 1 : 0) + (b ? 1 : 0),
                            agree ? 1 : 0), 1e-12);
                }
            }
        }
    }

    @Test
    void theManySampleEstimateIsTheMeanOfTheTwoSampleEstimateOverAllPairs() {
        int[] samples = {3, 1, 3, 0, 3, 2, 1}; // outcome y = 3
        int s = samples.length;
        long hits = 0, agreeing = 0;
        double pairMean = 0;
        for (int i = 0; i < s; i++) {
            if (samples[i] == 3) hits++;
            for (int j = i + 1; j < s; j++) {
                if (samples[i] == samples[j]) agreeing++;
                pairMean += BrierLM.estimate(samples[i] == 3, samples[j] == 3, samples[i] == samples[j]);
            }
        }
        pairMean /= s * (s - 1) / 2.0;
        assertEquals(pairMean, BrierLM.estimate(s, hits, agreeing), 1e-12);
    }

    @Test
    void moreSamplesEstimateTheSameBrierScoreWithLessVariance() {
        // P = (0.5, 0.3, 0.2) over three outcomes, truth y = 1: Brier = 2 * 0.3 - (0.25 + 0.09 + 0.04) = 0.22.
        double[] p = {0.5, 0.3, 0.2};
        java.util.Random rng = new java.util.Random(7);
        int trials = 200_000;
        double[] mean = new double[2], var = new double[2];
        int[] sizes = {2, 16};
        for (int k = 0; k < 2; k++) {
            double sum = 0, sq = 0;
            for (int t = 0; t < trials; t++) {
                int[] counts = new int[3];
                for (int i = 0; i < sizes[k]; i++) {
                    double u = rng.nextDouble();
                    counts[u < p[0] ? 0 : u < p[0] + p[1] ? 1 : 2]++;
                }
                long pairs = 0;
                for (int c : counts) pairs += (long) c * (c - 1) / 2;
                double e = BrierLM.estimate(sizes[k], counts[1], pairs);
                sum += e;
                sq += e * e;
            }
            mean[k] = sum / trials;
            var[k] = sq / trials - mean[k] * mean[k];
        }
        assertEquals(0.22, mean[0], 0.01, "two samples");
        assertEquals(0.22, mean[1], 0.01, "sixteen samples");
        assertTrue(var[1] < var[0] / 5, "variance with 16 samples " + var[1] + " vs 2 samples " + var[0]);
    }
}
