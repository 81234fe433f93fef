package calm4j.generate;

import calm4j.engine.UserError;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class TemperatureTest {
    static List<long[]> pool(int a, int b, int c) {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < a; i++) out.add(new long[] {1, 1});
        for (int i = 0; i < b; i++) out.add(new long[] {2, 2});
        for (int i = 0; i < c; i++) out.add(new long[] {3, 3});
        java.util.Collections.shuffle(out, new java.util.Random(1));
        return out;
    }

    @Test
    void poolSelectionFollowsTheBinomialWeights() {
        // counts 6, 4, 2 at T = 1/2: weights C(6,2)=15, C(4,2)=6, C(2,2)=1
        List<long[]> pool = pool(6, 4, 2);
        double[] expected = {15 / 22.0, 6 / 22.0, 1 / 22.0};
        int draws = 22000;
        int[] seen = new int[3];
        SplittableRandom rng = new SplittableRandom(42);
        for (int i = 0; i < draws; i++) seen[(int) pool.get(Temperature.pick(pool, 2, rng))[0] - 1]++;
        double chi2 = 0;
        for (int g = 0; g < 3; g++) chi2 += Math.pow(seen[g] - draws * expected[g], 2) / (draws * expected[g]);
        assertTrue(chi2 < 13.82, "chi-square " + chi2 + " with 2 degrees of freedom (p = 0.001 at 13.82)");
    }

    @Test
    void fallsBackToSmallerNWhenNoChunkIsSeenNTimes() {
        List<long[]> pool = pool(2, 1, 1); // at T = 1/3 nothing is seen 3 times; at n = 2 only chunk 1 qualifies
        SplittableRandom rng = new SplittableRandom(1);
        for (int i = 0; i < 100; i++) assertEquals(1, pool.get(Temperature.pick(pool, 3, rng))[0]);
    }

    @Test
    void onlyTemperaturesOfTheFormOneOverNAreAccepted() {
        assertEquals(1, Temperature.inverse(1.0));
        assertEquals(2, Temperature.inverse(0.5));
        assertEquals(3, Temperature.inverse(1.0 / 3));
        assertEquals(3, Temperature.inverse(0.3333));
        for (double t : new double[] {0.7, 0.4, 0, -1, 1.5, Double.NaN}) {
            assertThrows(UserError.class, () -> Temperature.inverse(t), "T = " + t);
        }
    }
}
