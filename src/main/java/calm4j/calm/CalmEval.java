package calm4j.calm;

import calm4j.engine.Engine;
import calm4j.engine.Progress;
import calm4j.engine.UserError;
import calm4j.eval.BrierLM;
import calm4j.loader.BlockBatches;
import calm4j.loader.LoaderState;
import calm4j.loader.TokenBatch;
import calm4j.nn.KVCache;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.cat;
import static calm4j.nn.Tensors.sum;

/**
 * BrierLM for a CALM (docs/method.md §4): at every chunk boundary of a held-out block, independent head samples (two
 * in the paper; more give the same expected score with less variance) are decoded by argmax and their first n
 * tokens compared with the true next n tokens and with each other. When
 * K < 4, each sample is rolled out over further chunks (its own sampled chunks fed back) until 4 tokens exist;
 * every position of a block is rolled out at once, as a batch whose attention to the block is masked per row.
 */
public final class CalmEval {
    private CalmEval() {}

    /** BrierLM over {@code batches} blocks of {@code data} with the paper's two samples per position. */
    public static Result evaluate(CalmModel model, BlockBatches data, long batches) {
        return evaluate(model, data, batches, 2);
    }

    /**
     * BrierLM over {@code batches} blocks of {@code data} (read in order from the start) from {@code samples} head
     * samples per position, plus the energy loss.
     */
    public static Result evaluate(CalmModel model, BlockBatches data, long batches, int samples) {
        return evaluate(model, data, batches, samples, Progress.none());
    }

    /** As {@link #evaluate(CalmModel, BlockBatches, long, int)}, stepping {@code progress} once per batch. */
    public static Result evaluate(CalmModel model, BlockBatches data, long batches, int samples, Progress progress) {
        return evaluate(model, blocks(data, batches), samples, data.blockTokens(), progress);
    }

    /** The first {@code batches} batches of {@code data} (at most one epoch), read from the start. */
    public static List<TokenBatch> blocks(BlockBatches data, long batches) {
        data.restore(LoaderState.START);
        long n = Math.min(batches, data.batchesPerEpoch());
        List<TokenBatch> blocks = new ArrayList<>();
        for (long i = 0; i < n; i++) blocks.add(data.next());
        return blocks;
    }

    /**
     * BrierLM over the given batches of blocks, each [rows, blockTokens], from {@code samples} per position;
     * {@code progress} steps once per batch.
     */
    public static Result evaluate(CalmModel model, List<TokenBatch> blocks, int samples, long blockTokens,
                                  Progress progress) {
        if (samples < 2) throw new UserError("BrierLM needs at least 2 samples per position");
        if (blocks.isEmpty()) throw new UserError("there is no block to evaluate on");
        boolean wasTraining = model.is_training();
        model.eval();
        BrierLM brier = new BrierLM();
        Mean backbone = new Mean();
        double loss = 0;
        var device = Layers.device(model);
        Engine.seed(0); // the same samples at every evaluation of the same weights
        try (NoGradGuard ng = new NoGradGuard()) {
            for (TokenBatch b : blocks) {
                loss += Engine.step(() -> {
                    Tensor tokens = b.tensor(device);
                    score(model, tokens, samples, brier, backbone);
                    return model.losses(tokens).head().item_double(); // comparable with or without aux
                });
                progress.step(1);
            }
        } finally {
            model.train(wasTraining);
        }
        return new Result(brier.result(), loss / blocks.size(), blockTokens, samples,
                backbone.count == 0 ? null : backbone.result());
    }

    /** A running mean with its standard error (positions treated as independent, as in {@link BrierLM}). */
    private static final class Mean {
        long count;
        double sum, sumSquares;

        void add(double[] values) {
            for (double v : values) {
                count++;
                sum += v;
                sumSquares += v * v;
            }
        }

        double[] result() {
            double mean = sum / count, var = Math.max(0, sumSquares / count - mean * mean);
            return new double[] {mean, Math.sqrt(var / Math.max(1, count - 1))};
        }
    }

    /**
     * The figures of one evaluation; {@code blockTokens} is the evaluation block size (results depend on it), and
     * {@code samples} the head samples per position (the standard errors depend on it, the expected values do not);
     * {@code headLoss} is the generative head's own training loss on the held-out blocks (the energy loss, or the
     * flow-matching loss, as {@link GenerativeHead#lossName()} says).
     */
    public record Result(BrierLM.Result brier, double headLoss, long blockTokens, int samples,
                         double[] auxBrier1) {
        /**
         * The exact Brier-1 of the training-only auxiliary token head's first-token distribution at the same
         * positions, {@code 2 p(y) - sum_x p(x)^2}, with its standard error ({mean, se}); null without that head.
         * It tells what the backbone knows about the next token, beside what the generative head's samples show:
         * the gap between the two is the head's to close.
         */
        public double[] auxBrier1() {
            return auxBrier1;
        }
    }

