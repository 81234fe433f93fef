package calm4j.bench;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.app.CalmRun;
import calm4j.ar.TokenLM;
import calm4j.ar.TokenLMConfig;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmModel;
import calm4j.engine.Configs;
import calm4j.engine.Engine;
import calm4j.engine.Memory;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.generate.CalmGenerator;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.TokenGenerator;
import calm4j.nn.Layers;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;

/**
 * The measurements behind {@code calm bench}: training steps, generation at a batch and temperature, and the
 * release-size models in each weight type. Each returns {@link Measurement}s; printing is the command's.
 */
public final class Benchmarks {
    private Benchmarks() {}

    /** The reference benchmark's vocabulary (preset "bench", as the PyTorch reference benchmark's). */
    public static final int BENCH_VOCAB = 4096;
    /** The special ids of the benchmark models' vocabulary; prompts are drawn from the ids above them. */
    static final int BENCH_EOS = 0, BENCH_PAD = 1, BENCH_MASK = 2;

    static void requireAtLeastOne(String parameter, int value) {
        if (value < 1) throw UserError.badValue(parameter, "must be at least 1, got " + value);
    }

    /** The reference benchmark's autoencoder (preset "bench") with latent size {@code latent}, random weights. */
    public static ChunkAutoencoder benchAutoencoder(int vocab, int latent) {
        Engine.seed(0); // every benchmark starts from seed 0: two runs measure the same work
        return new ChunkAutoencoder(Presets.section("bench", "autoencoder", AutoencoderConfig.class)
                .with("latent_size", latent).withVocabulary(vocab, BENCH_PAD, BENCH_MASK, BENCH_EOS));
    }

    /**
     * The reference benchmark's CALM (preset "bench": AE d=256 with latent 128, CALM d=256 x 4 layers, a 4-block
     * head, K=4, N=8, M=100) over blocks of {@code tokens} tokens, with {@code head}, random weights.
     */
    public static CalmModel benchCalm(int vocab, int tokens, String head) {
        Engine.seed(0);
        AutoencoderConfig ac = Presets.section("bench", "autoencoder", AutoencoderConfig.class)
                .with("vocab_size", vocab);
        int chunks = tokens / ac.patchSize();
        return new CalmModel(Presets.section("bench", "model", CalmConfig.class).with("context_chunks", chunks,
                "eval_block_chunks", chunks, "head", head), new ChunkAutoencoder(ac));
    }

    /**
     * The CALM of {@code run}, or without one the default configuration's with random weights and the bench
     * vocabulary (generation speed does not depend on the weights).
     */
    public static CalmModel calmOf(java.nio.file.Path run, String head) {
        return calmOf(run, head, null);
    }

    /**
     * As {@link #calmOf(java.nio.file.Path, String)}; without a run, {@code config} (or null) is a JSON file whose
     * {@code "model"} and {@code "autoencoder"} sections change the default configuration's keys, as a training
     * config does: a recipe's speed is measured before it is trained.
     */
    public static CalmModel calmOf(java.nio.file.Path run, String head, java.nio.file.Path config) {
        if (run != null) return CalmRun.load(run).model();
        Engine.seed(0);
        CalmConfig calm = CalmConfig.DEFAULTS.with("head", head);
        AutoencoderConfig ae = AutoencoderConfig.DEFAULTS;
        if (config != null) {
            var root = calm4j.engine.Configs.readTree(config);
            calm = calm4j.engine.Configs.section(root, "model", calm, CalmConfig.class, config.toString());
            ae = calm4j.engine.Configs.section(root, "autoencoder", ae, AutoencoderConfig.class, config.toString());
        }
        return new CalmModel(calm, new ChunkAutoencoder(ae.withVocabulary(BENCH_VOCAB, BENCH_PAD, BENCH_MASK,
                BENCH_EOS)));
    }

    /** What the CALM of a benchmark is, in one line. */
    public static String describe(CalmModel model) {
        CalmConfig cc = model.config();
        AutoencoderConfig ac = model.autoencoder().config();
        return String.format("CALM d=%d layers=%d %s head blocks=%d N=%d M=%d, K=%d l=%d vocab=%d, %,d trainable "
                + "parameters", cc.backbone().hiddenSize(), cc.backbone().numHiddenLayers(), cc.head(),
                cc.numMlpLayers(), cc.numSamples(), cc.numTargets(), ac.patchSize(), ac.latentSize(), ac.vocabSize(),
                Layers.parameterCount(model, true));
    }

