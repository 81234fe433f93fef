package calm4j.serve;

import calm4j.engine.Configs;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import calm4j.generate.Finish;
import calm4j.generate.TextStream;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.IOException;
import java.io.InputStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * calm4j's HTTP API: an OpenAI-compatible subset ({@code POST /v1/completions} with server-sent events when
 * {@code stream} is set, {@code GET /v1/models}), {@code GET /health}, and the playground page at {@code /}.
 * Requests only ever name text and numbers; the model is fixed when the server starts.
 */
public final class CompletionServer implements AutoCloseable {
    /**
     * @param maxBatch       sequences generated together (1 turns shared batching off)
     * @param queue          sequences that may wait for a place in the batch; beyond that, 503
     * @param maxTokens      the largest max_tokens a request may ask for
     * @param timeoutSeconds a request's sequences are stopped after this long
     * @param maxBodyBytes   larger request bodies are refused
     * @param pool           CALM candidates per step for T &lt; 1
     * @param maxDraws       CALM candidates drawn to continue a prompt's partial last chunk before it is forced
     */
    public record Options(String host, int port, int maxBatch, int queue, int maxTokens, double timeoutSeconds,
                          int maxBodyBytes, int pool, int maxDraws) {
        /** Bounds that keep a server's own settings from exhausting memory or threads (a thread per sequence). */
        static final int MAX_QUEUE = 4096, MAX_BATCH = 1024, MAX_BODY = 64 << 20;

        public Options {
            if (maxBatch < 1 || maxBatch > MAX_BATCH) {
                throw new UserError("--max-batch must lie in [1, " + MAX_BATCH + "], got " + maxBatch);
            }
            if (queue < 1 || queue > MAX_QUEUE) {
                throw new UserError("--queue must lie in [1, " + MAX_QUEUE + "], got " + queue);
            }
            if (maxTokens < 1) throw new UserError("--max-tokens must be at least 1, got " + maxTokens);
            if (!(timeoutSeconds > 0) || timeoutSeconds > 86_400) {
                throw new UserError("--timeout must lie in (0, 86400] seconds, got " + timeoutSeconds);
            }
            if (port < 0 || port > 65535) throw new UserError("--port must lie in [0, 65535], got " + port);
            if (maxBodyBytes < 1 || maxBodyBytes > MAX_BODY) {
                throw new UserError("--max-body must lie in [1, " + MAX_BODY + "] bytes, got " + maxBodyBytes);
            }
            if (pool < 1) throw new UserError("--pool must be at least 1, got " + pool);
            if (maxDraws < 1) throw new UserError("--max-draws must be at least 1, got " + maxDraws);
            if (host == null || host.isBlank()) throw new UserError("--host must name an address");
        }
    }

    private final ServedModel<?> model;
    private final Options options;
    private final Scheduler<?> scheduler;
    private final Server http;
    private final ServerConnector connector;
    private final AtomicLong requestIds = new AtomicLong();
    private final byte[] playground;
    /** One line per JSON document: server-sent events must not contain newlines inside an event's data. */
    private static final ObjectWriter COMPACT = Configs.JSON.writer().without(SerializationFeature.INDENT_OUTPUT);
    /** A body is one JSON document: anything after it is an error, not ignored. */
    private static final ObjectReader STRICT = Configs.JSON.reader()
            .with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /**
     * No tokenizer calm4j serves has a token of more characters than this, so a prompt longer than this many
     * characters per allowed token is refused before it is tokenized (a 1 MB prompt costs nothing).
     */
    static final int MAX_CHARS_PER_TOKEN = 256;