    /** Adds one estimate per position of {@code tokens} [B, (S+1)*K] to {@code brier}, from {@code n} samples. */
    static void score(CalmModel model, Tensor tokens, int n, BrierLM brier, Mean backbone) {
        int k = model.patchSize();
        long b = tokens.size(0), len = tokens.size(1), s = len / k - 1, p = b * s;
        int rollChunks = (BrierLM.MAX_N + k - 1) / k; // chunks each sample must cover
        Tensor inputs = tokens.narrow(1, 0, len - k);
        KVCache cache = rollChunks > 1 ? model.newCache() : null;
        try {
            Tensor h = model.hidden(inputs, cache).reshape(p, -1);
            Tensor first = model.sampleChunks(h, n); // [n, P, K]: independent samples per position
            Tensor samples = (rollChunks == 1 ? first : rollout(model, first, cache, b, s, rollChunks))
                    .narrow(2, 0, BrierLM.MAX_N);
            // The true continuation of position i: rollChunks*K tokens from chunk i+1 on (PAD past the block).
            Tensor pad = torch.full(new long[] {b, (long) rollChunks * k},
                    c((long) model.autoencoder().config().padId()), Layers.on(tokens, torch.ScalarType.Long));
            Tensor truth = cat(1, tokens, pad).unfold(1, (long) rollChunks * k, k)
                    .narrow(1, 1, s).reshape(p, (long) rollChunks * k).narrow(1, 0, BrierLM.MAX_N);
            if (backbone != null) {
                Tensor p1 = model.firstTokenProbabilities(h); // [P, V], null without the auxiliary head
                if (p1 != null) {
                    Tensor y = truth.select(1, 0).unsqueeze(1);                              // [P, 1]
                    Tensor exact = p1.gather(1, y).squeeze(1).mul(c(2.0)).sub(sum(p1.square(), 1)); // 2 p(y) - |p|^2
                    backbone.add(doubles(exact));
                }
            }
            Tensor hitRuns = prefixRuns(samples, truth.unsqueeze(0));                   // [n, P]
            Tensor pairRuns = prefixRuns(samples.unsqueeze(1), samples.unsqueeze(0));   // [n, n, P]
            // For each n-gram length g+1: per position, the samples that hit and the pairs that agree.
            long[][] hits = new long[BrierLM.MAX_N][], pairs = new long[BrierLM.MAX_N][];
            for (int g = 0; g < BrierLM.MAX_N; g++) {
                hits[g] = longs(sum(hitRuns.gt(c(g)), 0));
                // Ordered pairs including each sample with itself (always agreeing): (count - n) / 2 unordered.
                pairs[g] = longs(sum(pairRuns.gt(c(g)), 0, 1));
                for (int i = 0; i < p; i++) pairs[g][i] = (pairs[g][i] - n) / 2;
            }
            for (int i = 0; i < p; i++) {
                double[] est = new double[BrierLM.MAX_N];
                for (int g = 0; g < BrierLM.MAX_N; g++) est[g] = BrierLM.estimate(n, hits[g][i], pairs[g][i]);
                brier.add(est);
                brier.addAgreement(pairs[0][i] / (n * (n - 1) / 2.0));
            }
        } finally {
            if (cache != null) cache.clear();
        }
    }

    /** How many leading tokens of {@code a} and {@code b} (broadcast, last dimension MAX_N) are equal. */
    static Tensor prefixRuns(Tensor a, Tensor b) {
        return sum(a.eq(b).to(torch.ScalarType.Long).cumprod(-1), -1);
    }

    private static double[] doubles(Tensor t) {
        Tensor c = t.to(torch.ScalarType.Double).cpu().contiguous();
        double[] out = new double[(int) c.numel()];
        c.data_ptr_double().get(out);
        return out;
    }

    private static long[] longs(Tensor t) {
        Tensor c = t.to(torch.ScalarType.Long).cpu().contiguous();
        long[] out = new long[(int) c.numel()];
        c.data_ptr_long().get(out);
        return out;
    }

    /**
     * For K < 4: extends all samples of every position over {@code chunks} chunks, feeding each sampled chunk back
     * through the backbone on top of the block prefix of its position (the prefilled cache, cut at that position).
     * Returns [n, P, chunks*K] for {@code first} [n, P, K].
     */
    static Tensor rollout(CalmModel model, Tensor first, KVCache cache, long b, long s, int chunks) {
        int k = model.patchSize();
        long n = first.size(0);
        Tensor rows = torch.arange(c(b), Layers.on(first, torch.ScalarType.Long)).repeat(n); // row r*B + j
        Tensor firstBySeq = first.view(n, b, s, k);
        long width = (long) chunks * k;
        long[] all = new long[(int) (n * b * s * width)]; // [n, b, s, chunks*K], filled position by position
        for (long i = 0; i < s; i++) {
            // each position's cache copy and temporaries are freed before the next (O(S^2) memory otherwise)
            try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope()) {
                KVCache prefix = cache.prefix(i + 1, rows);
                try {
                    Tensor chunk = firstBySeq.select(2, i).reshape(n * b, k); // [nB, K]
                    TensorVector parts = new TensorVector(chunk);
                    for (int c = 1; c < chunks; c++) {
                        Tensor h = model.hidden(chunk, prefix).select(1, 0); // [nB, d]
                        chunk = model.sampleChunks(h, 1).select(0, 0);
                        parts.push_back(chunk);
                    }
                    long[] rolled = longs(torch.cat(parts, 1)); // [nB, chunks*K]
                    for (int row = 0; row < n * b; row++) {
                        System.arraycopy(rolled, (int) (row * width), all, (int) ((row * s + i) * width), (int) width);
                    }
                } finally {
                    prefix.clear();
                }
            }
        }
        return Tensor.create(all).view(n, b * s, width).to(first.device(), torch.ScalarType.Long);
    }
}
