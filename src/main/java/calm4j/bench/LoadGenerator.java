package calm4j.bench;

import calm4j.engine.Configs;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A closed-loop load test of a running server: {@code clients} threads each send {@code requestsPerClient}
 * completions one after another, and the latencies, statuses and generated tokens are tallied. Used by the load test
 * and by {@code calm bench serve}.
 */
public final class LoadGenerator {
    /** What a run measured. Latencies are of successful (200) requests. */
    public record Report(int requests, int ok, int busy, int failed, List<String> failures, double seconds,
                         long completionTokens, double p50Millis, double p99Millis) {
        public double requestsPerSecond() {
            return ok / seconds;
        }

        public double tokensPerSecond() {
            return completionTokens / seconds;
        }

        public String format() {
            return String.format("%d requests: %d ok, %d busy (503), %d failed; %.2f s; %.2f requests/s, %.1f "
                    + "tokens/s; latency p50 %.0f ms, p99 %.0f ms", requests, ok, busy, failed, seconds,
                    requestsPerSecond(), tokensPerSecond(), p50Millis, p99Millis);
        }
    }

    private LoadGenerator() {}

    /**
     * @param maxTokens   max_tokens of every request
     * @param temperature sampling temperature of every request
     */
    public static Report run(String baseUrl, int clients, int requestsPerClient, int maxTokens, double temperature)
            throws InterruptedException {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger ok = new AtomicInteger(), busy = new AtomicInteger(), failed = new AtomicInteger();
        AtomicInteger tokens = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(clients);
        long t0 = System.nanoTime();
        List<Future<?>> done = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
            int client = c;
            done.add(pool.submit(() -> {
                for (int r = 0; r < requestsPerClient; r++) {
                    ObjectNode body = Configs.JSON.createObjectNode();
                    body.put("prompt", PROMPTS[(client + r) % PROMPTS.length]);
                    body.put("max_tokens", maxTokens);
                    body.put("temperature", temperature);
                    body.put("seed", client * 1000L + r);
                    long start = System.nanoTime();
                    try {
                        HttpResponse<String> res = http.send(HttpRequest.newBuilder(URI.create(baseUrl
                                        + "/v1/completions")).timeout(Duration.ofMinutes(5))
                                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                                HttpResponse.BodyHandlers.ofString());
                        if (res.statusCode() == 200) {
                            latencies.add(System.nanoTime() - start);
                            ok.incrementAndGet();
                            tokens.addAndGet(Configs.JSON.readTree(res.body()).path("usage")
                                    .path("completion_tokens").asInt());
                        } else if (res.statusCode() == 503) {
                            busy.incrementAndGet();
                        } else {
                            failed.incrementAndGet();
                            failures.add(res.statusCode() + ": " + res.body());
                        }
                    } catch (Exception e) {
                        failed.incrementAndGet();
                        failures.add(e.toString());
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : done) {
            try {
                f.get();
            } catch (ExecutionException e) {
                throw new IllegalStateException(e.getCause());
            }
        }
        pool.shutdown();
        double seconds = (System.nanoTime() - t0) / 1e9;
        List<Long> sorted = new ArrayList<>(latencies);
        Collections.sort(sorted);
        return new Report(clients * requestsPerClient, ok.get(), busy.get(), failed.get(), List.copyOf(failures),
                seconds, tokens.get(), percentile(sorted, 0.50), percentile(sorted, 0.99));
    }

    /** The nearest-rank percentile of sorted nanosecond latencies, in milliseconds. */
    static double percentile(List<Long> sorted, double q) {
        if (sorted.isEmpty()) return Double.NaN;
        int rank = (int) Math.ceil(q * sorted.size());
        return sorted.get(Math.max(0, rank - 1)) / 1e6;
    }

    private static final String[] PROMPTS = {
        "The state of the Union", "Fellow citizens", "The Congress", "In the past year", "Our nation",
        "We must", "The people of this country", "I recommend",
    };
}
