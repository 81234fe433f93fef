package calm4j.ae;

import calm4j.engine.Engine;
import calm4j.loader.ChunkBatches;
import calm4j.loader.LoaderState;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static calm4j.nn.Tensors.c;

/**
 * Held-out quality of a chunk autoencoder: how exactly chunks come back, how robust the latent is to noise, and how
 * many latent dimensions carry information. Accuracy counts real tokens only (PAD positions, trivially recovered,
 * are left out), decoding the posterior mean as the reference does in evaluation.
 */
public final class AutoencoderEval {
    public static final double[] NOISE_SIGMAS = {0.1, 0.3, 0.5};
    /** A dimension is active when its mean KL exceeds the clip floor by this many nats. */
    public static final double ACTIVE_MARGIN = 0.05;

    /** The figures of one evaluation. */
    public record Result(long chunks, long tokens, double loss, double tokenAccuracy, double chunkExactMatch,
                         double[] noisyAccuracy, double[] klPerDim, int activeDims, double activeThreshold) {
        public Map<String, Double> asMetrics() {
            Map<String, Double> m = new LinkedHashMap<>();
            m.put("loss", loss);
            m.put("token_accuracy", tokenAccuracy);
            m.put("chunk_exact_match", chunkExactMatch);
            for (int i = 0; i < NOISE_SIGMAS.length; i++) {
                m.put("token_accuracy_noise_" + NOISE_SIGMAS[i], noisyAccuracy[i]);
            }
            m.put("active_dims", (double) activeDims);
            m.put("kl_mean", Arrays.stream(klPerDim).average().orElse(0));
            return m;
        }
    }

    private AutoencoderEval() {}

    /** Evaluates on up to {@code maxBatches} batches of {@code data} (all of it when maxBatches <= 0). */
    public static Result evaluate(ChunkAutoencoder ae, ChunkBatches data, long maxBatches) {
        AutoencoderConfig c = ae.config();
        boolean wasTraining = ae.is_training();
        ae.eval();
        data.restore(LoaderState.START);
        long batches = maxBatches <= 0 ? data.batchesPerEpoch() : Math.min(maxBatches, data.batchesPerEpoch());
        long chunks = 0, tokens = 0, correct = 0, exact = 0;
        long[] noisyCorrect = new long[NOISE_SIGMAS.length];
        double lossSum = 0;
        double[] kl = new double[c.latentSize()];
        var device = Layers.device(ae);
        Engine.seed(0); // the noise in the robustness figures is the same at every evaluation
        try (NoGradGuard ng = new NoGradGuard()) {
            for (long b = 0; b < batches; b++) {
                TokenBatch batch = data.next();
                long[] counts = Engine.step(() -> {
                    Tensor x = batch.tensor(device);
                    Tensor real = x.ne(c((long) c.padId()));
                    ChunkAutoencoder.Posterior q = ae.encode(x);
                    Tensor logits = ae.decode(q.mu());
                    Tensor hit = logits.argmax(new LongOptional(-1), false).eq(x);
                    long[] out = new long[4 + NOISE_SIGMAS.length];
                    out[0] = real.sum().item_long();
                    out[1] = hit.logical_and(real).sum().item_long();
                    out[2] = hit.all(1).sum().item_long();
                    for (int i = 0; i < NOISE_SIGMAS.length; i++) {
                        Tensor z = q.mu().add(torch.randn_like(q.mu()).mul(c(NOISE_SIGMAS[i])));
                        out[4 + i] = ae.decodeTokens(z).eq(x).logical_and(real).sum().item_long();
                    }
                    Tensor klDims = q.klPerDim();
                    Tensor klSum = klDims.sum(new long[] {0}, false, new ScalarTypeOptional()).cpu().contiguous();
                    float[] k = new float[c.latentSize()];
                    klSum.data_ptr_float().get(k);
                    for (int i = 0; i < k.length; i++) kl[i] += k[i];
                    out[3] = Double.doubleToLongBits(ae.evalLoss(logits, x, klDims).item_double());
                    return out;
                });
                tokens += counts[0];
                correct += counts[1];
                exact += counts[2];
                lossSum += Double.longBitsToDouble(counts[3]);
                for (int i = 0; i < NOISE_SIGMAS.length; i++) noisyCorrect[i] += counts[4 + i];
                chunks += batch.rows();
            }
        } finally {
            ae.train(wasTraining);
        }
        double[] noisy = new double[NOISE_SIGMAS.length];
        for (int i = 0; i < noisy.length; i++) noisy[i] = (double) noisyCorrect[i] / tokens;
        for (int i = 0; i < kl.length; i++) kl[i] /= chunks;
        double threshold = c.klClamp() + ACTIVE_MARGIN;
        int active = 0;
        for (double v : kl) if (v > threshold) active++;
        return new Result(chunks, tokens, lossSum / batches, (double) correct / tokens, (double) exact / chunks,
                noisy, kl, active, threshold);
    }

}
