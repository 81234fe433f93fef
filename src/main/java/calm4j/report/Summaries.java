package calm4j.report;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.AutoencoderEval;
import calm4j.app.AutoencoderRun;
import calm4j.app.CalmRun;
import calm4j.app.TokenLMRun;
import calm4j.ar.TokenLMTask;
import calm4j.calm.CalmEval;
import calm4j.engine.UserError;
import calm4j.eval.BrierLM;
import calm4j.generate.GenerationOptions;
import calm4j.generate.Sampling;
import calm4j.loader.ConcatenatedBlocks;
import calm4j.train.Trainable;
import calm4j.train.Trainer;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * The text a person reads after training or evaluating a model: what was measured, on what, and the figures. The
 * command line and the demo print these; nothing here prints.
 */
public final class Summaries {
    private Summaries() {}

    /** Where a training run got to, at what speed, a language model's size and FLOPs, and its last evaluation. */
    public static String trained(String what, Path out, Trainer.Summary s) {
        Trainable.Cost c = s.cost();
        String details = c == null ? "" : String.format("; %,d trainable parameters; training FLOPs %.3g (%,d "
                + "tokens x %.3g per token); inference %.3g FLOPs/token", c.parameters(),
                s.tokensSeen() * c.trainingFlopsPerToken(), s.tokensSeen(), c.trainingFlopsPerToken(),
                c.inferenceFlopsPerToken());
        String line = String.format("%s run %s: step %d%s, %.0f s, %,.0f tokens/s%s", what, out, s.step(),
                s.interrupted() ? " (stopped early; run the same command to resume)" : "", s.seconds(),
                s.tokensPerSecond(), details);
        if (s.ranks() > 1) {
            line = String.format("data-parallel over %d ranks: %.1f ms per step averaging gradients%n%s", s.ranks(),
                    s.commMillisPerStep(), line);
        }
        return s.lastEval().isEmpty() ? line : line + "\nvalidation: " + Trainer.format(s.lastEval());
    }