    /** What the autoencoder of a benchmark is, in one line. */
    public static String describe(ChunkAutoencoder ae) {
        AutoencoderConfig c = ae.config();
        return String.format("autoencoder d=%d ffn=%d K=%d l=%d vocab=%d, %,d parameters", c.hiddenSize(),
                c.intermediateSize(), c.patchSize(), c.latentSize(), c.vocabSize(), Layers.parameterCount(ae, false));
    }

    /**
     * One weight type at one batch of {@code bench generate}: the CALM at T=1 and T=1/2, the token model with the
     * same backbone at T=1, and the milliseconds of a CALM step beyond the backbone (head sample and decode).
     */
    public record GenerationRow(WeightType type, int batch, Measurement calmT1, Measurement calmHalf,
                                Measurement token, int k, double headAndDecodeMillis) {
        /** The speed ratio and where the CALM's step goes, in one line. */
        public String summary() {
            return String.format("  %s batch %d: CALM/token = %.2fx (K=%d tokens a step); head sample + decode %.1f ms "
                    + "of a step", type, batch, calmT1.tokensPerS() / token.tokensPerS(), k, headAndDecodeMillis);
        }
    }

    /**
     * CALM generation at batch 1 and 16, T=1 and T=1/2, against the token model with its backbone at T=1: for each
     * weight type, a model from {@code model} prepared afresh, prompts of {@code prompt} tokens, {@code newTokens} new.
     */
    public static List<GenerationRow> generation(Supplier<CalmModel> model, List<WeightType> types, int prompt,
                                                 int newTokens, int repeats) {
        Engine.seed(0);
        requireAtLeastOne("repeats", repeats);
        List<GenerationRow> rows = new ArrayList<>();
        for (WeightType type : types) {
            CalmModel calm = model.get();
            TokenLM token = tokenModelLike(calm);
            calm.forInference(type);
            token.forInference(type);
            Random r = new Random(0);
            for (int batch : new int[] {1, 16}) {
                Measurement t1 = calmGeneration(calm, type.label(), batch, 1.0, prompt, newTokens, r, true, repeats);
                Measurement half = calmGeneration(calm, type.label(), batch, 0.5, prompt, newTokens, r, true,
                        repeats);
                Measurement tok = tokenGeneration(token, type.label(), calm.patchSize(), batch, 1.0, prompt,
                        newTokens, r, repeats);
                rows.add(new GenerationRow(type, batch, t1, half, tok, calm.patchSize(),
                        headAndDecodeMillis(calm, batch)));
            }
        }
        return rows;
    }

    /** Timed optimizer steps on {@code loss} (backward, step, zero the gradients), after three warm-ups. */
    static Timing.Seconds trainingSteps(Supplier<Tensor> loss, AdamW opt, int steps) {
        return Timing.perStep(() -> Engine.step(() -> {
            loss.get().backward();
            opt.step();
            opt.zero_grad(true);
        }), steps);
    }

    /** Parameters that train (a CALM's frozen autoencoder is left out). */
    static TensorVector trainable(Module m) {
        TensorVector out = new TensorVector();
        var ps = m.parameters(true);
        for (long i = 0; i < ps.size(); i++) if (ps.get(i).requires_grad()) out.push_back(ps.get(i));
        return out;
    }

    /** Autoencoder training on random chunks, {@code chunks} per step. */
    public static Measurement autoencoderTraining(ChunkAutoencoder ae, int chunks, int steps) {
        AutoencoderConfig c = ae.config();
        ae.train(true);
        AdamW opt = new AdamW(ae.parameters(), new AdamWOptions(1e-3));
        Tensor tokens = torch.randint(c.vocabSize(), new long[] {chunks, c.patchSize()});
        Timing.Seconds s = trainingSteps(() -> ae.loss(tokens).total(), opt, steps);
        return Measurement.of("ae_train", "fp32", chunks, Double.NaN, (double) chunks * c.patchSize(), s, 1,
                c.trainingFlopsPerChunk() / c.patchSize());
    }

