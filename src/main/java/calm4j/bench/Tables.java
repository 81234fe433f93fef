package calm4j.bench;

import calm4j.engine.Memory;
import calm4j.nn.WeightType;

import java.util.List;

/**
 * What {@code calm bench} prints: each benchmark's measurements as a table (a title line saying what was measured,
 * {@link Measurement#HEADER}, a row per setting, the ratios that matter) or, for tracking, one JSON object a line.
 */
public final class Tables {
    private Tables() {}

    private static final String SPREAD = "spread = (slowest - fastest) / 2 / median";

    /** {@code calm bench all}: every path of the suite, then the CALM/token-model ratio per weight type. */
    public static String suite(Benchmarks.Suite suite, String head, int threads, List<WeightType> types, boolean json) {
        StringBuilder sb = new StringBuilder();
        if (!json) {
            sb.append(String.format("calm4j bench all: %s head, vocabulary %d, 8 x 1024 tokens per training step, %d "
                    + "threads; 2048^3 fp32 matmul %.1f GFLOP/s; %s%n%s%n", head, Benchmarks.BENCH_VOCAB, threads,
                    suite.matmulGflops(), SPREAD, Measurement.HEADER));
        }
        for (Measurement m : suite.paths()) sb.append(line(m, suite.matmulGflops(), json));
        if (!json) {
            for (WeightType type : types) sb.append(suite.speedRatios(type)).append('\n');
            sb.append(peakMemory());
        }
        return sb.toString().stripTrailing();
    }

    /** {@code calm bench generate}: per weight type and batch, the CALM at T=1 and 1/2 and the token model. */
    public static String generation(List<Benchmarks.GenerationRow> rows, int promptTokens, int newTokens,
                                    boolean json) {
        StringBuilder sb = new StringBuilder();
        if (!json) {
            sb.append(String.format("CALM generation, prompt %d tokens, %d new tokens per sequence; the token model "
                    + "with the same backbone at T=1; %s%n%s%n", promptTokens, newTokens, SPREAD, Measurement.HEADER));
        }
        for (Benchmarks.GenerationRow row : rows) {
            for (Measurement m : List.of(row.calmT1(), row.calmHalf(), row.token())) sb.append(line(m, Double.NaN,
                    json));
            if (!json) sb.append(row.summary()).append('\n');
        }
        return sb.toString().stripTrailing();
    }

    /** {@code calm bench generate --preset}: per weight type, how the model was built and how fast it generates. */
    public static String release(String preset, List<Benchmarks.ReleaseRun> runs, int promptTokens, int newTokens,
                                 boolean json) {
        StringBuilder sb = new StringBuilder();
        if (!json) {
            sb.append(String.format("prompt %d tokens, %d new tokens per sequence; T=1/2 draws a pool of 200 "
                    + "candidates per sequence and step, decoded in slices of at most 256 MiB of logits%n",
                    promptTokens, newTokens));
        }
        for (Benchmarks.ReleaseRun r : runs) {
            if (!json) sb.append(r.summary(preset)).append('\n').append(Measurement.HEADER).append('\n');
            for (Measurement m : r.generation()) sb.append(line(m, Double.NaN, json));
        }
        if (!json) sb.append(peakMemory());
        return sb.toString().stripTrailing();
    }

    /** {@code calm bench serve}: the two servings under the same load, and the throughput shared batching gains. */
    public static String serving(Benchmarks.Serving s, int maxBatch, int clients, int maxTokens) {
        return String.format("%-28s %s%n%-28s %s%nthroughput with shared batching / without: %.2fx (%d clients, %d "
                + "tokens each)", "shared batching (max " + maxBatch + "):", s.shared().format(),
                "one sequence at a time:", s.single().format(),
                s.shared().tokensPerSecond() / s.single().tokensPerSecond(), clients, maxTokens);
    }

    /** A table row, or one JSON object. */
    /**
     * {@code calm bench context}: per context length, each model's prefill and decoding speed and its KV cache per
     * sequence, then the CALM/token ratios.
     */
    public static String context(List<ContextScaling.Row> rows, int threads, boolean json) {
        StringBuilder sb = new StringBuilder();
        if (json) {
            for (ContextScaling.Row r : rows) sb.append(r.json()).append('\n');
            return sb.toString().stripTrailing();
        }
        sb.append(String.format("cost against context length: a prompt filling the context less %d new tokens, "
                + "prefilled, then decoded with the cache that full; batch 1, %d thread(s)%n", ContextScaling.NEW_TOKENS,
                threads));
        sb.append(String.format("%-8s %-6s %-5s %8s %14s %14s %12s %14s %9s%n", "size", "model", "dtype", "context",
                "prefill tok/s", "decode tok/s", "ms/step", "cache MB/seq", "resident"));
        for (ContextScaling.Row r : rows) {
            sb.append(String.format("%-8s %-6s %-5s %8d %14.0f %14.1f %12.2f %14.2f %8.2fG%n", r.size(), r.model(),
                    r.dtype(), r.contextTokens(), r.prefillTokensPerS(), r.decodeTokensPerS(), r.decodeMsPerStep(),
                    r.cacheBytes() / 1e6, r.residentGb()));
        }
        for (int i = 0; i + 1 < rows.size(); i += 2) {
            ContextScaling.Row c = rows.get(i), t = rows.get(i + 1);
            sb.append(String.format("  %s %s %d tokens: CALM/token prefill %.2fx, decode %.2fx; cache %.3f of the "
                    + "token model's%n", c.size(), c.dtype(), c.contextTokens(), c.prefillTokensPerS()
                    / t.prefillTokensPerS(), c.decodeTokensPerS() / t.decodeTokensPerS(),
                    (double) c.cacheBytes() / t.cacheBytes()));
        }
        return sb.append(peakMemory()).toString().stripTrailing();
    }

    private static String line(Measurement m, double matmulGflops, boolean json) {
        return (json ? m.json(matmulGflops).toString() : m.row(matmulGflops)) + "\n";
    }

    private static String peakMemory() {
        return String.format("peak resident memory %.2f GB%n", Memory.peakResidentGb());
    }
}