    /** Reconstruction, robustness to noise on z, and the latent dimensions in use. */
    public static String autoencoder(AutoencoderRun ae, Path data, AutoencoderEval.Result r, boolean klPerDim) {
        AutoencoderConfig c = ae.model().config();
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("autoencoder %s (step %d) on %s val: %,d chunks, %,d tokens%n", ae.dir(), ae.step(),
                data, r.chunks(), r.tokens()));
        sb.append(String.format("  token accuracy        %.4f%%%n", 100 * r.tokenAccuracy()));
        sb.append(String.format("  chunk exact match     %.4f%%%n", 100 * r.chunkExactMatch()));
        for (int i = 0; i < AutoencoderEval.NOISE_SIGMAS.length; i++) {
            sb.append(String.format("  accuracy, sigma=%.1f   %.4f%%%n", AutoencoderEval.NOISE_SIGMAS[i],
                    100 * r.noisyAccuracy()[i]));
        }
        sb.append(String.format("  active latent dims    %d of %d (mean KL > %.2f nats)%n", r.activeDims(),
                c.latentSize(), r.activeThreshold()));
        double[] kl = r.klPerDim().clone();
        Arrays.sort(kl);
        sb.append(String.format("  KL per dim (nats)     min %.3f, median %.3f, max %.3f, total %.2f", kl[0],
                kl[kl.length / 2], kl[kl.length - 1], Arrays.stream(kl).sum()));
        if (klPerDim) {
            for (int i = 0; i < r.klPerDim().length; i++) {
                sb.append(String.format("%n    dim %3d  %.4f", i, r.klPerDim()[i]));
            }
        }
        return sb.toString();
    }

    /**
     * How a CALM is scored ({@code calm lm eval}).
     *
     * @param protocol    "calm4j" (blocks of the prepared corpus) or "official" (the authors': raw documents with BOS,
     *                    concatenated and cut into blocks of {@code blockTokens})
     * @param blockChunks calm4j: chunks per block (null: the config's eval_block_chunks)
     * @param samples     head samples per position (null: the config's eval_samples; 2 below T = 1)
     * @param sampling    below T = 1: the sampler at that temperature, each sample drawn as generation with
     *                    {@code generation} draws it (from a pool of candidates)
     */
    public record CalmScoring(String protocol, long batches, int batchSize, Integer blockChunks, Integer samples,
                              int blockTokens, Sampling sampling, GenerationOptions generation) {}

    /** Scores {@code calm} on {@code data} as {@code s} asks, and says what it found. */
    public static String calmScored(CalmRun calm, Path data, CalmScoring s, boolean quiet) {
        if (s.protocol().equals("official")) {
            return calmOfficial(calm, data, calm.evaluateOfficial(data, s.batches(), s.blockTokens(), s.samples(),
                    quiet), s.blockTokens());
        }
        if (!s.protocol().equals("calm4j")) {
            throw UserError.badValue("protocol", "must be calm4j or official, got " + s.protocol());
        }
        if (s.sampling().temperature() == 1) {
            return calm(calm, data, calm.evaluate(data, s.batches(), s.batchSize(), s.blockChunks(), s.samples(),
                    quiet));
        }
        int n = s.samples() != null ? s.samples() : 2;
        return calmTempered(calm, data, calm.evaluateTempered(data, s.batches(), s.batchSize(), n, s.sampling(),
                s.generation(), quiet), s.sampling().temperature(), s.generation().pool(), n);
    }

    /** A CALM's BrierLM on blocks of the prepared corpus, its head's loss, and the backbone's exact Brier-1. */
    public static String calm(CalmRun calm, Path data, CalmEval.Result r) {
        int k = calm.model().patchSize();
        // a block read from the corpus holds one chunk of context before the chunks it scores
        String s = String.format("CALM %s (step %d) on %s val, evaluation blocks of %d chunks (%d tokens), K=%d, "
                + "%d samples per position%n", calm.dir(), calm.step(), data, r.blockTokens() / k - 1,
                r.blockTokens(), k, r.samples()) + r.brier().format() + "\n" + headLoss(calm, r);
        return r.auxBrier1() == null ? s : s + String.format("%nbackbone's Brier-1 (exact, the auxiliary token head) "
                + "%.3g +- %.2g", r.auxBrier1()[0], r.auxBrier1()[1]);
    }

    /** A CALM scored by the authors' protocol on raw documents (docs/method.md §8). */
    public static String calmOfficial(CalmRun calm, Path data, CalmRun.OfficialEvaluation e, int blockTokens) {
        ConcatenatedBlocks.Result blocks = e.blocks();
        return String.format("CALM %s (step %d), the authors' protocol on %s: %,d documents with BOS, %,d tokens, "
                        + "%,d blocks of %d tokens (%,d evaluated, %,d tokens of remainder dropped), K=%d, %d "
                        + "samples per position%n", calm.dir(), calm.step(), data, blocks.documents(), blocks.tokens(),
                blocks.blocks().size(), blockTokens, e.evaluated(), blocks.dropped(), calm.model().patchSize(),
                e.result().samples()) + e.result().brier().format() + "\n" + headLoss(calm, e.result());
    }

    /** A CALM's sampler at a temperature below 1, scored by BrierLM. */
    public static String calmTempered(CalmRun calm, Path data, BrierLM.Result r, double temperature, int pool,
                                      int samples) {
        String rule = calm.model().sampler().tempers() ? "proposals tempered by T"
                : "pool " + pool + ", the T=1/n rule";
        return String.format("CALM %s (step %d) on %s val, sampled at T=%s (%s), %d samples per position%n",
                calm.dir(), calm.step(), data, temperature, rule, samples) + r.format();
    }

    /** A token model's cross-entropy, and BrierLM at every position and at the CALM's chunk-aligned ones. */
    public static String tokenModel(TokenLMRun r, Path data, TokenLMTask.Result res) {
        return String.format("token LM %s (step %d) on %s val, evaluation blocks of %d tokens%n", r.dir(), r.step(),
                data, res.blockTokens())
                + String.format("cross-entropy %.4f nats/token (perplexity %.2f)%n", res.loss(), Math.exp(res.loss()))
                + "every position:\n" + res.all().format() + "\n"
                + "chunk-aligned positions (K=" + r.patchSize() + "):\n" + res.aligned().format();
    }

    private static String headLoss(CalmRun calm, CalmEval.Result r) {
        return String.format("%s loss %.4f", calm.model().head().lossName(), r.headLoss());
    }
}