    /** CALM training on random blocks of {@code tokens} tokens, {@code batch} per step. */
    public static Measurement calmTraining(CalmModel model, int batch, int tokens, int steps) {
        int k = model.patchSize(), chunks = tokens / k;
        model.train(true);
        AdamW opt = new AdamW(trainable(model), new AdamWOptions(3e-4));
        Tensor blocks = torch.randint(model.autoencoder().config().vocabSize(),
                new long[] {batch, (long) (chunks + 1) * k});
        Timing.Seconds s = trainingSteps(() -> model.loss(blocks), opt, steps);
        return Measurement.of("calm_train", "fp32", batch, Double.NaN, (double) batch * chunks * k, s, 1,
                model.trainingFlopsPerChunk() / k);
    }

    /** Token-model training on random sequences of {@code tokens}, {@code batch} per step. */
    public static Measurement tokenTraining(TokenLM model, int batch, int tokens, int steps) {
        model.train(true);
        AdamW opt = new AdamW(model.parameters(), new AdamWOptions(3e-4));
        Tensor seqs = torch.randint(model.vocabSize(), new long[] {batch, tokens + 1});
        Timing.Seconds s = trainingSteps(() -> model.loss(seqs), opt, steps);
        return Measurement.of("token_train", "fp32", batch, Double.NaN, (double) batch * tokens, s, 1,
                model.config().trainingFlopsPerToken(model.vocabSize()));
    }

