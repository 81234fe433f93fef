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
    /**
     * {@code calm bench serve}: per server and concurrency, throughput and latency percentiles; then each later
     * server's throughput over the first's at each concurrency, with their p99 latencies.
     */
    public static String serving(List<ServingBenchmark.Level> levels, int minPrompt, int maxPrompt, int maxTokens,
                                 boolean json) {
        StringBuilder sb = new StringBuilder();
        if (json) {
            for (ServingBenchmark.Level l : levels) sb.append(l.json()).append('\n');
            return sb.toString().stripTrailing();
        }
        sb.append(String.format("serving: streaming clients back to back, prompts of %d-%d tokens, %d new tokens each; "
                + "latencies p50 / p99 in ms (TTFT: first token, TPOT: per token after it, ITL: between streamed "
                + "events)%n", minPrompt, maxPrompt, maxTokens));
        sb.append(String.format("%-14s %5s %8s %10s %8s %15s %15s %15s %8s %10s%n", "model", "conc", "ok/req",
                "out tok/s", "req/s", "TTFT", "TPOT", "ITL", "running", "KV MB"));
        for (ServingBenchmark.Level l : levels) {
            sb.append(String.format("%-14s %5d %8s %10.1f %8.2f %15s %15s %15s %8d %10.1f%n", l.model(),
                    l.concurrency(), l.ok() + "/" + l.requests(), l.outputTokensPerS(), l.requestsPerS(),
                    pair(l.ttftP50(), l.ttftP99()), pair(l.tpotP50(), l.tpotP99()), pair(l.itlP50(), l.itlP99()),
                    l.maxRunning(), l.maxCacheBytes() / 1e6));
            for (String f : l.failures().subList(0, Math.min(3, l.failures().size()))) {
                sb.append("    failed: ").append(f, 0, Math.min(200, f.length())).append('\n');
            }
        }
        String first = levels.isEmpty() ? null : levels.get(0).model();
        for (ServingBenchmark.Level l : levels) {
            if (l.model().equals(first)) continue;
            for (ServingBenchmark.Level f : levels) {
                if (f.model().equals(first) && f.concurrency() == l.concurrency()) {
                    sb.append(String.format("  concurrency %d: %s / %s throughput %.2fx; p99 TTFT %.0f vs %.0f ms, "
                            + "p99 TPOT %.1f vs %.1f ms%n", l.concurrency(), first, l.model(), f.outputTokensPerS()
                            / l.outputTokensPerS(), f.ttftP99(), l.ttftP99(), f.tpotP99(), l.tpotP99()));
                }
            }
        }
        return sb.toString().stripTrailing();
    }

    /** {@code calm bench serve --interference}: a short request's TTFT idle and while a long prompt prefills. */
    public static String interference(List<ServingBenchmark.Interference> rows, boolean json) {
        StringBuilder sb = new StringBuilder();
        for (ServingBenchmark.Interference r : rows) {
            if (json) {
                sb.append(r.json()).append('\n');
                continue;
            }
            sb.append(String.format("%s: a %d-token prompt's TTFT %.0f ms idle (p50 of %d), %.0f ms (p50 of %d, max "
                    + "%.0f) while a %d-token prompt was prefilled: %.2fx; the long prompt's own TTFT %.0f ms%n",
                    r.model(), r.shortTokens(), ServingBenchmark.percentile(r.idleTtftMs(), 0.5),
                    r.idleTtftMs().size(), ServingBenchmark.percentile(r.duringTtftMs(), 0.5), r.duringTtftMs().size(),
                    ServingBenchmark.percentile(r.duringTtftMs(), 1.0), r.longTokens(), r.ratio(), r.longTtftMs()));
        }
        return sb.toString().stripTrailing();
    }

    private static String pair(double p50, double p99) {
        return String.format("%.0f / %.0f", p50, p99);
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
