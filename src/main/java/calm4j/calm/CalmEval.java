package calm4j.calm;

import calm4j.data.BlockBatches;
import calm4j.data.LoaderState;
import calm4j.data.TokenBatch;
import calm4j.engine.Engine;
import calm4j.eval.BrierLM;
import calm4j.nn.KVCache;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * BrierLM for a CALM (spec section 4): at every chunk boundary of a held-out block, two independent head samples
 * are decoded by argmax and their first n tokens compared with the true next n tokens and with each other. When
 * K < 4, each sample is rolled out over further chunks (its own sampled chunks fed back) until 4 tokens exist;
 * every position of a block is rolled out at once, as a batch whose attention to the block is masked per row.
 */
public final class CalmEval {
    private CalmEval() {}

    /** BrierLM over {@code batches} blocks of {@code data} (read in order from the start), plus the energy loss. */
    public static Result evaluate(CalmModel model, BlockBatches data, long batches) {
        boolean wasTraining = model.is_training();
        model.eval();
        data.restore(LoaderState.START);
        BrierLM brier = new BrierLM();
        double loss = 0;
        long n = Math.min(batches, data.batchesPerEpoch());
        var device = Layers.device(model);
        Engine.seed(0); // the same samples at every evaluation of the same weights
        try (NoGradGuard ng = new NoGradGuard()) {
            for (long i = 0; i < n; i++) {
                TokenBatch b = data.next();
                loss += Engine.step(() -> {
                    Tensor tokens = b.tensor(device);
                    score(model, tokens, brier);
                    return model.loss(tokens).item_double();
                });
            }
        } finally {
            model.train(wasTraining);
        }
        return new Result(brier.result(), loss / n, data.blockTokens());
    }

    /** The figures of one evaluation; {@code blockTokens} is the evaluation block size (results depend on it). */
    public record Result(BrierLM.Result brier, double energyLoss, long blockTokens) {}

    /** Adds one estimate per position of {@code tokens} [B, (S+1)*K] to {@code brier}. */
    static void score(CalmModel model, Tensor tokens, BrierLM brier) {
        int k = model.patchSize();
        long b = tokens.size(0), len = tokens.size(1), s = len / k - 1, p = b * s;
        int rollChunks = (BrierLM.MAX_N + k - 1) / k; // chunks each sample must cover
        Tensor inputs = tokens.narrow(1, 0, len - k);
        KVCache cache = rollChunks > 1 ? model.newCache() : null;
        try {
            Tensor h = model.hidden(inputs, cache).reshape(p, -1);
            Tensor first = model.sampleChunks(h, 2); // [2, P, K]: two independent samples per position
            Tensor samples = rollChunks == 1 ? first : rollout(model, first, cache, b, s, rollChunks);
            // The true continuation of position i: rollChunks*K tokens from chunk i+1 on (PAD past the block).
            Tensor pad = torch.full(new long[] {b, (long) rollChunks * k},
                    new Scalar((long) model.autoencoder().config().padId()), Layers.on(tokens, torch.ScalarType.Long));
            Tensor truth = torch.cat(new TensorVector(tokens, pad), 1).unfold(1, (long) rollChunks * k, k)
                    .narrow(1, 1, s).reshape(p, (long) rollChunks * k);
            long[] hit1 = prefixMatches(samples.select(0, 0), truth), hit2 = prefixMatches(samples.select(0, 1), truth),
                    agree = prefixMatches(samples.select(0, 0), samples.select(0, 1));
            for (int i = 0; i < p; i++) {
                double[] est = new double[BrierLM.MAX_N];
                for (int n = 0; n < BrierLM.MAX_N; n++) est[n] = BrierLM.estimate(hit1[i] > n, hit2[i] > n, agree[i] > n);
                brier.add(est);
            }
        } finally {
            if (cache != null) cache.clear();
        }
    }

    /** How many leading tokens (up to MAX_N) of each row of {@code a} equal those of {@code b}. */
    static long[] prefixMatches(Tensor a, Tensor b) {
        Tensor eq = a.narrow(1, 0, BrierLM.MAX_N).eq(b.narrow(1, 0, BrierLM.MAX_N)).to(torch.ScalarType.Long);
        Tensor run = eq.cumprod(1).sum(new long[] {1}, false, new ScalarTypeOptional()).cpu().contiguous();
        long[] out = new long[(int) run.size(0)];
        run.data_ptr_long().get(out);
        return out;
    }

    /**
     * For K < 4: extends both samples of every position over {@code chunks} chunks, feeding each sampled chunk back
     * through the backbone on top of the block prefix of its position (the prefilled cache, cut at that position).
     * Returns [2, P, chunks*K].
     */
    static Tensor rollout(CalmModel model, Tensor first, KVCache cache, long b, long s, int chunks) {
        int k = model.patchSize();
        Tensor rows = torch.arange(new Scalar(b), Layers.on(first, torch.ScalarType.Long)).repeat(2); // row r*B + j
        Tensor firstBySeq = first.view(2, b, s, k);
        Tensor[] perPosition = new Tensor[(int) s];
        for (long i = 0; i < s; i++) {
            KVCache prefix = cache.prefix(i + 1, rows);
            try {
                Tensor chunk = firstBySeq.select(2, i).reshape(2 * b, k); // [2B, K]
                TensorVector parts = new TensorVector(chunk);
                for (int c = 1; c < chunks; c++) {
                    Tensor h = model.hidden(chunk, prefix).select(1, 0); // [2B, d]
                    chunk = model.sampleChunks(h, 1).select(0, 0);
                    parts.push_back(chunk);
                }
                perPosition[(int) i] = torch.cat(parts, 1).view(2, b, 1, (long) chunks * k);
            } finally {
                prefix.clear();
            }
        }
        return torch.cat(new TensorVector(perPosition), 2).reshape(2, b * s, (long) chunks * k);
    }
}
