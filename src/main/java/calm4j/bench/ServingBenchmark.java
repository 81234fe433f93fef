package calm4j.bench;

import calm4j.engine.Configs;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A running server measured as serving engines are (vLLM's benchmark_serving reports the same figures): {@code c}
 * concurrent clients each stream completions back to back, prompts of mixed lengths given as token ids, a fixed
 * number of new tokens each (the server started with {@code --ignore-eos}, or the text may end sooner). Per request:
 * the time to the first token (TTFT), the time per output token after it (TPOT, over the rest of the request) and the
 * gaps between streamed events (ITL; an event of a CALM carries K tokens); per level: output tokens/s and requests/s
 * over the wall time, and the most sequences and KV cache the server ran at once (its {@code /health}, polled).
 */
public final class ServingBenchmark {
    private ServingBenchmark() {}

    /** One concurrency level against one server. Latencies in milliseconds, p50 and p99 (nearest rank). */
    public record Level(String model, int concurrency, int requests, int ok, int failed, double seconds,
                        long promptTokens, long outputTokens, double ttftP50, double ttftP99, double tpotP50,
                        double tpotP99, double itlP50, double itlP99, int maxRunning, long maxCacheBytes,
                        List<String> failures) {
        public double outputTokensPerS() {
            return outputTokens / seconds;
        }

        public double requestsPerS() {
            return ok / seconds;
        }

        public ObjectNode json() {
            ObjectNode o = Configs.JSON.createObjectNode();
            o.put("path", "serve").put("model", model).put("concurrency", concurrency).put("requests", requests)
                    .put("ok", ok).put("failed", failed).put("seconds", seconds).put("prompt_tokens", promptTokens)
                    .put("output_tokens", outputTokens).put("output_tokens_per_s", outputTokensPerS())
                    .put("requests_per_s", requestsPerS()).put("ttft_ms_p50", ttftP50).put("ttft_ms_p99", ttftP99)
                    .put("tpot_ms_p50", tpotP50).put("tpot_ms_p99", tpotP99).put("itl_ms_p50", itlP50)
                    .put("itl_ms_p99", itlP99).put("max_running", maxRunning).put("max_kv_cache_bytes", maxCacheBytes);
            return o;
        }
    }

    /** What a server says of itself on /v1/models. */
    record Served(String id, String kind, int maxPromptTokens, int maxTokens) {}

    static Served served(HttpClient http, String url) {
        try {
            HttpResponse<String> res = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/models"))
                    .timeout(Duration.ofSeconds(10)).GET().build(), HttpResponse.BodyHandlers.ofString());
            JsonNode card = Configs.JSON.readTree(res.body()).path("data").path(0);
            return new Served(card.path("id").asText(), card.path("kind").asText(), card.path("max_prompt_tokens")
                    .asInt(), card.path("max_tokens").asInt());
        } catch (Exception e) {
            throw new UserError("no calm4j server answers at " + url + " (" + e.getMessage() + "): start one with "
                    + "calm serve, or give its address");
        }
    }

    /**
     * Every level of {@code concurrency} against the server at {@code url}: {@code requestsPerClient} requests per
     * client at each level, prompts of uniformly random length in [{@code minPrompt}, {@code maxPrompt}] tokens
     * (within the server's context), {@code maxTokens} new tokens each. One warm-up request first.
     */
    public static List<Level> run(String url, int[] concurrency, int requestsPerClient, int minPrompt, int maxPrompt,
                                  int maxTokens, long seed) throws InterruptedException {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        Served s = served(http, url);
        int longest = Math.min(maxPrompt, s.maxPromptTokens() - maxTokens);
        if (longest < minPrompt) {
            throw UserError.badValue("prompt_max", "leaves no prompt: the server's model takes prompts of at most "
                    + s.maxPromptTokens() + " tokens with " + maxTokens + " new ones; serve a model with a longer "
                    + "context or ask for shorter prompts");
        }
        Random r = new Random(seed);
        one(http, url, prompt(r, 16), 8, 0); // warm-up
        List<Level> levels = new ArrayList<>();
        for (int c : concurrency) {
            levels.add(level(http, url, s, c, requestsPerClient, minPrompt, longest, maxTokens, r));
        }
        return levels;
    }

    private static int[] prompt(Random r, int length) {
        return r.ints(length, 3, 1000).toArray(); // ids every served vocabulary has, past the special ones
    }

    private record Result(boolean ok, String failure, int promptTokens, int outputTokens, double ttft,
                          double tpot, List<Double> gaps) {}

    private static Level level(HttpClient http, String url, Served s, int c, int perClient, int minPrompt,
                               int maxPrompt, int maxTokens, Random r) throws InterruptedException {
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < c * perClient; i++) prompts.add(prompt(r, minPrompt + r.nextInt(maxPrompt - minPrompt + 1)));
        List<Result> results = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger next = new AtomicInteger();
        AtomicBoolean running = new AtomicBoolean(true);
        AtomicInteger maxRunning = new AtomicInteger();
        AtomicLong maxCache = new AtomicLong();
        Thread monitor = new Thread(() -> {
            while (running.get()) {
                try {
                    JsonNode h = Configs.JSON.readTree(http.send(HttpRequest.newBuilder(URI.create(url + "/health"))
                            .timeout(Duration.ofSeconds(5)).GET().build(), HttpResponse.BodyHandlers.ofString())
                            .body());
                    maxRunning.accumulateAndGet(h.path("running").asInt(), Math::max);
                    maxCache.accumulateAndGet(h.path("kv_cache_bytes").asLong(), Math::max);
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    return;
                } catch (Exception e) {
                    // a busy server may miss a poll
                }
            }
        }, "calm4j-bench-health");
        monitor.setDaemon(true);
        monitor.start();
        ExecutorService pool = Executors.newFixedThreadPool(c);
        long t0 = System.nanoTime();
        List<Future<?>> clients = new ArrayList<>();
        for (int i = 0; i < c; i++) {
            clients.add(pool.submit(() -> {
                for (int j; (j = next.getAndIncrement()) < prompts.size(); ) {
                    results.add(one(http, url, prompts.get(j), maxTokens, j));
                }
                return null;
            }));
        }
        for (Future<?> f : clients) {
            try {
                f.get();
            } catch (java.util.concurrent.ExecutionException e) {
                throw new IllegalStateException(e.getCause());
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        pool.shutdown();
        running.set(false);
        monitor.interrupt();
        List<Double> ttft = new ArrayList<>(), tpot = new ArrayList<>(), itl = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        long in = 0, out = 0;
        int ok = 0;
        for (Result x : results) {
            if (!x.ok()) {
                failures.add(x.failure());
                continue;
            }
            ok++;
            in += x.promptTokens();
            out += x.outputTokens();
            ttft.add(x.ttft());
            if (!Double.isNaN(x.tpot())) tpot.add(x.tpot());
            itl.addAll(x.gaps());
        }
        return new Level(s.id(), c, results.size(), ok, results.size() - ok, seconds, in, out,
                percentile(ttft, 0.5), percentile(ttft, 0.99), percentile(tpot, 0.5), percentile(tpot, 0.99),
                percentile(itl, 0.5), percentile(itl, 0.99), maxRunning.get(), maxCache.get(), failures);
    }

    /** One streamed completion: its times from the events as they arrive. */
    private static Result one(HttpClient http, String url, int[] prompt, int maxTokens, long seed) {
        ObjectNode body = Configs.JSON.createObjectNode();
        ArrayNode ids = body.putArray("prompt");
        for (int t : prompt) ids.add(t);
        body.put("max_tokens", maxTokens).put("temperature", 1.0).put("seed", seed).put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        long start = System.nanoTime();
        try {
            HttpResponse<java.util.stream.Stream<String>> res = http.send(HttpRequest.newBuilder(URI.create(url
                            + "/v1/completions")).timeout(Duration.ofMinutes(10)).header("Content-Type",
                            "application/json").POST(HttpRequest.BodyPublishers.ofString(body.toString())).build(),
                    HttpResponse.BodyHandlers.ofLines());
            if (res.statusCode() != 200) {
                return new Result(false, res.statusCode() + ": " + String.join(" ", res.body().toList()), 0, 0, 0, 0,
                        List.of());
            }
            double first = Double.NaN, last = 0;
            List<Double> gaps = new ArrayList<>();
            int tokens = 0;
            for (Iterator<String> it = res.body().iterator(); it.hasNext(); ) {
                String line = it.next();
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                double now = (System.nanoTime() - start) / 1e6;
                JsonNode e = Configs.JSON.readTree(line.substring(6));
                if (e.has("error")) return new Result(false, e.path("error").toString(), 0, 0, 0, 0, List.of());
                if (e.path("usage").has("completion_tokens")) tokens = e.path("usage").path("completion_tokens").asInt();
                if (e.path("step_tokens").asInt(0) == 0) continue;
                if (Double.isNaN(first)) first = now;
                else gaps.add(now - last);
                last = now;
            }
            double tpot = tokens > 1 ? (last - first) / (tokens - 1) : Double.NaN;
            return new Result(true, null, prompt.length, tokens, first, tpot, gaps);
        } catch (Exception e) {
            return new Result(false, e.toString(), 0, 0, 0, 0, List.of());
        }
    }

    /**
     * A short request's time to first token on an idle server and while a long prompt is being prefilled.
     *
     * @param idleTtftMs    short requests sent one at a time to the idle server, their TTFTs (ms)
     * @param duringTtftMs  short requests sent while the long prompt is prefilled, their TTFTs (ms)
     * @param longTtftMs    the long prompt's own time to first token
     */
    public record Interference(String model, int longTokens, int shortTokens, List<Double> idleTtftMs,
                               List<Double> duringTtftMs, double longTtftMs) {
        public double ratio() {
            return percentile(duringTtftMs, 0.5) / percentile(idleTtftMs, 0.5);
        }

        public ObjectNode json() {
            ObjectNode o = Configs.JSON.createObjectNode();
            o.put("path", "serve_interference").put("model", model).put("long_prompt_tokens", longTokens)
                    .put("short_prompt_tokens", shortTokens).put("idle_ttft_ms_p50", percentile(idleTtftMs, 0.5))
                    .put("during_ttft_ms_p50", percentile(duringTtftMs, 0.5))
                    .put("during_ttft_ms_max", percentile(duringTtftMs, 1.0)).put("long_ttft_ms", longTtftMs)
                    .put("ratio", ratio());
            return o;
        }
    }

    /**
     * A long prompt's prefill against short requests: {@code repeats} short requests' TTFT on the idle server, then
     * a request with a {@code longTokens}-token prompt and, while it is prefilled, short requests one after another
     * (each a {@code shortTokens}-token prompt, 8 new tokens), their TTFTs.
     */
    public static Interference interference(String url, int longTokens, int shortTokens, int repeats)
            throws InterruptedException {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        Served s = served(http, url);
        int longest = Math.min(longTokens, s.maxPromptTokens() - 8);
        Random r = new Random(1);
        one(http, url, prompt(r, shortTokens), 8, 0); // warm-up
        List<Double> idle = new ArrayList<>();
        for (int i = 0; i < repeats; i++) {
            Result x = one(http, url, prompt(r, shortTokens), 8, i);
            if (x.ok()) idle.add(x.ttft());
        }
        int[] longPrompt = prompt(r, longest);
        List<Double> during = Collections.synchronizedList(new ArrayList<>());
        AtomicBoolean longDone = new AtomicBoolean();
        double[] longTtft = {Double.NaN};
        Thread longRequest = new Thread(() -> {
            Result x = one(http, url, longPrompt, 8, 99);
            longTtft[0] = x.ok() ? x.ttft() : Double.NaN;
            longDone.set(true);
        });
        longRequest.start();
        Thread.sleep(200); // the long prompt is queued and its prefill under way
        for (int i = 0; i < repeats && !longDone.get(); i++) {
            Result x = one(http, url, prompt(r, shortTokens), 8, 100 + i);
            if (x.ok() && !longDone.get()) during.add(x.ttft());
        }
        longRequest.join();
        return new Interference(s.id(), longest, shortTokens, idle, during, longTtft[0]);
    }

    /** The nearest-rank percentile (NaN for no values). */
    static double percentile(List<Double> values, double q) {
        if (values.isEmpty()) return Double.NaN;
        List<Double> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        return sorted.get(Math.max(0, (int) Math.ceil(q * sorted.size()) - 1));
    }
}
