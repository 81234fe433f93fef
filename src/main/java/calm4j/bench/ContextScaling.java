package calm4j.bench;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.ar.TokenLM;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmModel;
import calm4j.engine.Configs;
import calm4j.engine.Engine;
import calm4j.engine.Memory;
import calm4j.engine.Presets;
import calm4j.generate.CalmGenerator;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.GenerationSession;
import calm4j.generate.TokenGenerator;
import calm4j.nn.WeightType;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * How a step's cost grows with the context, for a CALM and the token model with its backbone: at each context length
 * a prompt that fills it (all but the new tokens' room) is prefilled, then a few steps are decoded with the cache that
 * full. The CALM holds one position per K tokens, so its cache is K times smaller and its attention K times shorter;
 * the method's speed argument is about this length.
 */
public final class ContextScaling {
    private ContextScaling() {}

    /** New tokens decoded after the prompt (16 CALM steps of K = 4, 64 token-model steps). */
    static final int NEW_TOKENS = 64;

    /**
     * One model at one context length.
     *
     * @param prefillTokensPerS prompt tokens over the prefill's time (the first token's time less one decoding step)
     * @param decodeMsPerStep   the median decoding step with the cache filled to the context
     * @param cacheBytes        the KV cache of one sequence at this context (every layer's keys and values)
     */
    public record Row(String size, String model, String dtype, int contextTokens, int promptTokens,
                      double prefillTokensPerS, double decodeTokensPerS, double decodeMsPerStep, long cacheBytes,
                      double residentGb) {
        public ObjectNode json() {
            ObjectNode o = Configs.JSON.createObjectNode();
            o.put("path", "context").put("size", size).put("model", model).put("dtype", dtype)
                    .put("context_tokens", contextTokens).put("prompt_tokens", promptTokens)
                    .put("prefill_tokens_per_s", prefillTokensPerS).put("decode_tokens_per_s", decodeTokensPerS)
                    .put("decode_ms_per_step", decodeMsPerStep).put("cache_bytes_per_sequence", cacheBytes)
                    .put("resident_gb", residentGb);
            return o;
        }
    }

    /**
     * Both models at every context in {@code contexts} (tokens), with {@code preset}'s shapes (null: the default
     * configuration, its context raised to fit) and weights of {@code type}; {@code steps} decoding steps timed.
     */
    public static List<Row> measure(String preset, WeightType type, int[] contexts, int steps) {
        var json = preset == null ? null : Presets.readNameOrFile(preset);
        String where = preset == null ? "default" : "preset " + preset;
        CalmConfig c0 = json == null ? CalmConfig.DEFAULTS : Configs.section(json, "model", CalmConfig.DEFAULTS,
                CalmConfig.class, where);
        AutoencoderConfig a = json == null ? AutoencoderConfig.DEFAULTS.withVocabulary(Benchmarks.BENCH_VOCAB,
                Benchmarks.BENCH_PAD, Benchmarks.BENCH_MASK, Benchmarks.BENCH_EOS)
                : Configs.section(json, "autoencoder", AutoencoderConfig.DEFAULTS, AutoencoderConfig.class, where);
        int k = a.patchSize();
        String size = preset == null ? "default" : preset;
        List<Row> rows = new ArrayList<>();
        for (int context : contexts) {
            // The context holds the prompt and the new tokens' chunks; positions as the model counts them.
            int chunks = context / k;
            CalmConfig c = c0.with("context_chunks", chunks, "eval_block_chunks", Math.min(chunks,
                    c0.evalBlockChunks()));
            int prompt = context - NEW_TOKENS - 2 * k;
            System.gc();
            Engine.seed(0);
            CalmModel calm = new CalmModel(c, new ChunkAutoencoder(a));
            calm.forInference(type);
            rows.add(calmRow(size, type, calm, context, prompt, steps));
            calm = null;
            System.gc();
            org.bytedeco.javacpp.Pointer.trimMemory();
            Engine.seed(0);
            TokenLM token = Benchmarks.tokenModelLike(c, a);
            token.forInference(type);
            rows.add(tokenRow(size, type, token, k, context, prompt, steps));
            token = null;
            System.gc();
            org.bytedeco.javacpp.Pointer.trimMemory();
        }
        return rows;
    }

    private static Row calmRow(String size, WeightType type, CalmModel model, int context, int prompt, int steps) {
        var ae = model.autoencoder().config();
        var gen = new CalmGenerator(model, ae.eosId(), ae.padId(), GenerationOptions.DEFAULT).stopAtEos(false);
        Timed t = time(() -> gen.session(), ae.vocabSize(), prompt, steps, 32);
        long positions = (prompt + ae.patchSize() - 1) / ae.patchSize() + 1; // the boundary chunk too
        return new Row(size, "calm", type.label(), context, prompt, prompt / t.prefillSeconds(),
                ae.patchSize() * 1000 / t.stepMs(), t.stepMs(), positions * model.cacheBytesPerPosition(),
                Memory.residentGb());
    }

    private static Row tokenRow(String size, WeightType type, TokenLM model, int k, int context, int prompt,
                                int steps) {
        var gen = new TokenGenerator(model, Benchmarks.BENCH_EOS, Benchmarks.BENCH_PAD, k).stopAtEos(false);
        Timed t = time(() -> gen.session(), model.vocabSize(), prompt, steps * k, 32);
        long positions = prompt + k; // the boundary too
        return new Row(size, "token", type.label(), context, prompt, prompt / t.prefillSeconds(),
                1000 / t.stepMs(), t.stepMs(), positions * model.cacheBytesPerPosition(), Memory.residentGb());
    }

    private record Timed(double prefillSeconds, double stepMs) {}

    /**
     * A session's prefill of a {@code prompt}-token prompt and its {@code steps} following steps (after a warm-up
     * with a {@code warmPrompt}-token one): the time to the first new tokens less one step, and the median step.
     */
    private static Timed time(java.util.function.Supplier<? extends GenerationSession<?>> sessions, int vocab,
                              int prompt, int steps, int warmPrompt) {
        Random r = new Random(0);
        for (int[] p : new int[][] {r.ints(warmPrompt, Benchmarks.BENCH_MASK + 1, vocab).toArray(),
                r.ints(prompt, Benchmarks.BENCH_MASK + 1, vocab).toArray()}) {
            boolean timed = p.length == prompt;
            try (GenerationSession<?> session = sessions.get()) {
                long t0 = System.nanoTime();
                session.join(List.of(new GenerationRequest(p, Integer.MAX_VALUE / 2, 1.0, 1)));
                boolean started = false;
                while (!started) {
                    for (var e : session.step()) started |= e.tokens().length > 0;
                }
                double firstSeconds = (System.nanoTime() - t0) / 1e9;
                double[] ms = new double[steps];
                for (int i = 0; i < steps; i++) {
                    long s = System.nanoTime();
                    session.step();
                    ms[i] = (System.nanoTime() - s) / 1e6;
                }
                if (timed) {
                    Arrays.sort(ms);
                    double median = ms[steps / 2];
                    return new Timed(Math.max(1e-9, firstSeconds - median / 1000), median);
                }
            }
        }
        throw new IllegalStateException("unreachable");
    }
}