    private CompletionServer(ServedModel<?> model, Options options) throws IOException {
        this.model = model;
        this.options = options;
        try (InputStream in = CompletionServer.class.getResourceAsStream("playground.html")) {
            this.playground = in.readAllBytes();
        }
        InetAddress address;
        try {
            address = InetAddress.getByName(options.host());
        } catch (UnknownHostException e) {
            throw new UserError("--host " + options.host() + " is not an address of this machine or a name that "
                    + "resolves (" + e.getMessage() + "): use 127.0.0.1 (the default), 0.0.0.0, or an interface's "
                    + "address");
        }
        this.scheduler = new Scheduler<>(model, options.maxBatch(), options.queue());
        // A thread per waiting or running request, and spare ones to answer 503s and health checks at once. Reading
        // headers takes no thread (Jetty parses them as they arrive), so slow clients cannot take these.
        QueuedThreadPool threads = new QueuedThreadPool(options.maxBatch() + options.queue() + 32, 4);
        threads.setName("calm4j-http");
        threads.setDaemon(true);
        this.http = new Server(threads);
        HttpConfiguration config = new HttpConfiguration();
        config.setRequestHeaderSize(MAX_HEADER_BYTES); // larger headers: 431
        config.setSendServerVersion(false);
        config.setSendXPoweredBy(false);
        this.connector = new ServerConnector(http, 1, 1, new HttpConnectionFactory(config));
        connector.setHost(address.getHostAddress());
        connector.setPort(options.port());
        // A connection that sends nothing for this long while its headers or body are read is closed; a request
        // being generated is not idle in this sense (its handler is neither reading nor writing).
        connector.setIdleTimeout(READ_TIMEOUT_MILLIS);
        http.addConnector(connector);
        http.addBean(new NetworkConnectionLimit(MAX_CONNECTIONS, connector));
        http.setHandler(new Handler.Abstract() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) {
                try {
                    route(new Exchange(request, response));
                    callback.succeeded();
                } catch (Throwable t) {
                    callback.failed(t);
                }
                return true;
            }
        });
        try {
            http.start();
        } catch (Exception e) {
            scheduler.close();
            stopQuietly();
            Throwable cause = e instanceof IOException && e.getCause() != null ? e.getCause() : e;
            if (cause instanceof BindException || e instanceof IOException) {
                throw new UserError("cannot listen on " + options.host() + ":" + options.port() + " ("
                        + e.getMessage() + "): choose another --port, or stop what uses it");
            }
            throw new IOException("the HTTP server did not start: " + e, e);
        }
    }

    /** Jetty's connection limits. */
    static final int MAX_HEADER_BYTES = 8192, MAX_CONNECTIONS = 512;
    /** Headers and body must arrive without a pause this long. */
    static final long READ_TIMEOUT_MILLIS = 5000;

    private void stopQuietly() {
        try {
            http.stop();
        } catch (Exception ignored) {
            // stopping a server that did not start
        }
    }

    /** Loads a CALM or token-model run and starts serving it. */
    public static CompletionServer start(Path run, Options options) throws IOException {
        return start(ServedModel.load(run, options.pool(), options.maxDraws()), options);
    }

    static CompletionServer start(ServedModel<?> model, Options options) throws IOException {
        return new CompletionServer(model, options);
    }

    /** The address it listens on (with the real port when 0 was asked for). */
    public String url() {
        String host = connector.getHost();
        try {
            if (InetAddress.getByName(host).isAnyLocalAddress()) host = "127.0.0.1";
        } catch (UnknownHostException e) {
            // the host was resolved when the server started
        }
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + connector.getLocalPort();
    }

    public String modelId() {
        return model.id;
    }

    @Override
    public void close() {
        stopQuietly();
        scheduler.close();
    }

    private void route(Exchange ex) throws IOException {
        try {
            String path = ex.path();
            String method = ex.method();
            switch (path) {
                case "/v1/completions" -> {
                    if (allow(ex, "POST")) completions(ex);
                }
                case "/v1/models" -> {
                    if (allow(ex, "GET")) sendJson(ex, 200, models());
                }
                case "/health" -> {
                    if (allow(ex, "GET")) sendJson(ex, scheduler.isRunning() ? 200 : 500, health());
                }
                case "/", "/index.html" -> {
                    if (allow(ex, "GET")) send(ex, 200, "text/html; charset=utf-8", playground);
                }
                default -> sendError(ex, 404, "not_found", "no such endpoint: " + method + " " + path
                        + " (calm4j serves POST /v1/completions, GET /v1/models, GET /health and the playground at /)");
            }
        } catch (IOException e) {
            // The client went away while we answered: nothing to tell it.
        }
    }

    private boolean allow(Exchange ex, String method) throws IOException {
        if (ex.method().equals(method)) return true;
        ex.header("Allow", method);
        sendError(ex, 405, "method_not_allowed", ex.path() + " takes " + method);
        return false;
    }

    private ObjectNode models() {
        ObjectNode root = Configs.JSON.createObjectNode();
        root.put("object", "list");
        ObjectNode m = root.putArray("data").addObject();
        m.put("id", model.id);
        m.put("object", "model");
        m.put("created", 0);
        m.put("owned_by", "calm4j");
        m.put("kind", model.kind);
        m.put("tokens_per_step", model.tokensPerStep);
        m.put("max_prompt_tokens", model.maxPromptTokens());
        m.put("max_tokens", options.maxTokens());
        return root;
    }

    private ObjectNode health() {
        ObjectNode root = Configs.JSON.createObjectNode();
        root.put("status", scheduler.isRunning() ? "ok" : "failed");
        root.put("model", model.id);
        root.put("kind", model.kind);
        root.put("running", scheduler.active());
        root.put("queued", scheduler.queued());
        root.put("failed_steps", scheduler.failures());
        return root;
    }

    private void completions(Exchange ex) throws IOException {
        if (ex.declaredLength() > options.maxBodyBytes()) { // refused before a byte of it is read
            sendError(ex, 400, "invalid_request_error", "the request body is larger than " + options.maxBodyBytes()
                    + " bytes");
            return;
        }
        byte[] bytes = ex.readBody(options.maxBodyBytes());
        if (bytes.length > options.maxBodyBytes()) {
            sendError(ex, 400, "invalid_request_error", "the request body is larger than " + options.maxBodyBytes()
                    + " bytes");
            return;
        }
        CompletionRequest req;
        int[] prompt;
        try {
            JsonNode body;
            try {
                body = STRICT.readTree(bytes);
            } catch (IOException e) {
                throw new CompletionRequest.Invalid("the body is not valid JSON: "
                        + LibtorchErrors.firstLine(e.getMessage()));
            }
            req = CompletionRequest.parse(body, model, options.maxTokens());
            long charLimit = (long) model.maxPromptTokens() * MAX_CHARS_PER_TOKEN;
            if (req.prompt().length() > charLimit) {
                throw new CompletionRequest.Invalid("the prompt is " + req.prompt().length() + " characters, far more "
                        + "than this model's context of " + model.maxPromptTokens() + " prompt tokens: shorten it");
            }
            prompt = model.encode(req.prompt());
            if (prompt.length > model.maxPromptTokens()) {
                throw new CompletionRequest.Invalid("the prompt is " + prompt.length + " tokens; this model's context "
                        + "leaves room for at most " + model.maxPromptTokens() + ": shorten it");
            }
        } catch (CompletionRequest.Invalid e) {
            sendError(ex, 400, "invalid_request_error", e.getMessage());
            return;
        }
        long seed = req.seeded() ? req.seed() : ThreadLocalRandom.current().nextLong();
        long deadline = System.nanoTime() + (long) (options.timeoutSeconds() * 1e9);
        BlockingQueue<Sequence.Step> out = new LinkedBlockingQueue<>();
        List<Sequence> sequences = new ArrayList<>();
        for (int i = 0; i < req.n(); i++) {
            sequences.add(new Sequence(prompt, req.maxTokens(), req.temperature(), seed + i, i, deadline, out));
        }
        if (!scheduler.isRunning()) {
            sendError(ex, 500, "server_error", "generation has failed on this server (see its log); restart it");
            return;
        }
        if (!scheduler.submit(sequences)) {
            ex.header("Retry-After", "1");
            sendError(ex, 503, "server_busy", "the server is busy (its queue of " + options.queue() + " sequences is "
                    + "full): retry after a second");
            return;
        }
        Completion c = new Completion("cmpl-" + requestIds.incrementAndGet(), System.currentTimeMillis() / 1000,
                req.n(), prompt.length);
        if (req.stream()) {
            stream(ex, c, out, sequences);
        } else {
            collect(ex, c, out, sequences);
        }
    }

    /** The choices of one request as they grow; text is decoded from all tokens so far, UTF-8 safe. */
    private final class Completion {
        final String id;
        final long created;
        final int promptTokens;
        final List<TextStream> choices = new ArrayList<>();
        final Finish[] finish;
        /** What failed, for a request that ended in an error. */
        String error;
        final long giveUpNanos = System.nanoTime() + (long) (options.timeoutSeconds() * 1e9)
                + GIVE_UP_AFTER_MILLIS * 1_000_000;
        int finished;

        Completion(String id, long created, int n, int promptTokens) {
            this.id = id;
            this.created = created;
            this.promptTokens = promptTokens;
            this.finish = new Finish[n];
            for (int i = 0; i < n; i++) choices.add(new TextStream(model::decode));
        }

        /** Records a step; returns the choice's new text (a trailing partial UTF-8 character is held back). */
        String add(Sequence.Step d) {
            if (d.error() != null) error = d.error();
            int i = d.index();
            if (i < 0) { // the whole request ended
                for (int j = 0; j < finish.length; j++) {
                    if (finish[j] == null) {
                        finish[j] = d.finish();
                        finished++;
                    }
                }
                return "";
            }
            if (d.finish() != null) {
                finish[i] = d.finish();
                finished++;
            }
            return choices.get(i).add(d.tokens(), d.finish() != null);
        }

        boolean done() {
            return finished == finish.length;
        }

        ObjectNode envelope() {
            ObjectNode root = Configs.JSON.createObjectNode();
            root.put("id", id);
            root.put("object", "text_completion");
            root.put("created", created);
            root.put("model", model.id);
            return root;
        }
    }

    /** OpenAI's finish reasons ("stop", "length"); calm4j adds "timeout", "cancelled" and "error". */
    private static String openAiReason(Finish reason) {
        return reason == null ? null : reason.openAi();
    }

    /** The message of a request that ended in an error. */
    private static String errorMessage(Completion c) {
        return Finish.ERROR.label() + ": " + c.error;
    }

    private void collect(Exchange ex, Completion c, BlockingQueue<Sequence.Step> out,
                         List<Sequence> sequences) throws IOException {
        try {
            long nextCheck = System.nanoTime() + CLIENT_CHECK_MILLIS * 1_000_000;
            while (!c.done()) {
                Sequence.Step d = out.poll(CLIENT_CHECK_MILLIS, TimeUnit.MILLISECONDS);
                if (d != null) c.add(d);
                long now = System.nanoTime();
                if (now > nextCheck) {
                    if (ex.clientGone()) { // nobody will read the answer: stop generating it
                        sequences.forEach(Sequence::cancel);
                        return;
                    }
                    nextCheck = now + CLIENT_CHECK_MILLIS * 1_000_000;
                }
                if (d == null && now > c.giveUpNanos) c.add(stalled(sequences));
            }
        } catch (InterruptedException e) {
            sequences.forEach(Sequence::cancel);
            Thread.currentThread().interrupt();
            return;
        }
        for (Finish reason : c.finish) {
            if (reason == Finish.ERROR) {
                sendError(ex, 500, "server_error", errorMessage(c));
                return;
            }
            if (reason == Finish.TIMEOUT) {
                sendError(ex, 504, "timeout", "generation took longer than the server's limit of "
                        + options.timeoutSeconds() + " s: ask for fewer tokens, or retry when it is less busy");
                return;
            }
        }
        ObjectNode root = c.envelope();
        ArrayNode choices = root.putArray("choices");
        int completionTokens = 0;
        for (int i = 0; i < c.finish.length; i++) {
            ObjectNode ch = choices.addObject();
            ch.put("index", i);
            ch.put("text", c.choices.get(i).text());
            ch.putNull("logprobs");
            ch.put("finish_reason", openAiReason(c.finish[i]));
            completionTokens += c.choices.get(i).size();
        }
        ObjectNode usage = root.putObject("usage");
        usage.put("prompt_tokens", c.promptTokens);
        usage.put("completion_tokens", completionTokens);
        usage.put("total_tokens", c.promptTokens + completionTokens);
        sendJson(ex, 200, root);
    }

    /** Server-sent events: one event per generation step and choice (a K-token chunk for a CALM), then [DONE]. */
    private void stream(Exchange ex, Completion c, BlockingQueue<Sequence.Step> out,
                        List<Sequence> sequences) throws IOException {
        ex.startStream("text/event-stream; charset=utf-8");
        try {
            while (!c.done()) {
                Sequence.Step d = next(out, sequences);
                String delta = c.add(d);
                Finish reason = d.finish();
                ObjectNode event = c.envelope();
                ObjectNode ch = event.putArray("choices").addObject();
                ch.put("index", Math.max(0, d.index()));
                ch.put("text", delta);
                ch.putNull("logprobs");
                ch.put("finish_reason", openAiReason(reason));
                event.put("step_tokens", d.tokens().length);
                if (reason == Finish.ERROR || reason == Finish.TIMEOUT) {
                    event.putObject("error").put("message", reason == Finish.TIMEOUT
                            ? "generation took longer than the server's limit of " + options.timeoutSeconds() + " s"
                            : errorMessage(c));
                }
                ex.write(("data: " + COMPACT.writeValueAsString(event) + "\n\n").getBytes(StandardCharsets.UTF_8));
            }
            ex.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            ex.end();
        } catch (IOException e) {
            sequences.forEach(Sequence::cancel); // the client disconnected: stop generating for it
            throw e;
        } catch (InterruptedException e) {
            sequences.forEach(Sequence::cancel);
            Thread.currentThread().interrupt();
        }
    }

    /**
     * The next step of any of the request's sequences. The scheduler ends each sequence by its deadline; should it
     * stop answering altogether, the request gives up a little later on its own.
     */
    private Sequence.Step next(BlockingQueue<Sequence.Step> out, List<Sequence> sequences)
            throws InterruptedException {
        Sequence.Step d = out.poll((long) (options.timeoutSeconds() * 1000) + GIVE_UP_AFTER_MILLIS,
                TimeUnit.MILLISECONDS);
        return d != null ? d : stalled(sequences);
    }

    private static Sequence.Step stalled(List<Sequence> sequences) {
        sequences.forEach(Sequence::cancel);
        return Sequence.Step.endAll(Finish.ERROR, "the generation thread stopped answering");
    }

    /** How often a non-streamed request checks that its client is still there; how long past its deadline it waits. */
    static final long CLIENT_CHECK_MILLIS = 100, GIVE_UP_AFTER_MILLIS = 30_000;

    private static void sendError(Exchange ex, int status, String type, String message) throws IOException {
        ObjectNode root = Configs.JSON.createObjectNode();
        ObjectNode error = root.putObject("error");
        error.put("message", message);
        error.put("type", type);
        sendJson(ex, status, root);
    }

    private static void sendJson(Exchange ex, int status, JsonNode body) throws IOException {
        send(ex, status, "application/json", COMPACT.writeValueAsBytes(body));
    }

    private static void send(Exchange ex, int status, String type, byte[] body) throws IOException {
        ex.send(status, type, body);
    }
}
