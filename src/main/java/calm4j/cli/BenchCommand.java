package calm4j.cli;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmModel;
import calm4j.engine.Engine;
import calm4j.engine.Memory;
import calm4j.train.Configs;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks that measure and print.",
        subcommands = {BenchCommand.All.class, BenchCommand.Ae.class, BenchCommand.Lm.class,
                BenchCommand.Generate.class, BenchCommand.Serve.class})
final class BenchCommand {

    /** fp32 GFLOP/s of a 2048x2048 matmul: the yardstick model FLOP/s are compared with in the same run. */
    static double matmulGflops() {
        int n = 2048;
        Tensor a = torch.randn(n, n), b = torch.randn(n, n);
        Engine.step(() -> {
            a.matmul(b);
        });
        int reps = 5;
        long t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) Engine.step(() -> {
            a.matmul(b);
        });
        double s = (System.nanoTime() - t0) / 1e9;
        return 2.0 * n * n * n * reps / s / 1e9;
    }

    /** Mean seconds per call of {@code step} over {@code steps} calls, after two warm-up calls. */
    static double secondsPerStep(Runnable step, int steps) {
        for (int i = 0; i < 2; i++) step.run();
        long t0 = System.nanoTime();
        for (int i = 0; i < steps; i++) step.run();
        return (System.nanoTime() - t0) / 1e9 / steps;
    }

    /** Prints training throughput and model FLOP/s against a matmul timed right after. */
    static void reportTraining(double tokensPerS, double secondsPerStep, double flopsPerToken) {
        double gflops = matmulGflops();
        double model = flopsPerToken * tokensPerS / 1e9;
        System.out.printf("  training: %,.0f tokens/s (%.1f ms/step)%n", tokensPerS, 1000 * secondsPerStep);
        System.out.printf("  model: %.2f GFLOP/s = %.1f%% of a 2048^3 fp32 matmul (%.1f GFLOP/s, same run)%n",
                model, 100 * model / gflops, gflops);
    }

    /** One measured path: throughput, time per step, model FLOPs per token (training paths; NaN otherwise). */
    record Measured(String path, double tokensPerS, double msPerStep, double flopsPerToken) {}

    /**
     * Every path on the configuration of spec section 7 (vocabulary 4096; AE d=256 l=128; CALM d=256 x 4 layers,
     * head 4 blocks, K=4, N=8, M=100; 8 x 1024 tokens per training step; generation from 32-token prompts, 64 new
     * tokens): training of the autoencoder, the CALM and the token model with the CALM's backbone, and generation
     * at T=1 and T=1/2 (pool 200) and by the token model (T=1 and greedy) at batch 1, 8 and 16.
     */
    @Command(name = "all", mixinStandardHelpOptions = true,
            description = "Every training and generation path on the spec's section-7 configuration: tokens/s, "
                    + "ms/step, model FLOP/s against a same-run matmul (MFU), resident memory; --json for tracking.")
    static final class All implements Callable<Integer> {
        @Option(names = "--json", description = "one JSON object per path and line instead of the table")
        boolean json;

        @Option(names = "--steps", defaultValue = "5", description = "timed training steps per path (default: "
                + "${DEFAULT-VALUE}, after two warm-up steps)")
        int steps;

        @Option(names = "--head", defaultValue = "energy", description = "the CALM's head (default: ${DEFAULT-VALUE})")
        String head;

        @Mixin
        EngineOptions engine;

        static final int VOCAB = 4096, BATCH = 8, TOKENS = 1024, PROMPT = 32, NEW = 64;

        @Override
        public Integer call() {
            engine.engine();
            Engine.seed(0);
            double gflops = matmulGflops();
            AutoencoderConfig ac = new AutoencoderConfig(VOCAB, 256, 640, 2, 2, 4, 128, true, 0.15, 0.15, 0.5, 1e-3,
                    1, 2, 0);
            int k = ac.patchSize(), chunks = TOKENS / k;
            CalmConfig cc = new CalmConfig(256, 704, 4, 4, 4, 10000.0, chunks, 64, 4, 8, 100, 1.0, chunks, 2)
                    .withHead(head);
            if (!json) {
                System.out.printf("calm4j bench all: %s head, vocabulary %d, %d x %d tokens per training step, "
                        + "%d threads; 2048^3 fp32 matmul %.1f GFLOP/s%n", head, VOCAB, BATCH, TOKENS,
                        engine.engine().threads(), gflops);
                System.out.println("path                          tokens/s   ms/step     MFU  resident GB");
            }
            java.util.function.Consumer<Measured> out = m -> print(m, gflops);

            ChunkAutoencoder ae = new ChunkAutoencoder(ac);
            ae.train(true);
            AdamW aeOpt = new AdamW(ae.parameters(), new AdamWOptions(1e-3));
            Tensor aeTokens = torch.randint(VOCAB, new long[] {TOKENS / k * BATCH, k});
            double s = secondsPerStep(() -> Engine.step(() -> {
                ae.loss(aeTokens).total().backward();
                aeOpt.step();
                aeOpt.zero_grad(true);
            }), steps);
            out.accept(new Measured("ae_train", BATCH * TOKENS / s, 1000 * s, ac.trainingFlopsPerChunk() / k));

            CalmModel calm = new CalmModel(cc, ae);
            calm.train(true);
            AdamW calmOpt = new AdamW(Lm.trainable(calm), new AdamWOptions(3e-4));
            Tensor blocks = torch.randint(VOCAB, new long[] {BATCH, (long) (chunks + 1) * k});
            s = secondsPerStep(() -> Engine.step(() -> {
                calm.loss(blocks).backward();
                calmOpt.step();
                calmOpt.zero_grad(true);
            }), steps);
            out.accept(new Measured("calm_train", BATCH * TOKENS / s, 1000 * s, cc.trainingFlopsPerChunk(ac) / k));

            var tc = new calm4j.ar.TokenLMConfig(256, 704, 4, 4, 4, 10000.0, TOKENS, TOKENS);
            var token = new calm4j.ar.TokenLM(tc, VOCAB);
            token.train(true);
            AdamW tokenOpt = new AdamW(token.parameters(), new AdamWOptions(3e-4));
            Tensor seqs = torch.randint(VOCAB, new long[] {BATCH, TOKENS + 1});
            s = secondsPerStep(() -> Engine.step(() -> {
                token.loss(seqs).backward();
                tokenOpt.step();
                tokenOpt.zero_grad(true);
            }), steps);
            out.accept(new Measured("token_train", BATCH * TOKENS / s, 1000 * s, tc.trainingFlopsPerToken(VOCAB)));

            calm.eval();
            token.eval();
            java.util.Random r = new java.util.Random(0);
            for (int batch : new int[] {1, 8, 16}) {
                for (double t : new double[] {1.0, 0.5}) {
                    var gen = new calm4j.generate.CalmGenerator(calm, 0, 1, t == 1 ? 1 : 200, false, 200)
                            .stopAtEos(false);
                    List<calm4j.generate.CalmGenerator.Request> reqs = new java.util.ArrayList<>();
                    for (int b = 0; b < batch; b++) {
                        reqs.add(new calm4j.generate.CalmGenerator.Request(r.ints(PROMPT, 3, VOCAB).toArray(), NEW,
                                t, b));
                    }
                    gen.generate(reqs.subList(0, 1), null); // warm up
                    long t0 = System.nanoTime();
                    var outs = gen.generate(reqs, null);
                    double sec = (System.nanoTime() - t0) / 1e9;
                    long n = outs.stream().mapToLong(o -> o.tokens().length).sum();
                    int stepCount = outs.stream().mapToInt(calm4j.generate.CalmGenerator.Output::steps).max()
                            .orElse(1);
                    out.accept(new Measured("calm_generate_t" + (t == 1 ? "1" : "0.5") + "_b" + batch, n / sec,
                            1000 * sec / stepCount, Double.NaN));
                }
                for (double t : new double[] {1.0, 0.0}) {
                    var gen = new calm4j.generate.TokenGenerator(token, 0, 1, k).stopAtEos(false);
                    List<calm4j.generate.TokenGenerator.Request> reqs = new java.util.ArrayList<>();
                    for (int b = 0; b < batch; b++) {
                        reqs.add(new calm4j.generate.TokenGenerator.Request(r.ints(PROMPT, 3, VOCAB).toArray(), NEW,
                                t, 0, 1.0, b));
                    }
                    gen.generate(reqs.subList(0, 1));
                    long t0 = System.nanoTime();
                    var outs = gen.generate(reqs);
                    double sec = (System.nanoTime() - t0) / 1e9;
                    long n = outs.stream().mapToLong(o -> o.tokens().length).sum();
                    out.accept(new Measured("token_generate" + (t == 0 ? "_greedy" : "") + "_b" + batch, n / sec,
                            1000 * sec / NEW, Double.NaN));
                }
            }
            if (!json) System.out.printf("peak resident memory %.2f GB%n", Memory.peakResidentGb());
            return 0;
        }

        private void print(Measured m, double gflops) {
            double mfu = m.flopsPerToken() * m.tokensPerS() / 1e9 / gflops;
            if (json) {
                var o = Configs.JSON.createObjectNode();
                o.put("path", m.path());
                o.put("tokens_per_s", m.tokensPerS());
                o.put("ms_per_step", m.msPerStep());
                if (!Double.isNaN(mfu)) o.put("mfu", mfu);
                o.put("matmul_gflops", gflops);
                o.put("resident_gb", Memory.residentGb());
                o.put("head", head);
                System.out.println(o.toString());
            } else {
                System.out.printf("%-28s %9.0f %9.1f %7s %12.2f%n", m.path(), m.tokensPerS(), m.msPerStep(),
                        Double.isNaN(mfu) ? "-" : String.format("%.1f%%", 100 * mfu), Memory.residentGb());
            }
        }
    }

    @Command(name = "ae", mixinStandardHelpOptions = true,
            description = "Autoencoder training throughput (tokens/s) and model FLOP/s as a fraction of a "
                    + "2048x2048 fp32 matmul measured in the same run.")
    static final class Ae implements Callable<Integer> {
        @Option(names = "--vocab", defaultValue = "4096")
        int vocab;

        @Option(names = "--batch", defaultValue = "256", description = "chunks per step (default: ${DEFAULT-VALUE})")
        int batch;

        @Option(names = "--latent", defaultValue = "128", description = "latent size l (default: ${DEFAULT-VALUE}, "
                + "as the spec's section 7; the default training config uses 64)")
        int latent;

        @Option(names = "--steps", defaultValue = "30")
        int steps;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            Engine.seed(0);
            AutoencoderConfig d = AutoencoderConfig.DEFAULTS;
            AutoencoderConfig c = new AutoencoderConfig(vocab, d.hiddenSize(), d.intermediateSize(), d.encoderLayers(),
                    d.decoderLayers(), d.patchSize(), latent, true, d.tokenDrop(), d.latentDrop(), d.klClamp(),
                    d.klWeight(), 1, 2, 0);
            ChunkAutoencoder ae = new ChunkAutoencoder(c);
            ae.train(true);
            AdamW opt = new AdamW(ae.parameters(), new AdamWOptions(1e-3));
            Tensor tokens = torch.randint(vocab, new long[] {batch, c.patchSize()});
            Runnable step = () -> Engine.step(() -> {
                ae.loss(tokens).total().backward();
                opt.step();
                opt.zero_grad(true);
            });
            double s = secondsPerStep(step, steps);
            double tokensPerS = (double) batch * c.patchSize() / s;
            double flopsPerToken = c.trainingFlopsPerChunk() / c.patchSize();
            System.out.printf("autoencoder d=%d ffn=%d K=%d l=%d vocab=%d, %,d parameters, batch %d chunks%n",
                    c.hiddenSize(), c.intermediateSize(), c.patchSize(), c.latentSize(), vocab,
                    Layers.parameterCount(ae, false), batch);
            reportTraining(tokensPerS, s, flopsPerToken);
            return 0;
        }
    }

    @Command(name = "lm", mixinStandardHelpOptions = true,
            description = "CALM training throughput (tokens/s) and model FLOP/s as a fraction of a 2048x2048 fp32 "
                    + "matmul measured in the same run. Defaults: the small configuration of spec section 7.")
    static final class Lm implements Callable<Integer> {
        @Option(names = "--vocab", defaultValue = "4096")
        int vocab;

        @Option(names = "--batch", defaultValue = "8", description = "sequences per step (default: ${DEFAULT-VALUE})")
        int batch;

        @Option(names = "--tokens", defaultValue = "1024", description = "tokens per sequence (default: "
                + "${DEFAULT-VALUE})")
        int tokens;

        @Option(names = "--steps", defaultValue = "10")
        int steps;

        @Option(names = "--head", defaultValue = "energy", description = "energy or flow (default: ${DEFAULT-VALUE})")
        String head;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            Engine.seed(0);
            // Spec section 7: AE d=256 with latent 128, CALM d=256 with 4 layers and a 4-block head, K=4, N=8, M=100.
            AutoencoderConfig ac = new AutoencoderConfig(vocab, 256, 640, 2, 2, 4, 128, true, 0.15, 0.15, 0.5,
                    1e-3, 1, 2, 0);
            int k = ac.patchSize(), chunks = tokens / k;
            CalmConfig cc = new CalmConfig(256, 704, 4, 4, 4, 10000.0, chunks, 64, 4, 8, 100, 1.0, chunks, 2)
                    .withHead(head);
            CalmModel model = new CalmModel(cc, new ChunkAutoencoder(ac));
            model.train(true);
            AdamW opt = new AdamW(trainable(model), new AdamWOptions(3e-4));
            Tensor batchTokens = torch.randint(vocab, new long[] {batch, (long) (chunks + 1) * k});
            Runnable step = () -> Engine.step(() -> {
                model.loss(batchTokens).backward();
                opt.step();
                opt.zero_grad(true);
            });
            double s = secondsPerStep(step, steps);
            double tokensPerS = (double) batch * chunks * k / s;
            double flopsPerToken = cc.trainingFlopsPerChunk(ac) / k;
            System.out.printf("CALM d=%d layers=%d %s head blocks=%d N=%d M=%d, K=%d l=%d vocab=%d, %,d trainable "
                            + "parameters, batch %d x %d tokens%n", cc.hiddenSize(), cc.numHiddenLayers(), cc.head(),
                    cc.numMlpLayers(), cc.numSamples(), cc.numTargets(), k, ac.latentSize(), vocab,
                    Layers.parameterCount(model, true), batch, tokens);
            reportTraining(tokensPerS, s, flopsPerToken);
            return 0;
        }

        static org.bytedeco.pytorch.TensorVector trainable(org.bytedeco.pytorch.Module m) {
            org.bytedeco.pytorch.TensorVector out = new org.bytedeco.pytorch.TensorVector();
            var ps = m.parameters(true);
            for (long i = 0; i < ps.size(); i++) if (ps.get(i).requires_grad()) out.push_back(ps.get(i));
            return out;
        }
    }

    @Command(name = "generate", mixinStandardHelpOptions = true,
            description = "CALM generation speed: generated tokens/s and milliseconds per step at batch 1 and 16, "
                    + "with pool 1 (T=1) and pool 200 (T=1/2). Uses --ckpt's model, or the default configuration with "
                    + "random weights (speed does not depend on the weights; EOS is ignored so every run takes the "
                    + "same number of steps).")
    static final class Generate implements Callable<Integer> {
        @Option(names = "--ckpt", description = "a CALM run folder (default: the default config, random weights)")
        java.nio.file.Path run;

        @Option(names = "--preset", description = "a model of a release's shapes with random weights: calm-m, calm-l "
                + "or calm-xl (Llama-3 vocabulary); prints build time, resident memory and generation speed")
        String preset;

        @Option(names = "--dtype", split = ",", defaultValue = "fp32,bf16", description = "--preset: weight types "
                + "to measure (default: ${DEFAULT-VALUE})")
        List<String> dtypes;

        @Option(names = "--release-tokens", defaultValue = "8", description = "--preset: new tokens per sequence "
                + "(default: ${DEFAULT-VALUE}: two steps of K=4)")
        int releaseTokens;

        @Option(names = "--head", defaultValue = "energy", description = "without --ckpt: the random model's head, "
                + "energy or flow (default: ${DEFAULT-VALUE})")
        String head;

        @Option(names = "--prompt-tokens", defaultValue = "32")
        int promptTokens;

        @Option(names = "--max-tokens", defaultValue = "64")
        int maxTokens;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            Engine.seed(0);
            if (preset != null) return release(preset);
            CalmModel model = run != null ? calm4j.calm.CalmRun.load(run).model()
                    : new CalmModel(CalmConfig.DEFAULTS.withHead(head), new ChunkAutoencoder(
                            AutoencoderConfig.DEFAULTS.withVocabulary(4096, 1, 2, 0)));
            int vocab = model.autoencoder().config().vocabSize();
            System.out.printf("CALM generation, K=%d, prompt %d tokens, %d new tokens per sequence%n",
                    model.patchSize(), promptTokens, maxTokens);
            System.out.println("batch  T    pool  tokens/s  ms/step");
            java.util.Random r = new java.util.Random(0);
            double[] calmT1 = new double[2];
            int[] batches = {1, 16};
            for (int bi = 0; bi < 2; bi++) {
                int batch = batches[bi];
                for (int pool : new int[] {1, 200}) {
                    double t = pool == 1 ? 1.0 : 0.5;
                    var gen = new calm4j.generate.CalmGenerator(model, 0, 1, pool, false, 2000).stopAtEos(false);
                    java.util.List<calm4j.generate.CalmGenerator.Request> reqs = new java.util.ArrayList<>();
                    for (int b = 0; b < batch; b++) {
                        reqs.add(new calm4j.generate.CalmGenerator.Request(r.ints(promptTokens, 3, vocab).toArray(),
                                maxTokens, t, b));
                    }
                    gen.generate(reqs.subList(0, 1), null); // warm up
                    long t0 = System.nanoTime();
                    var outs = gen.generate(reqs, null);
                    double s = (System.nanoTime() - t0) / 1e9;
                    long tokens = outs.stream().mapToLong(o -> o.tokens().length).sum();
                    int steps = outs.stream().mapToInt(calm4j.generate.CalmGenerator.Output::steps).max().orElse(1);
                    if (pool == 1) calmT1[bi] = tokens / s;
                    System.out.printf("%5d  %-4s %4d  %8.0f  %7.1f%n", batch, t == 1 ? "1" : "1/2", pool,
                            tokens / s, 1000 * s / steps);
                }
            }
            // The token model with the same backbone, one token a step, sampling at T = 1.
            var c = model.config();
            var tokenLm = new calm4j.ar.TokenLM(new calm4j.ar.TokenLMConfig(c.hiddenSize(), c.intermediateSize(),
                    c.numHiddenLayers(), c.numAttentionHeads(), c.numKeyValueHeads(), c.ropeTheta(),
                    c.contextChunks() * model.patchSize(), c.contextChunks() * model.patchSize()), vocab);
            System.out.println("token model with the same backbone (T=1), and CALM's speed-up (K=" + model.patchSize()
                    + " tokens a step):");
            for (int bi = 0; bi < 2; bi++) {
                int batch = batches[bi];
                var gen = new calm4j.generate.TokenGenerator(tokenLm, 0, 1, model.patchSize()).stopAtEos(false);
                java.util.List<calm4j.generate.TokenGenerator.Request> reqs = new java.util.ArrayList<>();
                for (int b = 0; b < batch; b++) {
                    reqs.add(new calm4j.generate.TokenGenerator.Request(r.ints(promptTokens, 3, vocab).toArray(),
                            maxTokens, 1.0, 0, 1.0, b));
                }
                gen.generate(reqs.subList(0, 1));
                long t0 = System.nanoTime();
                var outs = gen.generate(reqs);
                double s = (System.nanoTime() - t0) / 1e9;
                long tokens = outs.stream().mapToLong(o -> o.tokens().length).sum();
                System.out.printf("%5d  token model %8.0f tokens/s  %7.1f ms/step;  CALM/token = %.2fx%n", batch,
                        tokens / s, 1000 * s / maxTokens, calmT1[bi] / (tokens / s));
            }
            // Where a CALM step goes beyond the backbone: the head's sample and the autoencoder's decode.
            for (int batch : batches) {
                Tensor h = torch.randn(batch, c.hiddenSize());
                var gens = new org.bytedeco.pytorch.Generator[batch];
                int[] ones = new int[batch];
                for (int b = 0; b < batch; b++) {
                    gens[b] = torch.make_generator_cpu();
                    ones[b] = 1;
                }
                double ms = 1000 * secondsPerStep(() -> Engine.step(() -> {
                    try (var ng = new org.bytedeco.pytorch.NoGradGuard()) {
                        model.sampleChunks(h, ones, gens);
                    }
                }), 20);
                System.out.printf("%5d  CALM head sample + decode: %.1f ms of each step%n", batch, ms);
            }
            return 0;
        }

        /** The release-size benchmark: {@code preset}'s shapes, random weights, each weight type in turn. */
        private int release(String name) {
            var json = Configs.readTree(Presets.path(name));
            String where = "preset " + name;
            CalmConfig c = Configs.section(json, "model", CalmConfig.DEFAULTS, CalmConfig.class, where);
            AutoencoderConfig a = Configs.section(json, "autoencoder", AutoencoderConfig.DEFAULTS,
                    AutoencoderConfig.class, where);
            long t0 = System.nanoTime();
            CalmModel model = new CalmModel(c, new ChunkAutoencoder(a));
            model.eval();
            double build = (System.nanoTime() - t0) / 1e9;
            System.out.printf("%s: %,d parameters (CALM %,d + autoencoder %,d), vocabulary %,d, K=%d; built with "
                            + "random weights in %.1f s; resident %.2f GB%n", name, Layers.parameterCount(model, false),
                    Layers.parameterCount(model, false) - Layers.parameterCount(model.autoencoder(), false),
                    Layers.parameterCount(model.autoencoder(), false), a.vocabSize(), a.patchSize(), build,
                    Memory.residentGb());
            System.out.printf("prompt %d tokens, %d new tokens per sequence; T=1/2 draws a pool of 200 candidates "
                    + "per sequence and step, decoded in slices of at most 256 MiB of logits%n", promptTokens,
                    releaseTokens);
            System.out.println("dtype  batch  T    tokens/s  ms/step  resident GB");
            java.util.Random r = new java.util.Random(0);
            for (String dtype : dtypes) {
                switch (dtype) {
                    case "fp32" -> model.to(torch.ScalarType.Float, false);
                    case "bf16" -> model.to(torch.ScalarType.BFloat16, false);
                    default -> throw new calm4j.engine.UserError("--dtype takes fp32 and bf16, got " + dtype);
                }
                for (int batch : new int[] {1, 8}) {
                    for (double t : new double[] {1.0, 0.5}) {
                        var gen = new calm4j.generate.CalmGenerator(model, a.eosId(), a.padId(), t == 1 ? 1 : 200,
                                false, 200).stopAtEos(false);
                        java.util.List<calm4j.generate.CalmGenerator.Request> reqs = new java.util.ArrayList<>();
                        for (int b = 0; b < batch; b++) {
                            reqs.add(new calm4j.generate.CalmGenerator.Request(r.ints(promptTokens, 3, a.vocabSize())
                                    .toArray(), releaseTokens, t, b));
                        }
                        long g0 = System.nanoTime();
                        var outs = gen.generate(reqs, null);
                        double sec = (System.nanoTime() - g0) / 1e9;
                        long tokens = outs.stream().mapToLong(o -> o.tokens().length).sum();
                        int steps = outs.stream().mapToInt(calm4j.generate.CalmGenerator.Output::steps).max()
                                .orElse(1);
                        System.out.printf("%-5s  %5d  %-4s %8.1f  %7.0f  %6.2f%n", dtype, batch, t == 1 ? "1" : "1/2",
                                tokens / sec, 1000 * sec / steps, Memory.residentGb());
                    }
                }
            }
            System.out.printf("peak resident memory %.2f GB%n", Memory.peakResidentGb());
            return 0;
        }
    }

    @Command(name = "serve", mixinStandardHelpOptions = true,
            description = "Serving throughput with shared (continuous) batching on and off: the run is served on "
                    + "loopback twice, once with --max-batch and once one sequence at a time, under the same closed-"
                    + "loop load of concurrent clients.")
    static final class Serve implements Callable<Integer> {
        @Option(names = "--ckpt", required = true, description = "a CALM or token-model run folder")
        Path run;

        @Option(names = "--clients", defaultValue = "16", description = "default: ${DEFAULT-VALUE}")
        int clients;

        @Option(names = "--requests", defaultValue = "4", description = "requests per client (default: "
                + "${DEFAULT-VALUE})")
        int requests;

        @Option(names = "--max-tokens", defaultValue = "32", description = "default: ${DEFAULT-VALUE}")
        int maxTokens;

        @Option(names = "--max-batch", defaultValue = "16", description = "the batch when sharing is on (default: "
                + "${DEFAULT-VALUE})")
        int maxBatch;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() throws Exception {
            engine.engine();
            double[] tokensPerSecond = new double[2];
            int[] batches = {maxBatch, 1};
            for (int i = 0; i < 2; i++) {
                var options = new calm4j.serve.CompletionServer.Options("127.0.0.1", 0, batches[i],
                        clients * requests, 4096, 600, 1 << 20, 200, 64);
                try (var server = calm4j.serve.CompletionServer.start(run, options)) {
                    calm4j.serve.LoadGenerator.run(server.url(), 2, 1, maxTokens, 1.0); // warm-up
                    var r = calm4j.serve.LoadGenerator.run(server.url(), clients, requests, maxTokens, 1.0);
                    System.out.printf("%-28s %s%n", batches[i] > 1 ? "shared batching (max " + batches[i] + "):"
                            : "one sequence at a time:", r.format());
                    tokensPerSecond[i] = r.tokensPerSecond();
                }
            }
            System.out.printf("throughput with shared batching / without: %.2fx (%d clients, %d tokens each)%n",
                    tokensPerSecond[0] / tokensPerSecond[1], clients, maxTokens);
            return 0;
        }
    }
}
