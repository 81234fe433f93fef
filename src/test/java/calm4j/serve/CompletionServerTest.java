package calm4j.serve;

import calm4j.engine.Configs;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.Finish;
import calm4j.generate.GenerationSession;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.*;

/** The HTTP API, through a real HTTP client on loopback, serving small trained runs. */
class CompletionServerTest {
    @TempDir
    static Path dir;
    static ServedRuns runs;
    static CompletionServer calm, tokenLm;
    static final HttpClient HTTP = HttpClient.newHttpClient();

    @BeforeAll
    static void start() throws Exception {
        runs = ServedRuns.train(dir);
        calm = CompletionServer.start(runs.calm, ServedRuns.options(8, 16, 60));
        tokenLm = CompletionServer.start(runs.tokenLm, ServedRuns.options(8, 16, 60));
    }

    @AfterAll
    static void stop() {
        if (calm != null) calm.close();
        if (tokenLm != null) tokenLm.close();
    }

    static HttpResponse<String> post(CompletionServer server, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions"))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> get(CompletionServer server, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(server.url() + path)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode json(HttpResponse<String> res) throws Exception {
        return Configs.JSON.readTree(res.body());
    }

    /** The JSON of each server-sent event before [DONE]; fails if the stream does not end with [DONE]. */
    static List<JsonNode> events(String stream) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        String[] parts = stream.split("\n\n");
        assertEquals("data: [DONE]", parts[parts.length - 1], "the stream ends with [DONE]");
        for (int i = 0; i < parts.length - 1; i++) {
            assertTrue(parts[i].startsWith("data: ") && !parts[i].contains("\n"), "one data line per event: "
                    + parts[i]);
            out.add(Configs.JSON.readTree(parts[i].substring(6)));
        }
        return out;
    }

    @Test
    void modelsAndHealthDescribeTheServedModel() throws Exception {
        JsonNode models = json(get(calm, "/v1/models"));
        assertEquals("list", models.path("object").asText());
        assertEquals("calm", models.path("data").get(0).path("id").asText());
        assertEquals(4, models.path("data").get(0).path("tokens_per_step").asInt(), "K tokens per step");
        assertEquals("token-lm", json(get(tokenLm, "/v1/models")).path("data").get(0).path("kind").asText());
        HttpResponse<String> health = get(calm, "/health");
        assertEquals(200, health.statusCode());
        assertEquals("ok", json(health).path("status").asText());
        assertTrue(calm.url().startsWith("http://127.0.0.1:"), "bound to loopback: " + calm.url());
    }

    @Test
    void aCompletionReturnsTextUsageAndTheSameTextForTheSameSeed() throws Exception {
        for (CompletionServer server : List.of(calm, tokenLm)) {
            String body = "{\"prompt\": \"the people\", \"max_tokens\": 12, \"seed\": 7, \"n\": 2}";
            HttpResponse<String> res = post(server, body);
            assertEquals(200, res.statusCode(), res.body());
            JsonNode r = json(res);
            assertEquals("text_completion", r.path("object").asText());
            assertEquals(2, r.path("choices").size());
            int tokens = r.path("usage").path("completion_tokens").asInt();
            assertTrue(tokens >= 1 && tokens <= 24, res.body());
            assertEquals(r.path("usage").path("prompt_tokens").asInt() + tokens,
                    r.path("usage").path("total_tokens").asInt());
            for (JsonNode ch : r.path("choices")) {
                assertTrue(List.of("length", "stop").contains(ch.path("finish_reason").asText()), res.body());
            }
            assertEquals(r.path("choices"), json(post(server, body)).path("choices"), "same seed, same text");
        }
    }

    @Test
    void streamingSendsOneEventPerStepThenDoneAndMatchesTheWholeAnswer() throws Exception {
        String body = "{\"prompt\": \"the people of\", \"max_tokens\": 20, \"seed\": 3, \"temperature\": 1}";
        String whole = json(post(calm, body)).path("choices").get(0).path("text").asText();
        HttpResponse<String> res = post(calm, body.replace("}", ", \"stream\": true}"));
        assertEquals(200, res.statusCode());
        assertTrue(res.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<JsonNode> events = events(res.body());
        StringBuilder text = new StringBuilder();
        int tokens = 0;
        for (JsonNode e : events) {
            text.append(e.path("choices").get(0).path("text").asText());
            int step = e.path("step_tokens").asInt();
            assertTrue(step <= 4, "a CALM step yields at most K = 4 tokens");
            tokens += step;
        }
        assertEquals(whole, text.toString(), "the streamed pieces add up to the non-streamed text");
        assertTrue(tokens <= 20 && events.size() >= 5, events.size() + " events for " + tokens + " tokens");
        assertFalse(events.get(events.size() - 1).path("choices").get(0).path("finish_reason").isNull());
    }

    @Test
    void concurrentRequestsSharingTheBatchGetWhatTheyGetAlone() throws Exception {
        List<String> bodies = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            bodies.add("{\"prompt\": \"" + "the people ".repeat(1 + i) + "\", \"max_tokens\": " + (8 + 4 * i)
                    + ", \"seed\": " + (100 + i) + (i % 2 == 0 ? "" : ", \"temperature\": 0.5") + "}");
        }
        List<String> alone = new ArrayList<>();
        for (String b : bodies) alone.add(json(post(calm, b)).path("choices").toString());
        List<CompletableFuture<HttpResponse<String>>> together = new ArrayList<>();
        for (String b : bodies) {
            together.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(calm.url() + "/v1/completions"))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(b)).build(), HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < bodies.size(); i++) {
            assertEquals(alone.get(i), json(together.get(i).get()).path("choices").toString(), "request " + i);
        }
    }

    @Test
    void badRequestsGet400WithAMessageThatNamesTheProblem() throws Exception {
        String[][] cases = {
            {"{\"prompt\": ", "not valid JSON"},
            {"[1, 2]", "JSON object"},
            {"{\"max_tokens\": 4}", "'prompt' is required"},
            {"{\"prompt\": 42}", "'prompt' must be a string, a list of strings"},
            {"{\"prompt\": [\"a\", {}]}", "'prompt' must be a string, a list of strings"},
            {"{\"prompt\": [1, 99999]}", "outside this model's vocabulary"},
            {"{\"prompt\": \"a\", \"max_tokens\": 100000}", "this server's limit is 400"},
            {"{\"prompt\": \"a\", \"max_tokens\": 0}", "'max_tokens' must be at least 1"},
            {"{\"prompt\": \"a\", \"temperature\": 2.5}", "temperature must lie in [0, 2.0]"},
            {"{\"prompt\": \"a\", \"temperature\": 0.001}", "below the lowest"},
            {"{\"prompt\": \"a\", \"presence_penalty\": 0.5}", "a CALM does not have"},
            {"{\"prompt\": \"a\", \"logprobs\": 2}", "'logprobs' is not supported"},
            {"{\"prompt\": \"a\", \"echo\": true}", "'echo' is not supported"},
            {"{\"prompt\": \"a\", \"best_of\": 3}", "'best_of' is not supported"},
            {"{\"prompt\": \"a\", \"n\": 99}", "'n' must lie in"},
            {"{\"prompt\": \"a\", \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "at most 4"},
            {"{\"prompt\": \"" + "the people ".repeat(100) + "\"}", "shorten it"},
        };
        for (String[] c : cases) {
            HttpResponse<String> res = post(calm, c[0]);
            assertEquals(400, res.statusCode(), c[0] + " -> " + res.body());
            String message = json(res).path("error").path("message").asText();
            assertTrue(message.contains(c[1]), "expected '" + c[1] + "' in: " + message);
        }
        HttpResponse<String> big = post(calm, "{\"prompt\": \"" + "x".repeat(5000) + "\"}");
        assertEquals(413, big.statusCode(), big.body());
        assertTrue(big.body().contains("larger than 4096 bytes"), big.body());
        HttpResponse<String> temp = post(tokenLm, "{\"prompt\": \"a\", \"temperature\": 3}");
        assertEquals(400, temp.statusCode());
        assertEquals(200, post(tokenLm, "{\"prompt\": \"a\", \"temperature\": 0.7, \"max_tokens\": 2}").statusCode(),
                "a token model samples at any temperature in [0, 2]");
        assertEquals(404, get(calm, "/etc/passwd").statusCode(), "no file is ever served from a request path");
        assertEquals(405, get(calm, "/v1/completions").statusCode());
    }

    @Test
    void anUnknownModelIs404ModelNotFoundAsOpenAiAnswersItSoSdksRaiseNotFound() throws Exception {
        HttpResponse<String> res = post(calm, "{\"prompt\": \"a\", \"model\": \"gpt-4o\"}");
        assertEquals(404, res.statusCode(), res.body());
        JsonNode error = json(res).path("error");
        assertEquals("model_not_found", error.path("code").asText());
        assertEquals("model", error.path("param").asText());
        assertTrue(error.path("message").asText().contains("'gpt-4o' does not exist"), res.body());
        HttpResponse<String> card = get(calm, "/v1/models/gpt-4o");
        assertEquals(404, card.statusCode());
        assertEquals("model_not_found", json(card).path("error").path("code").asText());
    }

    /** A raw HTTP/1.1 exchange on a closed connection, the headers given as they are. */
    static String rawRequest(CompletionServer server, String method, String path, String headers, String body)
            throws Exception {
        return rawExchange(URI.create(server.url()), method + " " + path + " HTTP/1.1\r\n" + headers
                + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\nConnection: close\r\n\r\n"
                + body);
    }

    @Test
    void aRequestNamingAnotherHostIsRefusedSoADnsRebindingPageCannotReadTheServer() throws Exception {
        // A page on evil.example whose name is re-pointed at 127.0.0.1 makes the browser send Host: evil.example.
        String rebound = rawRequest(calm, "GET", "/v1/models", "Host: evil.example\r\n", "");
        assertTrue(rebound.startsWith("HTTP/1.1 421"), rebound);
        assertTrue(rebound.contains("--allow-host"), rebound);
        String port = ":" + URI.create(calm.url()).getPort();
        for (String host : new String[] {"127.0.0.1" + port, "localhost" + port, "LOCALHOST", "[::1]" + port}) {
            String ok = rawRequest(calm, "GET", "/v1/models", "Host: " + host + "\r\n", "");
            assertTrue(ok.startsWith("HTTP/1.1 200"), host + " -> " + ok);
        }
        CompletionServer.Options o = ServedRuns.options(2, 2, 60);
        try (CompletionServer named = CompletionServer.start(runs.tokenLm, new CompletionServer.Options(o.host(),
                0, o.maxBatch(), o.queue(), o.maxTokens(), o.timeoutSeconds(), o.maxBodyBytes(), o.pool(),
                o.maxDraws(), null, List.of("calm.example.com"), 0, 256, false))) {
            assertTrue(rawRequest(named, "GET", "/health", "Host: calm.example.com\r\n", "").startsWith(
                    "HTTP/1.1 200"), "an --allow-host name is answered");
            assertTrue(rawRequest(named, "GET", "/health", "Host: evil.example\r\n", "").startsWith("HTTP/1.1 421"));
        }
    }

    @Test
    void aPageOnAnotherSiteCannotPostEvenTheRequestsBrowsersSendWithoutAskingFirst() throws Exception {
        String body = "{\"prompt\": \"a\", \"max_tokens\": 2}";
        String host = "Host: 127.0.0.1:" + URI.create(calm.url()).getPort() + "\r\n";
        // A form or text/plain POST needs no CORS preflight: the server must not answer it with a completion.
        String plain = rawRequest(calm, "POST", "/v1/completions", host + "Content-Type: text/plain\r\n", body);
        assertTrue(plain.startsWith("HTTP/1.1 415"), plain);
        String none = rawRequest(calm, "POST", "/v1/completions", host, body);
        assertTrue(none.startsWith("HTTP/1.1 415"), none);
        String foreign = rawRequest(calm, "POST", "/v1/completions", host + "Origin: http://evil.example\r\n"
                + "Content-Type: application/json\r\n", body);
        assertTrue(foreign.startsWith("HTTP/1.1 403"), foreign);
        // The playground, a page of the server itself, sends its own origin.
        String own = rawRequest(calm, "POST", "/v1/completions", host + "Origin: " + calm.url() + "\r\n"
                + "Content-Type: application/json; charset=utf-8\r\n", body);
        assertTrue(own.startsWith("HTTP/1.1 200"), own);
    }

    @Test
    void requestsRefusedBeforeGenerationLeaveALineInTheLogWithTheirStatusAndReasonButNotThePrompt()
            throws Exception {
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        java.io.PrintStream before = System.err;
        System.setErr(new java.io.PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            post(calm, "{\"prompt\": \"secret words\", \"model\": \"gpt-4o\"}");
            post(calm, "{\"prompt\": \"secret words\", \"n\": 99}");
            post(calm, "{\"prompt\": \"" + "secret ".repeat(1000) + "\"}");
        } finally {
            System.setErr(before);
        }
        String log = captured.toString(StandardCharsets.UTF_8);
        assertTrue(log.contains("POST /v1/completions 404 model_not_found"), log);
        assertTrue(log.contains("POST /v1/completions 400 invalid_request_error: 'n' must lie in"), log);
        assertTrue(log.contains("POST /v1/completions 413"), log);
        assertFalse(log.contains("secret"), "the log does not carry prompts:\n" + log);
    }

    @Test
    void aFullQueueAnswers503WithRetryAfter() throws Exception {
        try (CompletionServer small = CompletionServer.start(runs.tokenLm, ServedRuns.options(1, 1, 60))) {
            String body = "{\"prompt\": \"the\", \"max_tokens\": 400, \"temperature\": 1, \"seed\": 1}";
            List<CompletableFuture<HttpResponse<String>>> all = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                all.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(small.url() + "/v1/completions"))
                        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()));
            }
            int ok = 0, busy = 0;
            for (var f : all) {
                HttpResponse<String> res = f.get();
                if (res.statusCode() == 200) {
                    ok++;
                } else {
                    assertEquals(503, res.statusCode(), res.body());
                    assertEquals("1", res.headers().firstValue("Retry-After").orElse(null));
                    busy++;
                }
            }
            assertTrue(ok >= 1 && busy >= 1, ok + " served, " + busy + " refused");
        }
    }

    @Test
    void aRequestOverItsTimeLimitIsStoppedWith504() throws Exception {
        // Each step slowed by 20 ms, so the request outlasts the 0.05 s limit whether or not its sample ends early
        ServedModel slow = slowed(load(runs.tokenLm), 20);
        try (CompletionServer quick = CompletionServer.start(slow, ServedRuns.options(4, 4, 0.05))) {
            HttpResponse<String> res = post(quick, "{\"prompt\": \"the\", \"max_tokens\": 400, \"seed\": 1}");
            assertEquals(504, res.statusCode(), res.body());
            assertTrue(json(res).path("error").path("message").asText().contains("longer than"), res.body());
            assertEquals("ok", json(get(quick, "/health")).path("status").asText(), "the server carries on");
        }
    }

    @Test
    void generationStopsWhenTheStreamingClientDisconnects() throws Exception {
        // slowed: the tiny model could otherwise generate all 400 tokens before the first check (it did, once)
        ServedModel slow = slowed(load(runs.tokenLm), 20); // 400 tokens: at least 8 s
        try (CompletionServer server = CompletionServer.start(slow, ServedRuns.options(4, 4, 600))) {
            URI uri = URI.create(server.url());
            String body = "{\"prompt\": \"the\", \"max_tokens\": 400, \"stream\": true, \"seed\": 1}";
            try (Socket s = new Socket(uri.getHost(), uri.getPort())) {
                OutputStream os = s.getOutputStream();
                os.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
                os.flush();
                BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(),
                        StandardCharsets.UTF_8));
                String line;
                while ((line = in.readLine()) != null && !line.contains("data: ")) { /* headers, then an event */ }
                assertNotNull(line, "a first event arrived");
                assertEquals(1, json(get(server, "/health")).path("running").asInt(), "generating");
            } // the client hangs up after its first event
            long until = System.currentTimeMillis() + 20_000;
            int running;
            do {
                Thread.sleep(50);
                running = json(get(server, "/health")).path("running").asInt();
            } while (running != 0 && System.currentTimeMillis() < until);
            assertEquals(0, running, "the disconnected client's sequence left the batch");
        }
    }

    @Test
    void aTemperatureBelowOneOverThePoolIsRefusedAndTheServerCarriesOn() throws Exception {
        for (String t : new String[] {"4.656612873077393e-10", "1e-9", "0.019"}) { // the pool here is 50
            HttpResponse<String> res = post(calm, "{\"prompt\": \"The\", \"max_tokens\": 8, \"temperature\": " + t
                    + "}");
            assertEquals(400, res.statusCode(), t + " -> " + res.body());
            assertTrue(json(res).path("error").path("message").asText().contains("pool of 50"), res.body());
        }
        assertEquals(200, post(calm, "{\"prompt\": \"The\", \"max_tokens\": 8, \"temperature\": 0.02}")
                .statusCode(), "T = 1/50 is the lowest a pool of 50 offers");
        assertEquals("ok", json(get(calm, "/health")).path("status").asText());
    }

    @Test
    void aBodyWithTrailingGarbageOrAFractionalSeedIsRefused() throws Exception {
        String[][] cases = {
            {"{\"prompt\": \"a\"} junk", "not valid JSON"},
            {"{\"prompt\": \"a\"} {\"prompt\": \"b\"}", "not valid JSON"},
            {"{\"prompt\": \"a\", \"seed\": 1.5}", "'seed' must be an integer"},
            {"{\"prompt\": \"a\", \"seed\": 1e30}", "'seed' must be an integer"},
        };
        for (String[] c : cases) {
            HttpResponse<String> res = post(calm, c[0]);
            assertEquals(400, res.statusCode(), c[0] + " -> " + res.body());
            assertTrue(json(res).path("error").path("message").asText().contains(c[1]), res.body());
        }
    }

    @Test
    void aPromptOfAMegabyteIsRefusedByItsLengthBeforeItIsTokenized() throws Exception {
        try (CompletionServer big = CompletionServer.start(runs.calm, new CompletionServer.Options("127.0.0.1", 0, 4,
                8, 400, 60, 2 << 20, 50, 50))) {
            HttpResponse<String> res = post(big, "{\"prompt\": \"" + "the people ".repeat(100_000) + "\"}");
            assertEquals(400, res.statusCode(), res.body());
            assertTrue(json(res).path("error").path("message").asText().contains("1100000 characters"), res.body());
        }
    }

    @Test
    void serverOptionsOutsideTheirBoundsAreRefusedAtStartNamingTheOption() {
        String[][] cases = {
            {"0", "4096", "64", "max_draws"}, {"-1", "4096", "64", "max_draws"},
            {"50", "-1", "64", "max_body"}, {"50", "2147483647", "64", "max_body"},
            {"50", "4096", "2147483647", "queue"},
        };
        for (String[] c : cases) {
            calm4j.engine.UserError e = assertThrows(calm4j.engine.UserError.class, () -> new CompletionServer.Options(
                    "127.0.0.1", 0, 4, Integer.parseInt(c[2]), 400, 60, Integer.parseInt(c[1]), 50,
                    Integer.parseInt(c[0])));
            assertEquals(c[3], e.parameter(), e.getMessage());
            assertTrue(e.getMessage().startsWith(c[3] + " must "), e.getMessage());
        }
        calm4j.engine.UserError host = assertThrows(calm4j.engine.UserError.class, () -> CompletionServer.start(
                runs.calm, new CompletionServer.Options("no.such.host.invalid", 0, 4, 8, 400, 60, 4096, 50, 50)));
        assertEquals("host", host.parameter());
        assertTrue(host.getMessage().startsWith("host no.such.host.invalid is not an address"), host.getMessage());
    }

    /** A generation session that passes everything to another; a test overrides what it changes. */
    static class ForwardingSession implements GenerationSession<GenerationSession.Result> {
        @SuppressWarnings("unchecked")
        final GenerationSession<GenerationSession.Result> d;

        @SuppressWarnings("unchecked")
        ForwardingSession(GenerationSession<?> d) {
            this.d = (GenerationSession<GenerationSession.Result>) d;
        }

        public List<Integer> join(List<GenerationRequest> requests) {
            return d.join(requests);
        }

        public List<Event<GenerationSession.Result>> step() {
            return d.step();
        }

        public void cancel(int id) {
            d.cancel(id);
        }

        public int size() {
            return d.size();
        }

        public long cacheBytes() {
            return d.cacheBytes();
        }

        public long cacheBytesWith(List<GenerationRequest> requests) {
            return d.cacheBytesWith(requests);
        }

        public void close() {
            d.close();
        }
    }

    static ServedModel load(java.nio.file.Path run) {
        return ServedModel.load(run, new GenerationOptions(50, false, 50), null, calm4j.nn.WeightType.FP32);
    }

    /** {@code real} with each new session wrapped by {@code wrap}. */
    static ServedModel withSession(ServedModel real, Function<GenerationSession<?>, GenerationSession<?>> wrap) {
        return new ServedModel(real) {
            @Override
            GenerationSession<?> newSession(boolean stopAtEos) {
                return wrap.apply(real.newSession(stopAtEos));
            }
        };
    }

    /** A session that fails at its first step once a sequence asked for exactly 13 tokens has joined. */
    static final class PoisonedAt13 extends ForwardingSession {
        boolean poisoned;

        PoisonedAt13(GenerationSession<?> d) {
            super(d);
        }

        @Override
        public List<Integer> join(List<GenerationRequest> requests) {
            poisoned |= requests.stream().anyMatch(r -> r.maxTokens() == 13);
            return super.join(requests);
        }

        @Override
        public List<Event<GenerationSession.Result>> step() {
            if (poisoned) throw new IllegalStateException("a poisoned step");
            return super.step();
        }
    }

    static Sequence sequence(int[] prompt, int maxTokens, long seed, int index, long deadline,
                             java.util.concurrent.BlockingQueue<Sequence.Step> out) {
        return new Sequence(new GenerationRequest(prompt, maxTokens, 1.0, seed), index, deadline, out);
    }

    @Test
    void aFailingGenerationStepEndsItsSequencesWithAnErrorAndServingGoesOn() throws Exception {
        ServedModel real = load(runs.calm);
        try (var scheduler = new Scheduler(withSession(real, PoisonedAt13::new), 4, 8, 0, true)) {
            java.util.concurrent.LinkedBlockingQueue<Sequence.Step> out =
                    new java.util.concurrent.LinkedBlockingQueue<>();
            long deadline = System.nanoTime() + 60_000_000_000L;
            int[] prompt = real.encode("the people");
            assertTrue(scheduler.submit(List.of(sequence(prompt, 13, 1, 0, deadline, out))));
            Sequence.Step end = out.take();
            while (end.finish() == null) end = out.take();
            assertTrue(end.finish() == Finish.ERROR && end.error().contains("a poisoned step"), end.toString());

            assertTrue(scheduler.submit(List.of(sequence(prompt, 8, 2, 1, deadline, out))));
            end = out.take();
            while (end.finish() == null) end = out.take();
            assertTrue(List.of(Finish.LENGTH, Finish.EOS).contains(end.finish()),
                    "the next request is served: " + end.finish());
            assertTrue(scheduler.isRunning());
            assertEquals(1, scheduler.failures());
        }
    }

    /** A session whose every step takes {@code millis} longer (a stand-in for a large model). */
    static final class Slowed extends ForwardingSession {
        final long millis;

        Slowed(GenerationSession<?> d, long millis) {
            super(d);
            this.millis = millis;
        }

        @Override
        public List<Event<GenerationSession.Result>> step() {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return super.step();
        }
    }

    /** A served model whose every generation step takes {@code millis} longer. */
    static ServedModel slowed(ServedModel real, long millis) {
        return withSession(real, d -> new Slowed(d, millis));
    }

    static int running(CompletionServer server) throws Exception {
        return json(get(server, "/health")).path("running").asInt();
    }

    @Test
    void withAKvMemoryBudgetSequencesJoinOnlyWhileTheirCachesFitAndOneThatNeverFitsIsRefused() throws Exception {
        ServedModel slow = slowed(load(runs.calm), 30);
        long perSequence = slow.model.cacheBytes(new GenerationRequest(slow.encode("the"), 40, 1.0, 1),
                slow.options);
        // Room for two such sequences' caches, not three (the batch cache grows to 4 rows for a third).
        long budget = 2 * perSequence + perSequence / 5;
        try (CompletionServer server = CompletionServer.start(slow, ServedRuns.options(8, 16, 120).withCache(budget,
                256, true))) {
            List<CompletableFuture<HttpResponse<String>>> all = new ArrayList<>();
            for (int i = 0; i < 5; i++) {
                all.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(server.url() + "/v1/completions"))
                        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                                "{\"prompt\": \"the\", \"max_tokens\": 40, \"seed\": " + i + "}")).build(),
                        HttpResponse.BodyHandlers.ofString()));
            }
            int most = 0;
            while (!all.stream().allMatch(CompletableFuture::isDone)) {
                JsonNode h = json(get(server, "/health"));
                most = Math.max(most, h.path("running").asInt());
                assertTrue(h.path("kv_cache_bytes").asLong() <= budget, "the cache stays within the budget: " + h);
                Thread.sleep(20);
            }
            assertEquals(2, most, "two sequences' caches fit, so two run at once");
            for (var f : all) assertEquals(200, f.get().statusCode(), f.get().body());
            HttpResponse<String> huge = post(server, "{\"prompt\": \"the\", \"max_tokens\": 120}");
            assertEquals(400, huge.statusCode(), huge.body());
            assertTrue(huge.body().contains("KV cache") && huge.body().contains("--kv-memory"), huge.body());
        }
    }

    @Test
    void aNonStreamedRequestWhoseClientLeftStopsGeneratingAtTheNextStep() throws Exception {
        ServedModel slow = slowed(load(runs.tokenLm), 20); // 400 tokens: at least 8 s
        try (CompletionServer server = CompletionServer.start(slow, ServedRuns.options(4, 4, 600))) {
            URI uri = URI.create(server.url());
            String body = "{\"prompt\": \"the\", \"max_tokens\": 400, \"seed\": 1}";
            try (Socket s = new Socket(uri.getHost(), uri.getPort())) {
                s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                        + "application/json\r\nContent-Length: "
                        + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.UTF_8));
                long until = System.currentTimeMillis() + 5_000;
                while (running(server) == 0 && System.currentTimeMillis() < until) Thread.sleep(20);
                assertEquals(1, running(server), "generating");
            } // the client hangs up without waiting for the answer
            long left = System.nanoTime();
            long until = System.currentTimeMillis() + 3_000;
            while (running(server) != 0 && System.currentTimeMillis() < until) Thread.sleep(20);
            assertEquals(0, running(server), "the sequence left the batch");
            assertTrue((System.nanoTime() - left) / 1e9 < 3, "well before its 8 s of generation would end");
        }
    }

    /** Opens a connection and sends {@code head} of a request, then nothing more. */
    static Socket stalled(URI uri, String head) throws Exception {
        Socket s = new Socket(uri.getHost(), uri.getPort());
        s.getOutputStream().write(head.getBytes(StandardCharsets.UTF_8));
        s.getOutputStream().flush();
        return s;
    }

    @Test
    void slowClientsCannotKeepHealthOrCompletionsWaiting() throws Exception {
        URI uri = URI.create(calm.url());
        List<Socket> slow = new ArrayList<>();
        try {
            for (int i = 0; i < 97; i++) {
                slow.add(stalled(uri, switch (i % 3) {
                    case 0 -> "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n";          // headers never end
                    case 1 -> "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            + "Content-Length: 100\r\n\r\n{\"pro"; // half a body
                    default -> "GET /hea";                                                  // half a request line
                }));
            }
            HttpClient quick = HttpClient.newBuilder().connectTimeout(java.time.Duration.ofSeconds(2)).build();
            long t0 = System.nanoTime();
            HttpResponse<String> health = quick.send(HttpRequest.newBuilder(URI.create(calm.url() + "/health"))
                    .timeout(java.time.Duration.ofSeconds(2)).GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode());
            HttpResponse<String> done = quick.send(HttpRequest.newBuilder(URI.create(calm.url() + "/v1/completions"))
                    .timeout(java.time.Duration.ofSeconds(10)).header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                            "{\"prompt\": \"the people\", \"max_tokens\": 8}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, done.statusCode(), done.body());
            assertTrue((System.nanoTime() - t0) / 1e9 < 5, "answered while 97 clients stall");

            // The stalled connections are closed once they have sent nothing for the read timeout.
            for (Socket s : List.of(slow.get(0), slow.get(1), slow.get(2))) {
                s.setSoTimeout((int) CompletionServer.READ_TIMEOUT_MILLIS + 5_000);
                java.io.InputStream in = s.getInputStream();
                long start = System.nanoTime();
                while (in.read() >= 0) { /* an error response, if any, then the close */ }
                assertTrue((System.nanoTime() - start) / 1e6 < CompletionServer.READ_TIMEOUT_MILLIS + 5_000);
            }
        } finally {
            for (Socket s : slow) s.close();
        }
    }

    @Test
    void oversizedHeadersGet431() throws Exception {
        URI uri = URI.create(calm.url());
        try (Socket s = stalled(uri, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + "a".repeat(20_000)
                + "\r\n\r\n")) {
            s.setSoTimeout(5_000);
            String status = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8))
                    .readLine();
            assertTrue(status != null && status.startsWith("HTTP/1.1 431"), String.valueOf(status));
        }
    }

    /** The status line and body a raw request gets (the connection is read to its end or for 15 s). */
    static String rawExchange(URI uri, String request) throws Exception {
        try (Socket s = new Socket(uri.getHost(), uri.getPort())) {
            s.setSoTimeout(15_000);
            s.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
            s.getOutputStream().flush();
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void aBodyThatCannotBeReadToItsEndIsA400NeverASuccess() throws Exception {
        URI uri = URI.create(calm.url());
        String badChunks = rawExchange(uri, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                + "application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{\"prompt\":\"a\"}\r\n0\r\n\r\n");
        assertTrue(badChunks.startsWith("HTTP/1.1 400"), badChunks);
        assertTrue(badChunks.contains("could not be read"), badChunks);
        // Content-Length says 100; 14 bytes come, then nothing: the read timeout (5 s) ends it with a 400
        String shortBody = rawExchange(uri, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                + "application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":\"a\"}");
        assertTrue(shortBody.startsWith("HTTP/1.1 400"), shortBody);
    }

    @Test
    void aGracefulShutdownEndsEveryStreamWithItsLastChunkAndDone() throws Exception {
        ServedModel slow = slowed(load(runs.tokenLm), 20); // 400 tokens: at least 8 s each
        CompletionServer server = CompletionServer.start(slow, ServedRuns.options(2, 8, 600));
        URI uri = URI.create(server.url());
        String body = "{\"prompt\": \"the\", \"max_tokens\": 400, \"stream\": true, \"seed\": 1}";
        String request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.length() + "\r\n\r\n" + body;
        List<java.util.concurrent.CompletableFuture<String>> streams = new ArrayList<>();
        for (int i = 0; i < 4; i++) { // two run, two wait in the queue
            streams.add(java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return rawExchange(uri, request);
                } catch (Exception e) {
                    return "failed: " + e;
                }
            }));
        }
        long until = System.currentTimeMillis() + 5_000;
        while (running(server) < 2 && System.currentTimeMillis() < until) Thread.sleep(20);
        long start = System.nanoTime();
        server.shutdown(500);
        assertTrue((System.nanoTime() - start) / 1e9 < 5, "the grace period bounds the shutdown");
        for (var f : streams) {
            String out = f.get(20, java.util.concurrent.TimeUnit.SECONDS);
            assertTrue(out.startsWith("HTTP/1.1 200"), out);
            assertTrue(out.contains("\"finish_reason\":\"shutdown\""), out);
            assertTrue(out.strip().endsWith("data: [DONE]") || out.contains("data: [DONE]"), out);
        }
        assertThrows(java.io.IOException.class, () -> new Socket(uri.getHost(), uri.getPort()).close(),
                "no new connection is accepted");
    }
}
