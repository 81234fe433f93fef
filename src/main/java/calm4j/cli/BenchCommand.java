package calm4j.cli;

import calm4j.ae.ChunkAutoencoder;
import calm4j.bench.Benchmarks;
import calm4j.bench.Tables;
import calm4j.bench.Timing;
import calm4j.calm.CalmModel;
import calm4j.engine.Engine;
import calm4j.nn.WeightType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks that measure and print.",
        subcommands = {BenchCommand.All.class, BenchCommand.Ae.class, BenchCommand.Lm.class,
                BenchCommand.Generate.class, BenchCommand.Context.class, BenchCommand.Serve.class})
final class BenchCommand {

    @Command(name = "all", mixinStandardHelpOptions = true,
            description = "Every training and generation path on the reference benchmark configuration (preset "
                    + "bench): tokens/s and ms/step (medians, with their spread over the timed runs), model FLOP/s "
                    + "against a same-run matmul (MFU), resident memory, and the CALM/token-model generation ratio; "
                    + "--json for tracking.")
    static final class All implements Callable<Integer> {
        @Option(names = "--json", description = "one JSON object per measured setting and line instead of the table")
        boolean json;

        @Option(names = "--steps", defaultValue = "5", description = "timed training steps per path after three "
                + "warm-up steps; the median is printed")
        int steps;

        @Option(names = "--head", defaultValue = "energy", description = "the CALM's head")
        String head;

        @Option(names = "--repeats", defaultValue = "3", description = "timed runs per generation path; the median "
                + "is printed")
        int repeats;

