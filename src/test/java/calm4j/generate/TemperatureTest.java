package calm4j.generate;

import calm4j.engine.UserError;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class TemperatureTest {
    static List<long[]> pool(int... counts) {
        List<long[]> out = new ArrayList<>();
        for (int g = 0; g < counts.length; g++) for (int i = 0; i < counts[g]; i++) out.add(new long[] {g + 1, g + 1});
        java.util.Collections.shuffle(out, new java.util.Random(1));
        return out;
    }

    /** How often each chunk (1, 2, ...) is picked from {@code pool} in {@code draws} picks. */
    static double[] shares(List<long[]> pool, int groups, Sampling s, int draws) {
        double[] seen = new double[groups];
        SplittableRandom rng = new SplittableRandom(42);
        for (int i = 0; i < draws; i++) seen[(int) pool.get(Temperature.pick(pool, s, rng))[0] - 1]++;
        for (int g = 0; g < groups; g++) seen[g] /= draws;
        return seen;
    }

    @Test
    void atOneOverNAChunkSeenCTimesIsChosenWithWeightCChooseN() {
        // counts 6, 4, 2 at T = 1/2: weights C(6,2)=15, C(4,2)=6, C(2,2)=1
        List<long[]> pool = pool(6, 4, 2);
        double[] expected = {15 / 22.0, 6 / 22.0, 1 / 22.0};
        int draws = 22000;
        double[] seen = shares(pool, 3, Sampling.at(0.5), draws);
        double chi2 = 0;
        for (int g = 0; g < 3; g++) chi2 += Math.pow(draws * (seen[g] - expected[g]), 2) / (draws * expected[g]);
        assertTrue(chi2 < 13.82, "chi-square " + chi2 + " with 2 degrees of freedom (p = 0.001 at 13.82)");
    }

    @Test
    void fallsBackToSmallerNWhenNoChunkIsSeenNTimes() {
        List<long[]> pool = pool(2, 1, 1); // at T = 1/3 nothing is seen 3 times; at n = 2 only chunk 1 qualifies
        assertEquals(1.0, shares(pool, 3, Sampling.at(1.0 / 3), 200)[0]);
    }

    @Test
    void theGeneralisedBinomialAgreesWithTheBinomialAtIntegersAndIsContinuousBetween() {
        int[] counts = {1, 2, 5, 9};
        double[] at2 = Temperature.weights(counts, 2), near2 = Temperature.weights(counts, 2 + 1e-9);
        for (int g = 0; g < counts.length; g++) assertEquals(at2[g], near2[g], 1e-6 * (1 + at2[g]));
        double[] w = Temperature.weights(new int[] {6}, 1.5); // Gamma(7) / (Gamma(2.5) Gamma(5.5))
        assertEquals(720 / (1.329340388 * 52.34277778), w[0], 1e-6);
        assertEquals(0, Temperature.weights(new int[] {1}, 2.5)[0], "c - a + 1 <= 0 weighs nothing");
    }

    @Test
    void aTemperatureThatIsNotOneOverNApproachesPToThePowerOneOverTAsThePoolGrows() {
        // P = (0.6, 0.3, 0.1) at T = 0.7 (a = 1/T): the target is P^a / sum P^a. Pools of 20 and of 2,000
        // candidates with the expected counts: the large pool is within 0.01 of it, and nearer than the small one.
        double a = 1 / 0.7;
        double[] p = {0.6, 0.3, 0.1};
        double z = 0;
        for (double x : p) z += Math.pow(x, a);
        double smallError = 0, largeError = 0;
        int[] small = {12, 6, 2}, large = {1200, 600, 200};
        double[] ws = Temperature.weights(small, a), wl = Temperature.weights(large, a);
        double ts = ws[0] + ws[1] + ws[2], tl = wl[0] + wl[1] + wl[2];
        for (int g = 0; g < 3; g++) {
            double target = Math.pow(p[g], a) / z;
            smallError += Math.abs(ws[g] / ts - target);
            largeError += Math.abs(wl[g] / tl - target);
        }
        assertTrue(largeError < 0.01, "pool of 2,000: total error " + largeError);
        assertTrue(largeError < smallError, largeError + " vs " + smallError);
    }

    @Test
    void temperatureZeroIsThePoolsMostFrequentChunk() {
        assertEquals(1.0, shares(pool(3, 5, 2), 3, Sampling.at(0), 50)[1]);
    }

    @Test
    void aTemperatureAboveOneFlattensThePoolsFrequencies() {
        double[] plain = shares(pool(8, 2), 2, Sampling.at(1), 20000);
        double[] flat = shares(pool(8, 2), 2, Sampling.at(2), 20000);
        assertEquals(0.8, plain[0], 0.015);
        assertTrue(flat[0] < 0.7 && flat[0] > 0.5, "T = 2 gives the common chunk " + flat[0]);
    }

    @Test
    void topPKeepsTheSmallestSetOfMostWeightedChunksReachingItsShare() {
        // shares 0.5, 0.3, 0.2 at T = 1: top_p 0.7 keeps the first two (0.5 < 0.7 <= 0.8), renormalised
        double[] s = shares(pool(5, 3, 2), 3, Sampling.at(1).withTopP(0.7), 20000);
        assertEquals(0, s[2]);
        assertEquals(5 / 8.0, s[0], 0.015);
    }

    @Test
    void aCalmRefusesPenaltiesAndTemperaturesItsPoolCannotServe() {
        assertThrows(UserError.class, () -> Temperature.check(Sampling.at(1).withPenalties(0.5, 0), 200));
        assertThrows(UserError.class, () -> Temperature.check(Sampling.at(0.5), 1), "a pool of one cannot agree");
        assertThrows(UserError.class, () -> Temperature.check(Sampling.at(0.004), 200), "1/T above the pool");
        assertDoesNotThrow(() -> Temperature.check(Sampling.at(1), 1));
        for (double t : new double[] {0, 0.333, 0.7, 1.5, 2}) assertDoesNotThrow(() -> Temperature.check(Sampling.at(t), 200));
        for (double t : new double[] {-0.1, 2.01, Double.NaN}) assertThrows(UserError.class, () -> Sampling.at(t));
    }

    @Test
    void oneOverAnIntegerIsRecognisedWithinRounding() {
        assertEquals(1, Temperature.inverseInteger(1.0));
        assertEquals(2, Temperature.inverseInteger(0.5));
        assertEquals(3, Temperature.inverseInteger(0.3333));
        for (double t : new double[] {0.7, 0.4, 0, 1.5}) assertEquals(0, Temperature.inverseInteger(t), "T = " + t);
    }
}
