package calm4j.ar;

import calm4j.eval.BrierLM;
import calm4j.nn.KVCache;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.cat;

/**
 * BrierLM estimates for a model with explicit next-token probabilities (docs/method.md §4). At position t, for the
 * n-gram starting at t + 1:
 * <ul>
 *   <li>accuracy term: the exact probability of the true n-gram, the product of the teacher-forced conditionals;</li>
 *   <li>collision term sum_x P(x)^2: two sampled rollouts of n - 1 tokens; when their prefixes agree, the exact
 *       last-token collision sum_v P(v | prefix)^2 (an unbiased estimate: E[1{prefix1 = prefix2} c(prefix1)]
 *       = sum_p P(p)^2 sum_v P(v|p)^2).</li>
 * </ul>
 * Brier-n = 2 P(y) - sum_x P(x)^2 is estimated by their difference. Only positions with 4 true tokens after them in
 * the block count. With {@code chunk} > 1, only positions whose n-gram starts at a chunk boundary count, for a
 * like-for-like comparison with a CALM of that K.
 */
public final class TokenBrier {
    private TokenBrier() {}

    /** Adds the estimates of the positions of {@code tokens} [B, L] to {@code all} (and {@code aligned}, if given). */
    public static void score(NextTokenModel model, Tensor tokens, BrierLM all, BrierLM aligned, int chunk) {
        int n = BrierLM.MAX_N;
        long b = tokens.size(0), len = tokens.size(1), positions = len - n; // position t predicts t+1..t+n
        KVCache cache = model.newCache();
        try {
            Tensor probs = torch.softmax(model.logits(tokens, cache), -1, new ScalarTypeOptional()); // [B, L, V]
            // exact probability of the true continuation, per position and n: cumulative product of conditionals
            Tensor truthProb = probs.narrow(1, 0, len - 1).gather(2, tokens.narrow(1, 1, len - 1).unsqueeze(2))
                    .squeeze(2); // [B, L-1]: p(token t+1 | ..t)
            Tensor acc = truthProb.unfold(1, n, 1).narrow(1, 0, positions).cumprod(2); // [B, positions, n]
            float[] accuracy = floats(acc);
            float[] collision = new float[(int) (b * positions * n)];
            // n = 1: the exact collision of the next token
            float[] c1 = floats(probs.narrow(1, 0, positions).square().sum(new long[] {2}, false,
                    new ScalarTypeOptional()));
            for (int i = 0; i < b * positions; i++) collision[i * n] = c1[i];
            Tensor rows = torch.arange(c(b), Layers.on(probs, torch.ScalarType.Long)).repeat(2);
            for (long t = 0; t < positions; t++) {
                rollout(model, cache, rows, probs.select(1, t), t, b, collision, positions);
            }
            for (int row = 0; row < b; row++) {
                for (int t = 0; t < positions; t++) {
                    double[] est = new double[n];
                    int base = (int) ((row * positions + t) * n);
                    for (int k = 0; k < n; k++) est[k] = 2 * accuracy[base + k] - collision[base + k];
                    all.add(est);
                    if (aligned != null && (t + 1) % chunk == 0) aligned.add(est);
                }
            }
        } finally {
            cache.clear();
        }
    }

    /** Two rollouts of n - 1 tokens from position t for every row; fills the collision terms for n >= 2. */
    private static void rollout(NextTokenModel model, KVCache cache, Tensor rows, Tensor first, long t, long b,
                                float[] collision, long positions) {
        int n = BrierLM.MAX_N;
        // Each position's copy of the cache and its temporaries are freed before the next: held to the end of the
        // evaluation step, a 2,176-token block's would have been O(L^2) (22 GB).
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
            rolloutFrom(model, cache.prefix(t + 1, rows), first, t, b, collision, positions);
        }
    }

    private static void rolloutFrom(NextTokenModel model, KVCache prefix, Tensor first, long t, long b,
                                    float[] collision, long positions) {
        int n = BrierLM.MAX_N;
        try {
            Tensor p = cat(0, first, first); // [2B, V]: both samples start from position t
            Tensor agree = torch.ones(new long[] {b}, Layers.on(first, torch.ScalarType.Bool));
            for (int k = 1; k < n; k++) {
                Tensor x = torch.multinomial(p, 1, true, new GeneratorOptional()); // [2B, 1]
                agree = agree.logical_and(x.narrow(0, 0, b).eq(x.narrow(0, b, b)).squeeze(1));
                p = torch.softmax(model.logits(x, prefix).select(1, 0), -1, new ScalarTypeOptional());
                // sum_v P(v | prefix)^2 along the first rollout, counted where the two prefixes agree
                float[] c = floats(p.narrow(0, 0, b).square().sum(new long[] {1}, false, new ScalarTypeOptional())
                        .mul(agree.to(torch.ScalarType.Float)));
                for (int row = 0; row < b; row++) collision[(int) ((row * positions + t) * n + k)] = c[row];
            }
        } finally {
            prefix.clear();
        }
    }

    private static float[] floats(Tensor t) {
        Tensor c = t.to(torch.ScalarType.Float).cpu().contiguous();
        float[] out = new float[(int) c.numel()];
        c.data_ptr_float().get(out);
        return out;
    }

}