        @Option(names = "--dtype", split = ",", defaultValue = "fp32", description = "weight types the generation "
                + "paths are measured with, in turn: fp32, fp16, int8 (training is fp32)")
        List<String> dtypes;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            Engine e = engine.engine();
            List<WeightType> types = dtypes.stream().map(WeightType::parse).sorted().toList(); // fp32 first
            System.out.println(Tables.suite(Benchmarks.all(head, steps, repeats, types), head, e.threads(), types,
                    json));
            return 0;
        }
    }

    /** The options both training benchmarks have: the vocabulary and the engine. */
    abstract static class TrainingBench implements Callable<Integer> {
        @Option(names = "--vocab", defaultValue = "4096")
        int vocab;

        @Mixin
        EngineOptions engine;
    }

    @Command(name = "ae", mixinStandardHelpOptions = true,
            description = "Autoencoder training throughput (tokens/s) and model FLOP/s as a fraction of a "
                    + "2048x2048 fp32 matmul measured in the same run.")
    static final class Ae extends TrainingBench {
        @Option(names = "--batch", defaultValue = "256", description = "chunks per step")
        int batch;

        @Option(names = "--latent", defaultValue = "128", description = "latent size l (the reference "
                + "benchmark's; the default training config uses 64)")
        int latent;

        @Option(names = "--steps", defaultValue = "30", description = "timed training steps")
        int steps;

        @Override
        public Integer call() {
            engine.engine();
            ChunkAutoencoder ae = Benchmarks.benchAutoencoder(vocab, latent);
            System.out.println(Benchmarks.describe(ae) + ", batch " + batch + " chunks");
            System.out.println(Benchmarks.autoencoderTraining(ae, batch, steps).trainingSummary(Timing.matmulGflops()));
            return 0;
        }
    }

    @Command(name = "lm", mixinStandardHelpOptions = true,
            description = "CALM training throughput (tokens/s) and model FLOP/s as a fraction of a 2048x2048 fp32 "
                    + "matmul measured in the same run. Defaults: the small configuration of docs/method.md §7.")
    static final class Lm extends TrainingBench {
        @Option(names = "--batch", defaultValue = "8", description = "sequences per step")
        int batch;

        @Option(names = "--tokens", defaultValue = "1024", description = "tokens per sequence")
        int tokens;

        @Option(names = "--steps", defaultValue = "10", description = "timed training steps")
        int steps;

        @Option(names = "--head", defaultValue = "energy", description = "energy or flow")
        String head;

        @Override
        public Integer call() {
            engine.engine();
            CalmModel model = Benchmarks.benchCalm(vocab, tokens, head);
            System.out.println(Benchmarks.describe(model) + ", batch " + batch + " x " + tokens + " tokens");
            System.out.println(Benchmarks.calmTraining(model, batch, tokens, steps).trainingSummary(
                    Timing.matmulGflops()));
            return 0;
        }
    }

    @Command(name = "generate", mixinStandardHelpOptions = true,
            description = "CALM generation speed: generated tokens/s and milliseconds per step at batch 1 and 16, "
                    + "with pool 1 (T=1) and pool 200 (T=1/2). Uses --ckpt's model, or the default configuration with "
                    + "random weights (speed does not depend on the weights; EOS is ignored so every run takes the "
                    + "same number of steps).")
    static final class Generate implements Callable<Integer> {
        @Option(names = "--ckpt", description = "a CALM run folder (default: the default config, random weights)")
        Path run;

        @Option(names = "--preset", description = "a model of a release's shapes with random weights: calm-m, calm-l "
                + "or calm-xl (Llama-3 vocabulary); prints build time, resident memory and generation speed")
        String preset;

        @Option(names = "--dtype", split = ",", defaultValue = "fp32", description = "weight types to measure, each "
                + "on the model prepared afresh: fp32, bf16, fp16, int8; with --preset give one for a "
                + "resident-memory figure of that type alone")
        List<String> dtypes;

        @Option(names = "--token-model", description = "--preset: also the token model with the same backbone and "
                + "vocabulary (built after the CALM is timed; its T=1 speed at batch 1 and 8)")
        boolean withTokenModel;

        @Option(names = "--release-tokens", defaultValue = "8", description = "--preset: new tokens per sequence "
                + "(two steps of K=4)")
        int releaseTokens;

        @Option(names = "--head", defaultValue = "energy", description = "without --ckpt: the random model's head, "
                + "energy or flow")
        String head;

        @Option(names = "--config", description = "without --ckpt: a JSON file whose \"model\" and \"autoencoder\" "
                + "sections change the random model's configuration (a recipe's speed before it is trained)")
        Path config;

        @Option(names = "--prompt-tokens", defaultValue = "32")
        int promptTokens;

        @Option(names = "--max-tokens", defaultValue = "64")
        int maxTokens;

        @Option(names = "--repeats", defaultValue = "3", description = "timed runs per setting; the median is printed")
        int repeats;

        @Option(names = "--json", description = "one JSON object per measured setting and line")
        boolean json;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            List<WeightType> types = dtypes.stream().map(WeightType::parse).toList();
            System.out.println(preset != null ? Tables.release(preset, Benchmarks.release(preset, types, promptTokens,
                    releaseTokens, repeats, withTokenModel), promptTokens, releaseTokens, json)
                    : Tables.generation(Benchmarks.generation(() -> Benchmarks.calmOf(run, head, config), types,
                    promptTokens, maxTokens, repeats), promptTokens, maxTokens, json));
            return 0;
        }
    }

    @Command(name = "context", mixinStandardHelpOptions = true,
            description = "Cost against context length: for each context, a CALM and the token model with its "
                    + "backbone prefill a prompt that fills it, then decode with the cache that full (batch 1): "
                    + "prefill and decode tokens/s, the KV cache per sequence, and the CALM/token ratios.")
    static final class Context implements Callable<Integer> {
        @Option(names = "--preset", description = "a release's shapes with random weights (calm-m, calm-l, calm-xl); "
                + "default: the default configuration, its context raised to each length")
        String preset;

        @Option(names = "--contexts", split = ",", defaultValue = "512,2048,8192", description = "context lengths in "
                + "tokens")
        List<Integer> contexts;

        @Option(names = "--dtype", split = ",", defaultValue = "fp32", description = "weight types, each measured in "
                + "turn: fp32, bf16, fp16, int8")
        List<String> dtypes;

        @Option(names = "--steps", defaultValue = "8", description = "CALM decoding steps timed (the token model "
                + "times K times as many); the median is printed")
        int steps;

        @Option(names = "--json", description = "one JSON object per model and context")
        boolean json;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            var e = engine.engine();
            List<calm4j.bench.ContextScaling.Row> rows = new java.util.ArrayList<>();
            for (String d : dtypes) {
                rows.addAll(calm4j.bench.ContextScaling.measure(preset, WeightType.parse(d),
                        contexts.stream().mapToInt(Integer::intValue).toArray(), steps));
            }
            System.out.println(Tables.context(rows, e.threads(), json));
            return 0;
        }
    }

    @Command(name = "serve", mixinStandardHelpOptions = true,
            description = "Serving under load, measured as serving engines are: concurrent streaming clients send "
                    + "completions back to back (prompts of mixed lengths as token ids, a fixed number of new "
                    + "tokens), at each concurrency: output tokens/s, requests/s, time to first token, time per "
                    + "output token and inter-event latency at p50 and p99, and the most sequences and KV cache the "
                    + "server held. Give running servers (--url, each started with --ignore-eos for fixed lengths) "
                    + "or runs to serve here in turn (--ckpt); the first is compared with the others.")
    static final class Serve implements Callable<Integer> {
        @Option(names = "--url", description = "a running calm serve, e.g. http://127.0.0.1:8080 (repeatable)")
        List<String> urls = new java.util.ArrayList<>();

        @Option(names = "--ckpt", description = "a CALM or token-model run to serve on loopback here (repeatable)")
        List<Path> runs = new java.util.ArrayList<>();

        @Option(names = "--concurrency", split = ",", defaultValue = "1,4,16,64")
        List<Integer> concurrency;

        @Option(names = "--requests", defaultValue = "4", description = "requests per client at each concurrency")
        int requests;

        @Option(names = "--prompt-min", defaultValue = "32")
        int promptMin;

        @Option(names = "--prompt-max", defaultValue = "2048", description = "prompts are uniform in [min, max] "
                + "tokens, within the served model's context")
        int promptMax;

        @Option(names = "--max-tokens", defaultValue = "128")
        int maxTokens;

        @Option(names = "--max-batch", defaultValue = "64", description = "--ckpt: sequences generated together")
        int maxBatch;

        @Option(names = "--kv-memory", defaultValue = "0", description = "--ckpt: GB of KV cache the batch may hold "
                + "(0: no limit)")
        double kvMemoryGb;

        @Option(names = "--json", description = "one JSON object per server and concurrency")
        boolean json;

        @Option(names = "--interference", description = "instead of the load levels: a short request's time to first "
                + "token on the idle server and while a prompt of this many tokens is prefilled")
        Integer interference;

        @Mixin
        WeightOptions weights;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() throws Exception {
            engine.engine();
            if (urls.isEmpty() == runs.isEmpty()) {
                throw new calm4j.engine.UserError("give running servers with --url or runs to serve with --ckpt");
            }
            int[] levels = concurrency.stream().mapToInt(Integer::intValue).toArray();
            if (interference != null) {
                if (urls.isEmpty()) throw new calm4j.engine.UserError("--interference measures running servers: give "
                        + "--url");
                List<calm4j.bench.ServingBenchmark.Interference> rows = new java.util.ArrayList<>();
                for (String url : urls) {
                    rows.add(calm4j.bench.ServingBenchmark.interference(url.replaceAll("/+$", ""), interference,
                            promptMin, 8));
                }
                System.out.println(Tables.interference(rows, json));
                return 0;
            }
            List<calm4j.bench.ServingBenchmark.Level> measured = new java.util.ArrayList<>();
            if (!runs.isEmpty()) {
                int queue = Math.max(64, levels.length == 0 ? 64 : java.util.Arrays.stream(levels).max().getAsInt());
                var options = new calm4j.serve.CompletionServer.Options("127.0.0.1", 0, maxBatch, queue, maxTokens,
                        3600, 1 << 20, 200, 2000).withCache((long) (kvMemoryGb * 1e9),
                        calm4j.generate.GenerationOptions.PREFILL_SLICE, true);
                measured.addAll(Benchmarks.serving(runs, options, weights.type(), levels, requests, promptMin,
                        promptMax, maxTokens));
            } else {
                for (String url : urls) {
                    measured.addAll(calm4j.bench.ServingBenchmark.run(url.replaceAll("/+$", ""), levels, requests,
                            promptMin, promptMax, maxTokens, 0));
                }
            }
            System.out.println(Tables.serving(measured, promptMin, promptMax, maxTokens, json));
            return 0;
        }
    }
}
