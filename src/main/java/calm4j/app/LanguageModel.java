package calm4j.app;

import calm4j.engine.UserError;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.GenerationSession;
import calm4j.generate.Sampling;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A trained language-model run, whichever kind: what serving, the comparison report, the demo and the library need
 * of a model without knowing whether it steps K tokens at a time (a {@link CalmRun}) or one ({@link TokenLMRun}).
 * {@link #load} takes what {@link TrainedRun#load}, the one place that reads a run's kind, returns.
 */
public sealed interface LanguageModel extends TrainedRun permits CalmRun, TokenLMRun {
    /**
     * Loads the run in {@code dir}, of either kind, with its weights held as {@code type} for inference (fp16 and
     * int8 are packed from the float weights here, which takes seconds for a release-size model: a line says so).
     */
    static LanguageModel load(Path dir, calm4j.nn.WeightType type) {
        LanguageModel lm = load(dir);
        if (type != calm4j.nn.WeightType.FP32) {
            long t0 = System.nanoTime();
            System.err.printf("weights: %s, preparing them for %s inference ...", dir.getFileName(), type);
            lm.forInference(type);
            System.err.printf(" done in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        }
        return lm;
    }

    /** Loads the run in {@code dir}, of either kind; another kind of run is refused. */
    static LanguageModel load(Path dir) {
        TrainedRun run = TrainedRun.load(dir);
        if (run instanceof LanguageModel lm) return lm;
        run.close();
        throw new UserError(dir + " is an " + run.kind() + " run, not a language model: train a CALM (calm lm train) "
                + "or a token model (calm ar train)");
    }

    /** Readies the model's weights for inference as {@code type} (see {@link calm4j.nn.WeightType}). */
    void forInference(calm4j.nn.WeightType type);

    /** Tokens one generation step produces: K for a CALM, 1 for a token model. */
    int tokensPerStep();

    /** The longest prompt, in tokens, that leaves room for at least one generated step. */
    int maxPromptTokens();

    /** The most new tokens the context leaves after a prompt of {@code promptTokens}. */
    int maxNewTokens(int promptTokens);

    /** Throws a {@link UserError} naming the reason if this model cannot sample as {@code sampling} asks. */
    void checkSampling(Sampling sampling, GenerationOptions options);

    /**
     * A new, empty generation session (continuous batching: sequences join and leave between steps).
     *
     * @param stopAtEos whether EOS ends a sequence (benchmarks turn it off to time a fixed number of steps)
     */
    GenerationSession<?> newSession(GenerationOptions options, boolean stopAtEos);

    default GenerationSession<?> newSession(GenerationOptions options) {
        return newSession(options, true);
    }

    /** Bytes of KV cache a request's sequence takes at its full length when it runs alone. */
    default long cacheBytes(GenerationRequest request, GenerationOptions options) {
        try (GenerationSession<?> session = newSession(options)) {
            return session.cacheBytesWith(List.of(request));
        }
    }

    /** Generates every request as one batch and returns each one's new tokens, in order. */
    default List<int[]> generate(List<GenerationRequest> requests, GenerationOptions options, boolean stopAtEos) {
        try (GenerationSession<?> session = newSession(options, stopAtEos)) {
            List<Integer> ids = session.join(requests);
            int[][] out = new int[requests.size()][];
            while (!session.isEmpty()) {
                for (var e : session.step()) if (e.finished() != null) out[ids.indexOf(e.id())] = e.finished().tokens();
            }
            return new ArrayList<>(List.of(out));
        }
    }

    /** Trainable parameters that take part in generation (a CALM's frozen autoencoder is left out). */
    long parameterCount();

    /**
     * Generates a continuation of each prompt (sequence i with seed {@code seed + i}) and reports it as JSON with the
     * model's chunk boundaries: a CALM's report; a token model has no chunks and refuses.
     */
    default com.fasterxml.jackson.databind.node.ObjectNode generateJson(List<String> prompts, int maxTokens,
                                                                        Sampling sampling, GenerationOptions options,
                                                                        long seed) {
        throw UserError.badValue("json", "reports a CALM's chunks: " + dir() + " is a " + kind() + " run");
    }

    /** Training FLOPs per token: forward and backward, everything a step computes (see docs/method.md). */
    double trainingFlopsPerToken();

    /** Generation FLOPs per token. */
    double inferenceFlopsPerToken();

    /** Generation FLOPs per token by part of the model (they sum to {@link #inferenceFlopsPerToken()}). */
    java.util.Map<String, Double> inferenceFlopsByPart();
}
