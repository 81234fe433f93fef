package calm4j.serve;

import calm4j.engine.Configs;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.List;

import static calm4j.serve.CompletionServerTest.HTTP;
import static calm4j.serve.CompletionServerTest.events;
import static calm4j.serve.CompletionServerTest.get;
import static calm4j.serve.CompletionServerTest.json;
import static org.junit.jupiter.api.Assertions.*;

/** What OpenAI clients ask beyond plain completions: chat, stop strings, prompt lists, any temperature, CORS. */
class ChatCompletionsTest {
    @TempDir
    static Path dir;
    static ServedRuns runs;
    static CompletionServer calm, browserFacing;

    @BeforeAll
    static void start() throws Exception {
        runs = ServedRuns.train(dir);
        calm = CompletionServer.start(runs.calm, ServedRuns.options(8, 16, 60));
        CompletionServer.Options o = ServedRuns.options(8, 16, 60);
        browserFacing = CompletionServer.start(runs.calm, o.withAllowOrigin("*"));
    }

    @AfterAll
    static void stop() {
        if (calm != null) calm.close();
        if (browserFacing != null) browserFacing.close();
    }

    static HttpResponse<String> post(String path, String body) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(calm.url() + path))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static String chatBody(String extra) {
        return "{\"model\": \"" + calm.modelId() + "\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief."
                + "\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Tell me\"}, {\"type\": "
                + "\"text\", \"text\": \" a story.\"}]}], \"seed\": 7" + extra + "}";
    }

    @Test
    void aChatCompletionAnswersWithAnAssistantMessageAndUsage() throws Exception {
        HttpResponse<String> res = post("/v1/chat/completions", chatBody(", \"max_tokens\": 12, \"n\": 2, "
                + "\"temperature\": 0.7"));
        assertEquals(200, res.statusCode(), res.body());
        JsonNode root = json(res);
        assertEquals("chat.completion", root.get("object").asText());
        assertTrue(root.get("id").asText().startsWith("chatcmpl-"));
        assertEquals(2, root.get("choices").size());
        for (JsonNode ch : root.get("choices")) {
            assertEquals("assistant", ch.at("/message/role").asText());
            assertTrue(ch.at("/message/content").isTextual());
            assertFalse(ch.at("/message/content").asText().startsWith(" "), "the space after 'Assistant:' is dropped");
            assertTrue(List.of("stop", "length").contains(ch.get("finish_reason").asText()), ch.toString());
        }
        assertTrue(root.at("/usage/prompt_tokens").asInt() > 0);
        assertEquals(root.at("/usage/prompt_tokens").asInt() + root.at("/usage/completion_tokens").asInt(),
                root.at("/usage/total_tokens").asInt());
        // Same seed, same answer; the chunked answer agrees with the whole one.
        HttpResponse<String> again = post("/v1/chat/completions", chatBody(", \"max_tokens\": 12, \"n\": 2, "
                + "\"temperature\": 0.7"));
        assertEquals(root.get("choices"), json(again).get("choices"));
    }

    @Test
    void aStreamedChatOpensWithTheRoleSendsDeltasThenUsageThenDone() throws Exception {
        String common = ", \"max_completion_tokens\": 12";
        JsonNode whole = json(post("/v1/chat/completions", chatBody(common)));
        List<JsonNode> ev = events(post("/v1/chat/completions", chatBody(common + ", \"stream\": true, "
                + "\"stream_options\": {\"include_usage\": true}")).body());
        assertEquals("assistant", ev.get(0).at("/choices/0/delta/role").asText(), "the first chunk names the role");
        StringBuilder text = new StringBuilder();
        String finish = null;
        for (JsonNode e : ev.subList(0, ev.size() - 1)) {
            assertEquals("chat.completion.chunk", e.get("object").asText());
            text.append(e.at("/choices/0/delta/content").asText(""));
            if (!e.at("/choices/0/finish_reason").isNull()) finish = e.at("/choices/0/finish_reason").asText();
        }
        assertEquals(whole.at("/choices/0/message/content").asText(), text.toString());
        assertEquals(whole.at("/choices/0/finish_reason").asText(), finish);
        JsonNode last = ev.get(ev.size() - 1);
        assertEquals(0, last.get("choices").size(), "the usage chunk has no choices");
        assertEquals(whole.get("usage"), last.get("usage"));
    }

    @Test
    void aStopStringEndsTheTextBeforeItEvenWhenItSpansChunks() throws Exception {
        String base = "{\"prompt\": \"the\", \"max_tokens\": 40, \"seed\": 3";
        String full = json(post("/v1/completions", base + "}")).at("/choices/0/text").asText();
        assertTrue(full.length() >= 12, "enough text to cut: " + full);
        // Chosen across the boundary of the first K-token chunk's text, wherever that falls.
        String stop = full.substring(5, 12);
        String expected = full.substring(0, full.indexOf(stop));
        assertFalse(expected.isBlank(), "text before the stop string: " + full);
        String body = base + ", \"stop\": [\"never appears \\u0000\", " + Configs.JSON.writeValueAsString(stop) + "]";
        JsonNode cut = json(post("/v1/completions", body + "}"));
        assertEquals(expected, cut.at("/choices/0/text").asText());
        assertEquals("stop", cut.at("/choices/0/finish_reason").asText());
        StringBuilder streamed = new StringBuilder();
        List<JsonNode> ev = events(post("/v1/completions", body + ", \"stream\": true}").body());
        for (JsonNode e : ev) streamed.append(e.at("/choices/0/text").asText());
        assertEquals(expected, streamed.toString(), "nothing after the stop string is streamed");
        assertEquals("stop", ev.get(ev.size() - 1).at("/choices/0/finish_reason").asText());
    }

    @Test
    void promptsMayBeAListOfStringsTokenIdsOrListsOfTokenIds() throws Exception {
        JsonNode two = json(post("/v1/completions", "{\"prompt\": [\"the\", \"a\"], \"n\": 2, \"max_tokens\": 4, "
                + "\"seed\": 1}"));
        assertEquals(4, two.get("choices").size(), "one choice per prompt and n");
        for (int i = 0; i < 4; i++) assertEquals(i, two.at("/choices/" + i + "/index").asInt());
        HttpResponse<String> ids = post("/v1/completions", "{\"prompt\": [5, 6, 7], \"max_tokens\": 4}");
        assertEquals(200, ids.statusCode(), ids.body());
        assertEquals(3, json(ids).at("/usage/prompt_tokens").asInt());
        JsonNode lists = json(post("/v1/completions", "{\"prompt\": [[5, 6], [7]], \"max_tokens\": 4}"));
        assertEquals(2, lists.get("choices").size());
        assertEquals(3, lists.at("/usage/prompt_tokens").asInt());
        HttpResponse<String> outside = post("/v1/completions", "{\"prompt\": [99999999]}");
        assertEquals(400, outside.statusCode());
        assertTrue(outside.body().contains("outside this model's vocabulary"), outside.body());
    }

    @Test
    void anyTemperatureInZeroToTwoIsServed() throws Exception {
        for (String t : List.of("0", "0.333", "0.7", "1.5", "2")) {
            HttpResponse<String> res = post("/v1/completions", "{\"prompt\": \"the\", \"max_tokens\": 8, "
                    + "\"temperature\": " + t + "}");
            assertEquals(200, res.statusCode(), "temperature " + t + ": " + res.body());
        }
        HttpResponse<String> hot = post("/v1/completions", "{\"prompt\": \"the\", \"temperature\": 2.5}");
        assertEquals(400, hot.statusCode());
        assertTrue(hot.body().contains("temperature"), hot.body());
    }

    @Test
    void maxTokensBeyondWhatTheContextLeavesIsRefusedAndTheModelCardStatesTheRealLimit() throws Exception {
        JsonNode card = json(get(calm, "/v1/models/" + calm.modelId()));
        assertEquals(calm.modelId(), card.get("id").asText());
        int limit = card.get("max_tokens").asInt();
        assertTrue(limit > 0 && limit <= card.get("max_prompt_tokens").asInt() + 4 && limit < 400,
                "the context, not the server's 400, bounds it: " + card);
        HttpResponse<String> res = post("/v1/completions", "{\"prompt\": \"the\", \"max_tokens\": " + (limit + 50) + "}");
        assertEquals(400, res.statusCode());
        assertTrue(res.body().contains("context leaves room for"), res.body());
        assertEquals(404, get(calm, "/v1/models/another-model").statusCode());
        assertEquals("plain", card.get("chat_template").asText());
    }

    @Test
    void chatRequestsWithToolsImagesOrOtherRolesGet400NamingTheProblem() throws Exception {
        String[][] cases = {
                {"{\"messages\": [{\"role\": \"tool\", \"content\": \"42\"}]}", "role must be system, user or assistant"},
                {"{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": "
                        + "{\"url\": \"x\"}}]}]}", "text only"},
                {"{\"messages\": []}", "'messages' is required"},
                {"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": [{\"type\": \"function\"}]}",
                        "tool calls are not served"},
                {"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": true}", "log-probabilities"},
                {"{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": [\"a\", \"b\", \"c\", \"d\", "
                        + "\"e\"]}", "at most 4"},
        };
        for (String[] c : cases) {
            HttpResponse<String> res = post("/v1/chat/completions", c[0]);
            assertEquals(400, res.statusCode(), c[0]);
            assertTrue(res.body().contains(c[1]), c[0] + " -> " + res.body());
        }
        ObjectNode ok = (ObjectNode) Configs.JSON.readTree("{\"messages\": [{\"role\": \"developer\", \"content\": "
                + "\"x\"}, {\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2, \"user\": \"someone\", "
                + "\"tools\": [], \"response_format\": {\"type\": \"text\"}}");
        assertEquals(200, post("/v1/chat/completions", ok.toString()).statusCode(), "neutral values are accepted");
    }

    @Test
    void withAllowOriginABrowsersPreflightIsAnsweredAndResponsesCarryTheHeader() throws Exception {
        HttpResponse<String> pre = HTTP.send(HttpRequest.newBuilder(URI.create(browserFacing.url()
                        + "/v1/chat/completions")).method("OPTIONS", HttpRequest.BodyPublishers.noBody())
                .header("Origin", "http://app.example").header("Access-Control-Request-Method", "POST").build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(204, pre.statusCode());
        assertEquals("*", pre.headers().firstValue("Access-Control-Allow-Origin").orElse(null));
        assertTrue(pre.headers().firstValue("Access-Control-Allow-Methods").orElse("").contains("POST"));
        assertEquals("*", get(browserFacing, "/v1/models").headers().firstValue("Access-Control-Allow-Origin")
                .orElse(null));
        HttpResponse<String> closed = HTTP.send(HttpRequest.newBuilder(URI.create(calm.url() + "/v1/completions"))
                .method("OPTIONS", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(405, closed.statusCode(), "without --allow-origin there is no CORS");
        assertTrue(closed.headers().firstValue("Access-Control-Allow-Origin").isEmpty());
    }

    @Test
    void chatsThroughATemplateThatLoopsForeverAreRefusedInTimeAndTheServerStaysResponsive(@TempDir Path tmp)
            throws Exception {
        // Guarded so that it renders at start-up (one message) and loops for two-message chats.
        java.nio.file.Path template = tmp.resolve("loops.jinja");
        java.nio.file.Files.writeString(template, "{% if messages | length == 2 %}{% for i in range(10000) %}"
                + "{% for j in range(10000) %}{% for k in range(10000) %}{% endfor %}{% endfor %}{% endfor %}"
                + "{% endif %}{{ messages[0]['content'] }}");
        try (CompletionServer server = CompletionServer.start(runs.calm, ServedRuns.options(8, 64, 10), template)) {
            String chat = "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", "
                    + "\"content\": \"b\"}], \"max_tokens\": 4}";
            var all = new java.util.ArrayList<java.util.concurrent.CompletableFuture<HttpResponse<String>>>();
            long t0 = System.nanoTime();
            for (int i = 0; i < 40; i++) {
                all.add(HTTP.sendAsync(HttpRequest.newBuilder(URI.create(server.url() + "/v1/chat/completions"))
                        .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(chat))
                        .build(), HttpResponse.BodyHandlers.ofString()));
            }
            long h0 = System.nanoTime();
            HttpResponse<String> health = HTTP.send(HttpRequest.newBuilder(URI.create(server.url() + "/health"))
                    .GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode());
            assertTrue((System.nanoTime() - h0) / 1e9 < 2, "/health answers while the renders are stopped");
            for (var f : all) {
                HttpResponse<String> res = f.get(60, java.util.concurrent.TimeUnit.SECONDS);
                assertEquals(400, res.statusCode(), res.body());
                assertTrue(res.body().contains("chat template"), res.body());
            }
            // Two renders at a time, each stopped at its 2 s deadline or refused when no place frees in that time.
            assertTrue((System.nanoTime() - t0) / 1e9 < 50, "forty chats are all answered in bounded time");
            HttpResponse<String> one = HTTP.send(HttpRequest.newBuilder(URI.create(server.url()
                    + "/v1/chat/completions")).header("Content-Type", "application/json").POST(HttpRequest
                    .BodyPublishers.ofString("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], "
                    + "\"max_tokens\": 4}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, one.statusCode(), "a chat the template renders is served: " + one.body());
        }
    }
}