    /** Random prompts of {@code prompt} tokens (ids above the special ones), one per row. */
    static List<GenerationRequest> requests(int batch, int prompt, int newTokens, double t, int vocab, Random r) {
        List<GenerationRequest> reqs = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            reqs.add(new GenerationRequest(r.ints(prompt, BENCH_MASK + 1, vocab).toArray(), newTokens, t, b));
        }
        return reqs;
    }

    /**
     * CALM generation of one batch from random prompts, EOS ignored (every run takes the same steps): the median of
     * {@code repeats} timed runs, after a warm-up when asked.
     */
    public static Measurement calmGeneration(CalmModel model, String dtype, int batch, double t, int prompt,
                                             int newTokens, Random r, boolean warmUp, int repeats) {
        var ae = model.autoencoder().config();
        var gen = new CalmGenerator(model, ae.eosId(), ae.padId(), new GenerationOptions(t == 1 ? 1 : 200, false,
                200)).stopAtEos(false);
        List<GenerationRequest> reqs = requests(batch, prompt, newTokens, t, ae.vocabSize(), r);
        if (warmUp) Timing.warmUp(() -> gen.generate(reqs, null));
        List<CalmGenerator.Output> outs = new ArrayList<>();
        Timing.Seconds s = Timing.time(repeats, () -> {
            outs.clear();
            outs.addAll(gen.generate(reqs, null));
        });
        long tokens = outs.stream().mapToLong(o -> o.tokens().length).sum(); // the same in every run
        int steps = outs.stream().mapToInt(CalmGenerator.Output::steps).max().orElse(1);
        return Measurement.of("calm_generate", dtype, batch, t, tokens, s, steps, Double.NaN);
    }

    /** As {@link #calmGeneration} for the token model (one token a step; temperature 0 is greedy). */
    public static Measurement tokenGeneration(TokenLM model, String dtype, int k, int batch, double t, int prompt,
                                              int newTokens, Random r, int repeats) {
        var gen = new TokenGenerator(model, BENCH_EOS, BENCH_PAD, k).stopAtEos(false);
        List<GenerationRequest> reqs = requests(batch, prompt, newTokens, t, model.vocabSize(), r);
        Timing.warmUp(() -> gen.generate(reqs));
        List<TokenGenerator.Output> outs = new ArrayList<>();
        Timing.Seconds s = Timing.time(repeats, () -> {
            outs.clear();
            outs.addAll(gen.generate(reqs));
        });
        long tokens = outs.stream().mapToLong(o -> o.tokens().length).sum();
        return Measurement.of("token_generate", dtype, batch, t, tokens, s, newTokens, Double.NaN);
    }

    /** Milliseconds of a CALM step beyond the backbone: one head sample per row and the decode, at {@code batch}. */
    public static double headAndDecodeMillis(CalmModel model, int batch) {
        Tensor h = torch.randn(batch, model.config().backbone().hiddenSize());
        var gens = new Generator[batch];
        int[] ones = new int[batch];
        for (int b = 0; b < batch; b++) {
            gens[b] = torch.make_generator_cpu();
            ones[b] = 1;
        }
        return 1000 * Timing.perStep(() -> Engine.step(() -> {
            try (var ng = new NoGradGuard()) {
                model.sampleChunks(h, ones, gens);
            }
        }), 20).median();
    }

    /** The token model with a CALM's backbone (the comparison at equal backbone). */
    public static TokenLM tokenModelLike(CalmModel calm) {
        return tokenModelLike(calm.config(), calm.autoencoder().config());
    }

    /** The token model with the backbone of CALM config {@code c} and the vocabulary of autoencoder {@code a}. */
    static TokenLM tokenModelLike(CalmConfig c, AutoencoderConfig a) {
        int k = a.patchSize();
        return new TokenLM(new TokenLMConfig(c.backbone(), c.contextChunks() * k, c.contextChunks() * k),
                a.vocabSize());
    }

    /** One weight type of a release-size model: how it was built, and its generation at batch 1 and 8, T=1 and 1/2. */
    public record ReleaseRun(WeightType type, long parameters, long autoencoderParameters, double prepareSeconds,
                             double residentGb, List<Measurement> generation) {
        /** How the model of {@code preset} was built and how much memory it holds, in one line. */
        public String summary(String preset) {
            return String.format("%s %s: %,d parameters (CALM %,d + autoencoder %,d); built with random weights and "
                    + "prepared in %.1f s; resident %.2f GB", preset, type, parameters,
                    parameters - autoencoderParameters, autoencoderParameters, prepareSeconds, residentGb);
        }
    }

    /**
     * A model of {@code preset}'s shapes with random weights (speed does not depend on them), built afresh for each
     * weight type, prepared for inference, and timed generating from {@code prompt}-token prompts.
     */
    public static List<ReleaseRun> release(String preset, List<WeightType> types, int prompt, int newTokens,
                                           int repeats, boolean withTokenModel) {
        Engine.seed(0);
        requireAtLeastOne("repeats", repeats);
        var json = Presets.readNameOrFile(preset);
        String where = "preset " + preset;
        CalmConfig c = Configs.section(json, "model", CalmConfig.DEFAULTS, CalmConfig.class, where);
        AutoencoderConfig a = Configs.section(json, "autoencoder", AutoencoderConfig.DEFAULTS,
                AutoencoderConfig.class, where);
        Random r = new Random(0);
        List<ReleaseRun> runs = new ArrayList<>();
        for (WeightType type : types) {
            System.gc();
            org.bytedeco.javacpp.Pointer.trimMemory(); // the previous type's model is gone
            long t0 = System.nanoTime();
            Engine.seed(0);
            CalmModel model = new CalmModel(c, new ChunkAutoencoder(a));
            long params = Layers.parameterCount(model, false), aeParams = Layers.parameterCount(model.autoencoder(),
                    false);
            model.forInference(type);
            double prepare = (System.nanoTime() - t0) / 1e9, resident = Memory.residentGb();
            List<Measurement> gen = new ArrayList<>();
            for (int batch : new int[] {1, 8}) {
                for (double t : new double[] {1.0, 0.5}) {
                    gen.add(calmGeneration(model, type.label(), batch, t, prompt, newTokens, r, true, repeats));
                }
            }
            if (withTokenModel) { // the token model with this backbone and vocabulary, the same weight type
                model = null;
                System.gc();
                TokenLM token = tokenModelLike(c, a);
                token.forInference(type);
                for (int batch : new int[] {1, 8}) {
                    gen.add(tokenGeneration(token, type.label(), a.patchSize(), batch, 1.0, prompt, newTokens, r,
                            repeats));
                }
            }
            runs.add(new ReleaseRun(type, params, aeParams, prepare, resident, gen));
        }
        return runs;
    }

    /** What {@link #all} measured: the paths, the same-run matmul yardstick, and the CALM's K. */
    public record Suite(double matmulGflops, int k, List<Measurement> paths) {
        /** The measurement of {@code path} with weights {@code dtype} at {@code batch} and temperature {@code t}. */
        public Measurement find(String path, String dtype, int batch, double t) {
            return paths.stream().filter(m -> m.path().equals(path) && m.dtype().equals(dtype) && m.batch() == batch
                    && m.temperature() == t).findFirst().orElseThrow();
        }

        /**
         * The CALM's T=1 tokens/s over the token model's with {@code type} weights at batch 1, 8 and 16: K tokens a
         * step is the method's ceiling for this ratio, the rest is the head and the decoder.
         */
        public String speedRatios(WeightType type) {
            StringBuilder sb = new StringBuilder("CALM over token model at T=1 (K=" + k + "), " + type + ":");
            for (int b : new int[] {1, 8, 16}) {
                sb.append(String.format(" batch %d %.2fx", b, find("calm_generate", type.label(), b, 1).tokensPerS()
                        / find("token_generate", type.label(), b, 1).tokensPerS()));
            }
            return sb.toString();
        }
    }

    /**
     * Every path on the reference benchmark configuration (docs/method.md §7, preset "bench"): training of the
     * autoencoder, the CALM and the token model with the CALM's backbone ({@code steps} timed steps each, the median
     * and spread), then generation from 32-token prompts, 64 new tokens: the CALM at T=1 and T=1/2 (pool 200), the
     * token model at T=1 and greedy, at batch 1, 8 and 16 ({@code repeats} timed runs each).
     */
    public static Suite all(String head, int steps, int repeats, List<WeightType> types) {
        Engine.seed(0);
        requireAtLeastOne("steps", steps);
        requireAtLeastOne("repeats", repeats);
        int vocab = BENCH_VOCAB, batch = 8, tokens = 1024, prompt = 32, newTokens = 64;
        double gflops = Timing.matmulGflops();
        AutoencoderConfig ac = Presets.section("bench", "autoencoder", AutoencoderConfig.class);
        int k = ac.patchSize(), chunks = tokens / k;
        CalmConfig cc = Presets.section("bench", "model", CalmConfig.class).with("context_chunks", chunks,
                "eval_block_chunks", chunks, "head", head);
        List<Measurement> out = new ArrayList<>();
        ChunkAutoencoder ae = new ChunkAutoencoder(ac);
        out.add(autoencoderTraining(ae, tokens / k * batch, steps));
        CalmModel calm = new CalmModel(cc, ae);
        out.add(calmTraining(calm, batch, tokens, steps));
        TokenLM token = new TokenLM(Presets.section("bench", "token_model", TokenLMConfig.class), vocab);
        out.add(tokenTraining(token, batch, tokens, steps));
        for (WeightType type : types) { // fp32 first: packing frees the float weights
            calm.forInference(type);
            token.forInference(type);
            Random r = new Random(0);
            for (int b : new int[] {1, 8, 16}) {
                for (double t : new double[] {1.0, 0.5}) {
                    out.add(calmGeneration(calm, type.label(), b, t, prompt, newTokens, r, true, repeats));
                }
                for (double t : new double[] {1.0, 0.0}) {
                    out.add(tokenGeneration(token, type.label(), k, b, t, prompt, newTokens, r, repeats));
                }
            }
        }
        return new Suite(gflops, k, out);
    }

    /** Serving throughput with shared batching ({@code maxBatch}) and one sequence at a time, under the same load. */
    /**
     * Each run served in turn on loopback with {@code options} and measured by {@link ServingBenchmark}: the CALM and
     * the token model under the same load.
     */
    public static List<ServingBenchmark.Level> serving(List<java.nio.file.Path> runs,
                                                       calm4j.serve.CompletionServer.Options options,
                                                       calm4j.nn.WeightType type, int[] concurrency,
                                                       int requestsPerClient, int minPrompt, int maxPrompt,
                                                       int maxTokens) throws java.io.IOException, InterruptedException {
        List<ServingBenchmark.Level> levels = new ArrayList<>();
        for (java.nio.file.Path run : runs) {
            try (var server = calm4j.serve.CompletionServer.start(run, options, null, type)) {
                levels.addAll(ServingBenchmark.run(server.url(), concurrency, requestsPerClient, minPrompt, maxPrompt,
                        maxTokens, 0));
            }
            System.gc();
        }
        return levels;
    }
}
