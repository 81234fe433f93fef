package calm4j.generate;

import calm4j.engine.UserError;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Sampling a CALM at temperature T without likelihoods (docs/method.md §3). A CALM can only draw samples, so the
 * tempered distribution P(x)^(1/T) is reached through agreement among a pool of candidates.
 * <ul>
 *   <li>T = 1/n for an integer n (the method's own case): n independent draws all equal x with probability
 *       P(x)^n, and among a pool a chunk seen c times is chosen with weight C(c, n), an unbiased estimate of
 *       P(x)^n up to a constant. If no chunk was seen n times, n - 1 is used, and so on down to 1 (plain sampling
 *       from the pool). {@code exact} draws n at a time until all n agree instead.</li>
 *   <li>Any other T in (0, 2] (the batch approximation): the same rule with the generalised binomial
 *       C(c, a) = Gamma(c+1) / (Gamma(a+1) Gamma(c-a+1)) for a = 1/T, which is C(c, n) at a = n and continuous in
 *       a. It is not unbiased for a non-integer a, but consistent: with c ~ N P(x) for a pool of N it tends to
 *       N^a P(x)^a / Gamma(a+1), so the choice converges to P^a / sum P^a as the pool grows. T > 1 (a < 1)
 *       flattens by the same rule, among the chunks the pool holds.</li>
 *   <li>T = 0: the pool's most frequent chunk (the first drawn of those tied).</li>
 * </ul>
 * top_p and top_k apply to the chunks' weights after the temperature: the smallest set of most weighted chunks whose
 * share reaches top_p, and at most top_k of them.
 */
public final class Temperature {
    private Temperature() {}

    /** Whether {@code s} needs a pool of candidates (anything but plain sampling at T = 1). */
    public static boolean needsPool(Sampling s) {
        return !(s.temperature() == 1 && s.topP() == 1 && s.topK() == 0);
    }

    /** n when {@code temperature} is 1/n for an integer n (within 1e-3 n), else 0. */
    public static int inverseInteger(double temperature) {
        if (!(temperature > 0) || temperature > 1) return 0;
        double inv = 1 / temperature;
        long n = Math.round(inv);
        return Math.abs(inv - n) <= 1e-3 * n ? (int) n : 0;
    }

    /**
     * Refuses sampling settings a CALM cannot serve with a pool of {@code pool} candidates, naming the reason: token
     * penalties (it has no token probabilities), a temperature below 1/pool (so much agreement cannot be found
     * among the pool), or any pooled setting when the pool is a single candidate.
     */
    public static void check(Sampling s, int pool) {
        if (s.penalised()) {
            throw new UserError("presence_penalty and frequency_penalty need token probabilities, which a CALM does not "
                    + "have (it samples whole chunks from a continuous head): leave them at 0");
        }
        if (!needsPool(s)) return;
        if (pool < 2) {
            throw new UserError("temperature " + s.temperature() + ", top_p " + s.topP() + " and top_k " + s.topK()
                    + " choose among a pool of candidates, and this generator draws " + pool + ": use temperature 1 "
                    + "and top_p 1, or a pool of at least 2");
        }
        if (s.temperature() > 0 && 1 / s.temperature() > pool + 0.5) {
            throw new UserError("temperature " + s.temperature() + " is below the lowest this generator offers, 1/"
                    + pool + " = " + String.format("%.4g", 1.0 / pool) + ": T = 1/n needs n agreeing candidates among "
                    + "the pool of " + pool);
        }
    }

    /** C(count, n) as a double (counts are at most the pool size). */
    static double choose(int count, int n) {
        if (count < n) return 0;
        double c = 1;
        for (int i = 0; i < n; i++) c = c * (count - i) / (i + 1);
        return c;
    }

    /**
     * The generalised binomial C(c, a) for each count (0 where c - a + 1 <= 0: there Gamma(c - a + 1) has a pole
     * or a negative value, and the weight is taken as none); exact integer arithmetic when a is an integer.
     */
    static double[] weights(int[] counts, double a) {
        double[] w = new double[counts.length];
        if (a == Math.rint(a)) {
            for (int g = 0; g < counts.length; g++) w[g] = choose(counts[g], (int) a);
            return w;
        }
        double[] c1 = new double[counts.length], ca1 = new double[counts.length];
        for (int g = 0; g < counts.length; g++) {
            c1[g] = counts[g] + 1;
            ca1[g] = Math.max(counts[g] - a + 1, 1e-300); // masked below where it is not positive
        }
        double[] lg1 = lgamma(c1), lg2 = lgamma(ca1), lga = lgamma(new double[] {a + 1});
        for (int g = 0; g < counts.length; g++) {
            w[g] = counts[g] - a + 1 > 0 ? Math.exp(lg1[g] - lga[0] - lg2[g]) : 0;
        }
        return w;
    }

    private static double[] lgamma(double[] x) {
        Tensor t = Tensor.create(x).lgamma();
        double[] out = new double[x.length];
        t.contiguous().data_ptr_double().get(out);
        return out;
    }

    /**
     * Picks one of {@code candidates} (each a chunk of K token ids) by the rules above. Returns the index of a
     * candidate holding the chosen chunk. A null candidate is a chunk known to occur once in the pool, left
     * undecoded ({@code ChunkAutoencoder.decodeRepeated}): it weighs as any chunk seen once.
     */
    public static int pick(List<long[]> candidates, Sampling s, SplittableRandom rng) {
        Map<String, List<Integer>> groups = new HashMap<>();
        List<String> order = new ArrayList<>();
        for (int i = 0; i < candidates.size(); i++) {
            String key = candidates.get(i) == null ? "once:" + i : Arrays.toString(candidates.get(i));
            groups.computeIfAbsent(key, k -> {
                order.add(k);
                return new ArrayList<>();
            }).add(i);
        }
        if (order.isEmpty()) throw new IllegalStateException("an empty pool");
        int[] counts = order.stream().mapToInt(k -> groups.get(k).size()).toArray();
        if (s.greedy()) {
            int best = 0;
            for (int g = 1; g < counts.length; g++) if (counts[g] > counts[best]) best = g;
            return groups.get(order.get(best)).get(0);
        }
        for (double a = 1 / s.temperature(); ; a = Math.max(1, a - 1)) {
            double[] w = nucleus(weights(counts, a), s.topP(), s.topK());
            double total = Arrays.stream(w).sum();
            if (total > 0) return groups.get(order.get(draw(w, total, rng))).get(0);
            if (a <= 1) throw new IllegalStateException("no candidate has weight at exponent 1");
        }
    }

    /** A group drawn with probability w[g] / total, by one uniform from {@code rng}. */
    private static int draw(double[] w, double total, SplittableRandom rng) {
        double u = rng.nextDouble() * total;
        int chosen = -1;
        for (int g = 0; g < w.length && u >= 0; g++) {
            if (w[g] > 0) chosen = g; // the last group with weight, in case rounding leaves u >= 0
            u -= w[g];
        }
        return chosen;
    }

    /** The weights with all but the top-k, then all beyond the top-p share, set to zero (ties kept in pool order). */
    static double[] nucleus(double[] w, double topP, int topK) {
        if (topP >= 1 && (topK == 0 || topK >= w.length)) return w;
        double total = Arrays.stream(w).sum();
        if (total == 0) return w;
        Integer[] byWeight = new Integer[w.length];
        for (int g = 0; g < w.length; g++) byWeight[g] = g;
        Arrays.sort(byWeight, Comparator.comparingDouble((Integer g) -> -w[g])); // stable: pool order on ties
        double[] kept = new double[w.length];
        double mass = 0;
        for (int i = 0; i < byWeight.length; i++) {
            int g = byWeight[i];
            if (w[g] == 0 || topK > 0 && i >= topK || mass >= topP * total) break;
            kept[g] = w[g];
            mass += w[g];
        }
        return kept;
    }
}
