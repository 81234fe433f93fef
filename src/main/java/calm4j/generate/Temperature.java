package calm4j.generate;

import calm4j.engine.UserError;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Sampling at temperature T = 1/n without likelihoods (docs/method.md §3). A CALM can only draw samples, so
 * P(x)^n is reached through agreement: n independent draws that all equal x occur with probability P(x)^n.
 * <ul>
 *   <li>batch approximation: draw a pool of candidates, count identical ones, and pick among those seen at least
 *       n times with weight C(count, n) (an unbiased estimate of P(x)^n up to a constant); if none was seen n times,
 *       use n - 1, and so on down to 1 (plain sampling from the pool);</li>
 *   <li>exact: draw n samples until all n agree, up to a cap of draws, after which the batch rule is used.</li>
 * </ul>
 * A temperature that is not 1/n for an integer n is refused rather than rounded.
 */
public final class Temperature {
    private Temperature() {}

    /** n for T = 1/n; refuses any other T. */
    public static int inverse(double temperature) {
        return inverse(temperature, Integer.MAX_VALUE);
    }

    /**
     * n for T = 1/n with n at most {@code maxN} (the candidate pool: n agreeing samples cannot be found among fewer
     * draws); refuses any other T.
     */
    public static int inverse(double temperature, int maxN) {
        if (!(temperature > 0) || temperature > 1) {
            throw new UserError("temperature must lie in (0, 1] and be 1/n for an integer n (1, 0.5, 0.3333, 0.25, "
                    + "...), got " + temperature);
        }
        double inv = 1 / temperature;
        if (inv > maxN + 0.5) {
            throw new UserError("temperature " + temperature + " is 1/" + String.format("%.6g", inv) + ", below the "
                    + "lowest this generator offers, 1/" + maxN + " = " + String.format("%.4g", 1.0 / maxN)
                    + ": T = 1/n needs n agreeing samples among the pool of " + maxN + " candidates (--pool)");
        }
        long n = Math.round(inv);
        if (Math.abs(inv - n) > 1e-3 * n) {
            throw new UserError("temperature " + temperature + " is not 1/n for an integer n: a CALM reaches "
                    + "P(x)^n by n agreeing samples, so only 1, 0.5, 0.3333, 0.25, ... are available (nearest: 1/"
                    + n + " = " + String.format("%.4f", 1.0 / n) + ")");
        }
        return (int) n;
    }

    /** C(count, n) as a double (counts are at most the pool size). */
    static double choose(int count, int n) {
        if (count < n) return 0;
        double c = 1;
        for (int i = 0; i < n; i++) c = c * (count - i) / (i + 1);
        return c;
    }

    /**
     * Picks one of {@code candidates} (each a chunk of K token ids) for T = 1/n by the batch rule.
     * Returns the index of a candidate holding the chosen chunk. A null candidate is a chunk known to occur once in
     * the pool, left undecoded ({@code ChunkAutoencoder.decodeRepeated}): it weighs C(1, m), as any chunk seen once.
     */
    public static int pick(List<long[]> candidates, int n, SplittableRandom rng) {
        Map<String, List<Integer>> groups = new HashMap<>();
        List<String> order = new ArrayList<>();
        for (int i = 0; i < candidates.size(); i++) {
            String key = candidates.get(i) == null ? "once:" + i : Arrays.toString(candidates.get(i));
            groups.computeIfAbsent(key, k -> {
                order.add(k);
                return new ArrayList<>();
            }).add(i);
        }
        for (int m = n; m >= 1; m--) {
            double total = 0;
            double[] w = new double[order.size()];
            for (int g = 0; g < order.size(); g++) total += w[g] = choose(groups.get(order.get(g)).size(), m);
            if (total == 0) continue;
            double u = rng.nextDouble() * total;
            int chosen = -1;
            for (int g = 0; g < order.size() && u >= 0; g++) {
                if (w[g] > 0) chosen = g; // the last group with weight, in case rounding leaves u >= 0
                u -= w[g];
            }
            return groups.get(order.get(chosen)).get(0);
        }
        throw new IllegalStateException("an empty pool");
    }
}
