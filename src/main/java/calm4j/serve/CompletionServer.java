package calm4j.serve;

import calm4j.engine.Configs;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import calm4j.generate.Finish;
import calm4j.generate.TextStream;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.StopStrings;
import calm4j.chat.ChatTemplate;
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
     * @param allowOrigin    the browser origin allowed to call the API from another site (CORS), "*" for any, or
     *                       null for none (the default: only same-origin pages, such as the playground)
     */
    public record Options(String host, int port, int maxBatch, int queue, int maxTokens, double timeoutSeconds,
                          int maxBodyBytes, int pool, int maxDraws, String allowOrigin) {
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
            if (allowOrigin != null && !allowOrigin.equals("*") && !allowOrigin.matches("https?://[^/\\s]+")) {
                throw new UserError("--allow-origin must be * or an origin such as https://app.example.com (scheme "
                        + "and host, no path), got " + allowOrigin);
            }
        }

        /** The same limits, serving no other origin. */
        public Options(String host, int port, int maxBatch, int queue, int maxTokens, double timeoutSeconds,
                       int maxBodyBytes, int pool, int maxDraws) {
            this(host, port, maxBatch, queue, maxTokens, timeoutSeconds, maxBodyBytes, pool, maxDraws, null);
        }
    }

    private final ServedModel model;
    private final Options options;
    private final Scheduler scheduler;
    private final Server http;
    private final ServerConnector connector;
    private final AtomicLong requestIds = new AtomicLong();
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();
    private volatile boolean draining;
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
    /** OpenAI's default max_tokens for a completion (a chat gets what the context leaves). */
    static final int DEFAULT_MAX_TOKENS = 16;

    private CompletionServer(ServedModel model, Options options) throws IOException {
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
        this.scheduler = new Scheduler(model, options.maxBatch(), options.queue());
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

    /** Loads a CALM or token-model run and starts serving it, chatting with the run's own template. */
    public static CompletionServer start(Path run, Options options) throws IOException {
        return start(run, options, null);
    }

    /**
     * Loads a CALM or token-model run and starts serving it.
     *
     * @param chatTemplate a Jinja chat template file, or null for the run's own ({@link ChatTemplate#of})
     */
    public static CompletionServer start(Path run, Options options, Path chatTemplate) throws IOException {
        return start(run, options, chatTemplate, calm4j.nn.WeightType.FP32);
    }

    /** As {@link #start(Path, Options, Path)}, the model's weights held as {@code weights} for inference. */
    public static CompletionServer start(Path run, Options options, Path chatTemplate, calm4j.nn.WeightType weights)
            throws IOException {
        ChatTemplate chat = chatTemplate != null ? ChatTemplate.file(chatTemplate) : null;
        return start(ServedModel.load(run, new GenerationOptions(options.pool(), false, options.maxDraws()), chat,
                weights), options);
    }

    static CompletionServer start(ServedModel model, Options options) throws IOException {
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

    /**
     * Shuts down gracefully: new connections are no longer accepted and new requests get 503; sequences already
     * queued or running go on for up to {@code graceMillis}, then end with finish reason "shutdown"; every response
     * under way is completed (a stream ends with its last chunk and {@code data: [DONE]}); then the server stops.
     */
    public void shutdown(long graceMillis) {
        draining = true;
        try {
            connector.close(); // no new connections; those open are served to their end
        } catch (RuntimeException ignored) {
            // already closed
        }
        long deadline = System.nanoTime() + graceMillis * 1_000_000;
        scheduler.drain(deadline);
        long last = deadline + 5_000_000_000L; // then time for the handlers to write their last chunks
        while ((inFlight.get() > 0 || !scheduler.drained()) && System.nanoTime() < last) {
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        close();
    }

    private void route(Exchange ex) throws IOException {
        try {
            String path = ex.path();
            String method = ex.method();
            cors(ex);
            if (method.equals("OPTIONS") && options.allowOrigin() != null) { // a browser's preflight
                ex.send(204, "text/plain", new byte[0]);
                return;
            }
            if (path.startsWith("/v1/models/")) {
                String id = path.substring("/v1/models/".length());
                if (!allow(ex, "GET")) return;
                if (id.equals(model.id)) sendJson(ex, 200, modelCard());
                else sendError(ex, 404, "not_found", "model '" + id + "' is not served here; this server serves '"
                        + model.id + "'");
                return;
            }
            switch (path) {
                case "/v1/completions" -> {
                    if (allow(ex, "POST")) generate(ex, false);
                }
                case "/v1/chat/completions" -> {
                    if (allow(ex, "POST")) generate(ex, true);
                }
                case "/v1/models" -> {
                    if (allow(ex, "GET")) {
                        ObjectNode root = Configs.JSON.createObjectNode();
                        root.put("object", "list");
                        root.putArray("data").add(modelCard());
                        sendJson(ex, 200, root);
                    }
                }
                case "/health" -> {
                    if (allow(ex, "GET")) sendJson(ex, scheduler.isRunning() ? 200 : 500, health());
                }
                case "/", "/index.html" -> {
                    if (allow(ex, "GET")) send(ex, 200, "text/html; charset=utf-8", playground);
                }
                default -> sendError(ex, 404, "not_found", "no such endpoint: " + method + " " + path
                        + " (calm4j serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /v1/models/ID, "
                        + "GET /health and the playground at /)");
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

    /** CORS: with --allow-origin, responses name the origin allowed, and preflights are answered. */
    private void cors(Exchange ex) {
        String allowed = options.allowOrigin();
        if (allowed == null) return;
        ex.header("Access-Control-Allow-Origin", allowed);
        if (!allowed.equals("*")) ex.header("Vary", "Origin");
        ex.header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        ex.header("Access-Control-Allow-Headers", "Content-Type, Authorization, OpenAI-Organization, OpenAI-Project, "
                + "X-Stainless-Lang, X-Stainless-Package-Version, X-Stainless-OS, X-Stainless-Arch, "
                + "X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Retry-Count, X-Stainless-Timeout");
        ex.header("Access-Control-Max-Age", "600");
    }

    /** The served model as OpenAI's model object, with what a request can ask of it. */
    private ObjectNode modelCard() {
        ObjectNode m = Configs.JSON.createObjectNode();
        m.put("id", model.id);
        m.put("object", "model");
        m.put("created", 0);
        m.put("owned_by", "calm4j");
        m.put("kind", model.kind());
        m.put("tokens_per_step", model.tokensPerStep());
        m.put("max_prompt_tokens", model.maxPromptTokens());
        // What an empty prompt can get: the context bounds it as much as the server's limit does.
        m.put("max_tokens", Math.min(options.maxTokens(), model.maxNewTokens(0)));
        m.put("chat_template", model.chat.name());
        return m;
    }

    private ObjectNode health() {
        ObjectNode root = Configs.JSON.createObjectNode();
        root.put("status", scheduler.isRunning() ? "ok" : "failed");
        root.put("model", model.id);
        root.put("kind", model.kind());
        root.put("running", scheduler.active());
        root.put("queued", scheduler.queued());
        root.put("failed_steps", scheduler.failures());
        return root;
    }

    /** {@code POST /v1/completions} and {@code POST /v1/chat/completions}: parse, queue, then stream or collect. */
    private void generate(Exchange ex, boolean chat) throws IOException {
        inFlight.incrementAndGet();
        try {
            if (draining) {
                ex.header("Retry-After", "5");
                sendError(ex, 503, "server_shutting_down", "the server is shutting down: retry with another");
                return;
            }
            generateNow(ex, chat);
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private void generateNow(Exchange ex, boolean chat) throws IOException {
        long started = System.nanoTime();
        if (ex.declaredLength() > options.maxBodyBytes()) { // refused before a byte of it is read
            sendError(ex, 413, "invalid_request_error", "the request body is larger than " + options.maxBodyBytes()
                    + " bytes (the server's limit)");
            return;
        }
        byte[] bytes;
        try {
            bytes = ex.readBody(options.maxBodyBytes());
        } catch (Exchange.BadBody e) {
            ObjectNode root = Configs.JSON.createObjectNode();
            root.putObject("error").put("message", "the request body could not be read (" + e.getMessage()
                    + "): send a complete body of the length declared, or valid chunked encoding")
                    .put("type", "invalid_request_error");
            ex.sendAndClose(400, "application/json", COMPACT.writeValueAsBytes(root));
            System.err.printf("calm serve: %s %s 400 unreadable body (%s) %d ms%n", ex.method(), ex.path(),
                    e.getMessage(), (System.nanoTime() - started) / 1_000_000);
            return;
        }
        if (bytes.length > options.maxBodyBytes()) {
            sendError(ex, 413, "invalid_request_error", "the request body is larger than " + options.maxBodyBytes()
                    + " bytes (the server's limit)");
            return;
        }
        ApiRequest req;
        List<int[]> prompts = new ArrayList<>();
        int maxTokens;
        try {
            JsonNode body;
            try {
                body = STRICT.readTree(bytes);
            } catch (IOException e) {
                throw new ApiRequest.Invalid("the body is not valid JSON: " + LibtorchErrors.firstLine(e.getMessage()));
            }
            req = ApiRequest.parse(body, chat, model.id);
            try {
                model.checkSampling(req.sampling());
                List<ApiRequest.Prompt> asked = chat
                        ? List.of(new ApiRequest.Prompt(model.chat.render(req.messages()), null)) : req.prompts();
                for (ApiRequest.Prompt p : asked) prompts.add(tokens(p));
            } catch (UserError e) {
                throw new ApiRequest.Invalid(e.getMessage());
            }
            int room = prompts.stream().mapToInt(p -> model.maxNewTokens(p.length)).min().orElse(0);
            int limit = Math.min(options.maxTokens(), room);
            if (req.maxTokens() == null) {
                maxTokens = chat ? limit : Math.min(DEFAULT_MAX_TOKENS, limit);
            } else if (req.maxTokens() > options.maxTokens()) {
                throw new ApiRequest.Invalid("'max_tokens' is " + req.maxTokens() + "; this server's limit is "
                        + options.maxTokens());
            } else if (req.maxTokens() > room) {
                throw new ApiRequest.Invalid("'max_tokens' is " + req.maxTokens() + ", but the model's context "
                        + "leaves room for " + room + " new tokens after this prompt: ask for at most " + room
                        + " or shorten the prompt");
            } else {
                maxTokens = req.maxTokens();
            }
        } catch (ApiRequest.Invalid e) {
            sendError(ex, 400, "invalid_request_error", e.getMessage());
            return;
        }
        long seed = req.seeded() ? req.seed() : ThreadLocalRandom.current().nextLong();
        long deadline = System.nanoTime() + (long) (options.timeoutSeconds() * 1e9);
        BlockingQueue<Sequence.Step> out = new LinkedBlockingQueue<>();
        List<Sequence> sequences = new ArrayList<>();
        for (int p = 0; p < prompts.size(); p++) {
            for (int i = 0; i < req.n(); i++) {
                int index = p * req.n() + i;
                sequences.add(new Sequence(new GenerationRequest(prompts.get(p), maxTokens, req.sampling(),
                        seed + index), index, deadline, out));
            }
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
        List<String> stops = new ArrayList<>(req.stop());
        if (chat) stops.addAll(model.chat.stops());
        Completion c = new Completion((chat ? "chatcmpl-" : "cmpl-") + requestIds.incrementAndGet(), chat,
                System.currentTimeMillis() / 1000, sequences, prompts.stream().mapToInt(p -> p.length).sum(), stops);
        try {
            if (req.stream()) {
                stream(ex, c, out, req.includeUsage());
            } else {
                collect(ex, c, out);
            }
        } finally {
            log(ex, c, started);
        }
    }

    /** A prompt's tokens: token ids are checked against the vocabulary; text is bounded before it is tokenized. */
    private int[] tokens(ApiRequest.Prompt p) throws ApiRequest.Invalid {
        int[] ids;
        if (p.tokens() != null) {
            int vocab = model.model.tokenizer().vocabSize();
            for (int t : p.tokens()) {
                if (t < 0 || t >= vocab) {
                    throw new ApiRequest.Invalid("prompt token id " + t + " is outside this model's vocabulary [0, "
                            + vocab + ")");
                }
            }
            ids = p.tokens();
        } else {
            long charLimit = (long) model.maxPromptTokens() * MAX_CHARS_PER_TOKEN;
            if (p.text().length() > charLimit) {
                throw new ApiRequest.Invalid("the prompt is " + p.text().length() + " characters, far more than this "
                        + "model's context of " + model.maxPromptTokens() + " prompt tokens: shorten it");
            }
            ids = model.encode(p.text());
        }
        if (ids.length > model.maxPromptTokens()) {
            throw new ApiRequest.Invalid("the prompt is " + ids.length + " tokens; this model's context leaves room "
                    + "for at most " + model.maxPromptTokens() + ": shorten it");
        }
        return ids;
    }

    /** One line per generation request on the server's log. */
    private void log(Exchange ex, Completion c, long started) {
        StringBuilder finishes = new StringBuilder();
        for (Finish f : c.finish) finishes.append(finishes.length() == 0 ? "" : ",").append(f == null ? "-" : f);
        System.err.printf("calm serve: %s %s %s prompt_tokens=%d completion_tokens=%d finish=%s %d ms%n", c.id,
                ex.method(), ex.path(), c.promptTokens, c.completionTokens(), finishes,
                (System.nanoTime() - started) / 1_000_000);
    }

    /**
     * The choices of one request as they grow. Each choice's text is decoded from all its tokens so far (UTF-8
     * safe), then passed through its stop strings; a chat reply's leading whitespace (after "Assistant:") is dropped.
     */
    private final class Completion {
        final String id;
        final boolean chat;
        final long created;
        final int promptTokens;
        final List<Sequence> sequences;
        final List<TextStream> decoded = new ArrayList<>();
        final List<StopStrings> stops = new ArrayList<>();
        final StringBuilder[] text;
        final boolean[] started;
        final Finish[] finish;
        /** What failed, for a request that ended in an error. */
        String error;
        final long giveUpNanos = System.nanoTime() + (long) (options.timeoutSeconds() * 1e9)
                + GIVE_UP_AFTER_MILLIS * 1_000_000;
        int finished;

        Completion(String id, boolean chat, long created, List<Sequence> sequences, int promptTokens,
                   List<String> stopStrings) {
            this.id = id;
            this.chat = chat;
            this.created = created;
            this.promptTokens = promptTokens;
            this.sequences = sequences;
            int n = sequences.size();
            this.finish = new Finish[n];
            this.text = new StringBuilder[n];
            this.started = new boolean[n];
            for (int i = 0; i < n; i++) {
                decoded.add(new TextStream(model::decode));
                stops.add(new StopStrings(stopStrings));
                text[i] = new StringBuilder();
            }
        }

        /** Records a step; returns the choice's new text. A step for a choice already ended is ignored. */
        String add(Sequence.Step d) {
            if (d.error() != null) error = d.error();
            int i = d.index();
            if (i < 0) { // the whole request ended
                for (int j = 0; j < finish.length; j++) end(j, d.finish());
                return "";
            }
            if (finish[i] != null) return "";
            StopStrings stop = stops.get(i);
            String delta = stop.add(decoded.get(i).add(d.tokens(), d.finish() != null));
            if (stop.stopped()) {
                sequences.get(i).cancel(); // nothing after a stop string is generated or sent
                end(i, Finish.STOP);
            } else if (d.finish() != null) {
                delta += stop.flush();
                end(i, d.finish());
            }
            if (chat && !started[i]) {
                delta = delta.stripLeading();
                started[i] = !delta.isEmpty();
            }
            text[i].append(delta);
            return delta;
        }

        private void end(int i, Finish reason) {
            if (finish[i] != null) return;
            finish[i] = reason;
            finished++;
        }

        boolean done() {
            return finished == finish.length;
        }

        int completionTokens() {
            return decoded.stream().mapToInt(TextStream::size).sum();
        }

        ObjectNode envelope(boolean chunk) {
            ObjectNode root = Configs.JSON.createObjectNode();
            root.put("id", id);
            root.put("object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
            root.put("created", created);
            root.put("model", model.id);
            return root;
        }

        ObjectNode usage() {
            ObjectNode usage = Configs.JSON.createObjectNode();
            usage.put("prompt_tokens", promptTokens);
            usage.put("completion_tokens", completionTokens());
            usage.put("total_tokens", promptTokens + completionTokens());
            return usage;
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

    private void collect(Exchange ex, Completion c, BlockingQueue<Sequence.Step> out) throws IOException {
        try {
            long nextCheck = System.nanoTime() + CLIENT_CHECK_MILLIS * 1_000_000;
            while (!c.done()) {
                Sequence.Step d = out.poll(CLIENT_CHECK_MILLIS, TimeUnit.MILLISECONDS);
                if (d != null) c.add(d);
                long now = System.nanoTime();
                if (now > nextCheck) {
                    if (ex.clientGone()) { // nobody will read the answer: stop generating it
                        c.sequences.forEach(Sequence::cancel);
                        return;
                    }
                    nextCheck = now + CLIENT_CHECK_MILLIS * 1_000_000;
                }
                if (d == null && now > c.giveUpNanos) c.add(stalled(c.sequences));
            }
        } catch (InterruptedException e) {
            c.sequences.forEach(Sequence::cancel);
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
        ObjectNode root = c.envelope(false);
        ArrayNode choices = root.putArray("choices");
        for (int i = 0; i < c.finish.length; i++) {
            ObjectNode ch = choices.addObject();
            ch.put("index", i);
            if (c.chat) {
                ObjectNode message = ch.putObject("message");
                message.put("role", "assistant");
                message.put("content", c.text[i].toString());
            } else {
                ch.put("text", c.text[i].toString());
            }
            ch.putNull("logprobs");
            ch.put("finish_reason", openAiReason(c.finish[i]));
        }
        root.set("usage", c.usage());
        sendJson(ex, 200, root);
    }

    /**
     * Server-sent events: one event per generation step and choice (a K-token chunk for a CALM), then, when asked,
     * one with the usage and no choices, then [DONE]. A chat stream opens each choice with its role.
     */
    private void stream(Exchange ex, Completion c, BlockingQueue<Sequence.Step> out, boolean includeUsage)
            throws IOException {
        ex.startStream("text/event-stream; charset=utf-8");
        try {
            if (c.chat) {
                for (int i = 0; i < c.finish.length; i++) {
                    ObjectNode event = c.envelope(true);
                    ObjectNode ch = event.putArray("choices").addObject();
                    ch.put("index", i);
                    ch.putObject("delta").put("role", "assistant").put("content", "");
                    ch.putNull("logprobs");
                    ch.putNull("finish_reason");
                    send(ex, event);
                }
            }
            while (!c.done()) {
                Sequence.Step d = next(out, c.sequences);
                boolean open = d.index() >= 0 && c.finish[d.index()] == null;
                String delta = c.add(d);
                if (d.index() >= 0 && !open) continue; // a choice that ended at a stop string
                Finish reason = d.index() >= 0 ? c.finish[d.index()] : d.finish();
                if (c.chat && delta.isEmpty() && reason == null) continue;
                ObjectNode event = c.envelope(true);
                ObjectNode ch = event.putArray("choices").addObject();
                ch.put("index", Math.max(0, d.index()));
                if (c.chat) {
                    ObjectNode message = ch.putObject("delta");
                    if (!delta.isEmpty()) message.put("content", delta);
                } else {
                    ch.put("text", delta);
                }
                ch.putNull("logprobs");
                ch.put("finish_reason", openAiReason(reason));
                event.put("step_tokens", d.tokens().length);
                if (reason == Finish.ERROR || reason == Finish.TIMEOUT) {
                    event.putObject("error").put("message", reason == Finish.TIMEOUT
                            ? "generation took longer than the server's limit of " + options.timeoutSeconds() + " s"
                            : errorMessage(c));
                }
                send(ex, event);
            }
            if (includeUsage) {
                ObjectNode event = c.envelope(true);
                event.putArray("choices");
                event.set("usage", c.usage());
                send(ex, event);
            }
            ex.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            ex.end();
        } catch (IOException e) {
            c.sequences.forEach(Sequence::cancel); // the client disconnected: stop generating for it
            throw e;
        } catch (InterruptedException e) {
            c.sequences.forEach(Sequence::cancel);
            Thread.currentThread().interrupt();
        }
    }

    private static void send(Exchange ex, ObjectNode event) throws IOException {
        ex.write(("data: " + COMPACT.writeValueAsString(event) + "\n\n").getBytes(StandardCharsets.UTF_8));
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
