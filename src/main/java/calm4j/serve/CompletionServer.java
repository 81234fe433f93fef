package calm4j.serve;

import calm4j.chat.ChatTemplate;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import com.fasterxml.jackson.databind.JsonNode;
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
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
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
     * @param allowHosts     host names a request's Host header may carry besides the server's own address, an IP
     *                       address and localhost (a DNS-rebinding page carries its own name: refused)
     * @param kvMemoryBytes  the KV cache the running sequences may hold at their full lengths: a sequence joins the
     *                       batch only while its cache fits (0: no limit but {@code maxBatch})
     * @param prefillSlice   backbone positions of a long prompt prefilled between two decoding steps
     * @param ignoreEos      sequences run to max_tokens whatever they sample (for benchmarks, as vLLM's ignore_eos)
     */
    public record Options(String host, int port, int maxBatch, int queue, int maxTokens, double timeoutSeconds,
                          int maxBodyBytes, int pool, int maxDraws, String allowOrigin, List<String> allowHosts,
                          long kvMemoryBytes, int prefillSlice, boolean ignoreEos) {
        /** Bounds that keep a server's own settings from exhausting memory or threads (a thread per sequence). */
        static final int MAX_QUEUE = 4096, MAX_BATCH = 1024, MAX_BODY = 64 << 20;

        public Options {
            if (maxBatch < 1 || maxBatch > MAX_BATCH) {
                throw UserError.badValue("max_batch", "must lie in [1, " + MAX_BATCH + "], got " + maxBatch);
            }
            if (queue < 1 || queue > MAX_QUEUE) {
                throw UserError.badValue("queue", "must lie in [1, " + MAX_QUEUE + "], got " + queue);
            }
            if (maxTokens < 1) throw UserError.badValue("max_tokens", "must be at least 1, got " + maxTokens);
            if (!(timeoutSeconds > 0) || timeoutSeconds > 86_400) {
                throw UserError.badValue("timeout", "must lie in (0, 86400] seconds, got " + timeoutSeconds);
            }
            if (port < 0 || port > 65535) throw UserError.badValue("port", "must lie in [0, 65535], got " + port);
            if (maxBodyBytes < 1 || maxBodyBytes > MAX_BODY) {
                throw UserError.badValue("max_body", "must lie in [1, " + MAX_BODY + "] bytes, got " + maxBodyBytes);
            }
            if (pool < 1) throw UserError.badValue("pool", "must be at least 1, got " + pool);
            if (maxDraws < 1) throw UserError.badValue("max_draws", "must be at least 1, got " + maxDraws);
            if (host == null || host.isBlank()) throw UserError.badValue("host", "must name an address");
            if (allowOrigin != null && !allowOrigin.equals("*") && !allowOrigin.matches("https?://[^/\\s]+")) {
                throw UserError.badValue("allow_origin", "must be * or an origin such as https://app.example.com "
                        + "(scheme and host, no path), got " + allowOrigin);
            }
            if (kvMemoryBytes < 0) throw UserError.badValue("kv_memory", "must be at least 0 GB, got "
                    + kvMemoryBytes / 1e9);
            if (prefillSlice < 1) {
                throw UserError.badValue("prefill_slice", "must be at least 1 position, got " + prefillSlice);
            }
            allowHosts = List.copyOf(allowHosts);
            for (String h : allowHosts) {
                if (!h.matches("[A-Za-z0-9.-]+")) {
                    throw UserError.badValue("allow_host", "must be a host name such as calm.example.com (no scheme, "
                            + "port or path), got " + h);
                }
            }
        }

        /** The address to listen on; a name that does not resolve is refused. */
        public InetAddress address() {
            try {
                return InetAddress.getByName(host);
            } catch (UnknownHostException e) {
                throw UserError.badValue("host", host + " is not an address of this machine or a name that resolves ("
                        + e.getMessage() + "): use 127.0.0.1 (the default), 0.0.0.0, or an interface's address");
            }
        }

        /** The same limits, serving no other origin and no host name but the server's own. */
        public Options(String host, int port, int maxBatch, int queue, int maxTokens, double timeoutSeconds,
                       int maxBodyBytes, int pool, int maxDraws) {
            this(host, port, maxBatch, queue, maxTokens, timeoutSeconds, maxBodyBytes, pool, maxDraws, null,
                    List.of(), 0, calm4j.generate.GenerationOptions.PREFILL_SLICE, false);
        }

        /** These options with CORS for {@code origin} ("*" for any). */
        public Options withAllowOrigin(String origin) {
            return new Options(host, port, maxBatch, queue, maxTokens, timeoutSeconds, maxBodyBytes, pool, maxDraws,
                    origin, allowHosts, kvMemoryBytes, prefillSlice, ignoreEos);
        }

        /** These options with a KV-cache budget (bytes), prefill slice and EOS rule. */
        public Options withCache(long kvMemory, int slice, boolean ignoreEndOfText) {
            return new Options(host, port, maxBatch, queue, maxTokens, timeoutSeconds, maxBodyBytes, pool, maxDraws,
                    allowOrigin, allowHosts, kvMemory, slice, ignoreEndOfText);
        }

        /**
         * Whether a request's Host header names this server: absent (HTTP/1.0), an IP address (a page can only make
         * a browser send that from the address itself), localhost, the name the server was started with, or one of
         * {@code allowHosts}. A DNS-rebinding page sends its own name, resolved to this address, and is refused.
         */
        boolean namesThisServer(String hostHeader) {
            if (hostHeader == null || hostHeader.isEmpty()) return true;
            String name = hostHeader.startsWith("[") ? hostHeader.substring(0, hostHeader.indexOf(']') + 1)
                    : hostHeader.replaceFirst(":\\d*$", "");
            String lower = name.toLowerCase(java.util.Locale.ROOT);
            if (lower.equals("localhost") || lower.endsWith(".localhost") || lower.equals(host.toLowerCase(
                    java.util.Locale.ROOT))) {
                return true;
            }
            if (lower.startsWith("[") || lower.matches("\\d{1,3}(\\.\\d{1,3}){3}")) return true; // IP literals
            return allowHosts.stream().anyMatch(h -> h.equalsIgnoreCase(lower));
        }
    }

    private final ServedModel model;
    private final Options options;
    private final Scheduler scheduler;
    private final Server http;
    private final ServerConnector connector;
    private final AtomicLong requestIds = new AtomicLong();
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean draining;
    private final byte[] playground;
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
        InetAddress address = options.address();
        if (!address.isLoopbackAddress()) {
            System.err.println("calm serve: warning: listening on " + options.host() + ": anyone who can reach this "
                    + "address can use the model (there is no authentication)");
        }
        this.scheduler = new Scheduler(model, options.maxBatch(), options.queue(), options.kvMemoryBytes(),
                !options.ignoreEos());
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
                long started = System.nanoTime();
                Exchange ex = new Exchange(request, response);
                try {
                    route(ex);
                    callback.succeeded();
                } catch (Throwable t) {
                    callback.failed(t);
                } finally {
                    if (ex.error() != null && !ex.logged) logRefused(ex, started);
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
                        + e.getMessage() + "): choose another port, or stop what uses it");
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
        options.address(); // a host that does not resolve is refused before the model loads
        ChatTemplate chat = chatTemplate != null ? ChatTemplate.file(chatTemplate) : null;
        return start(ServedModel.load(run, new GenerationOptions(options.pool(), false, options.maxDraws(),
                options.prefillSlice()), chat, weights), options);
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

    /** The line a server started from the command line says first: what it serves and where. */
    public String banner() {
        return "serving " + modelId() + " at " + url() + "  (playground: " + url() + "/, API: " + url()
                + "/v1/completions and /v1/chat/completions)";
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

    /**
     * Serves until SIGTERM (a service manager, a container stop) or SIGINT (Ctrl-C), then {@link #shutdown}s
     * gracefully with {@code graceMillis} for the sequences under way. Any other exit of the JVM closes at once.
     */
    public void serveUntilSignalled(long graceMillis) throws InterruptedException {
        CountDownLatch stopped = new CountDownLatch(1);
        Runnable graceful = () -> {
            System.err.println("calm serve: shutting down (sequences under way get " + graceMillis / 1000.0 + " s)");
            shutdown(graceMillis);
            stopped.countDown();
        };
        for (String signal : new String[] {"TERM", "INT"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(signal), sig -> new Thread(graceful, "calm4j-shutdown").start());
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (stopped.getCount() > 0) close();
        }));
        stopped.await();
        System.err.println("calm serve: stopped");
    }

    private void route(Exchange ex) throws IOException {
        try {
            String path = ex.path();
            String method = ex.method();
            if (!options.namesThisServer(ex.requestHeader("Host"))) {
                ex.sendError(421, "invalid_request_error", "this server does not answer to the host name '"
                        + ex.requestHeader("Host") + "': use its address or localhost, or start it with "
                        + "--allow-host NAME");
                return;
            }
            if (!originAllowed(ex)) {
                ex.sendError(403, "invalid_request_error", "requests from the web page at " + ex.requestHeader(
                        "Origin") + " are not allowed: start the server with --allow-origin for that origin");
                return;
            }
            cors(ex);
            if (method.equals("OPTIONS") && options.allowOrigin() != null) { // a browser's preflight
                ex.send(204, "text/plain", new byte[0]);
                return;
            }
            if (path.startsWith("/v1/models/")) {
                String id = path.substring("/v1/models/".length());
                if (!allow(ex, "GET")) return;
                if (id.equals(model.id)) ex.sendJson(200, modelCard());
                else ex.sendError(404, "invalid_request_error", "The model '" + id + "' does not exist on this "
                        + "server; it serves '" + model.id + "'", "model_not_found", "model");
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
                    if (allow(ex, "GET")) ex.sendJson(200, new OpenAiWire.ModelList("list", List.of(modelCard())));
                }
                case "/health" -> {
                    if (allow(ex, "GET")) ex.sendJson(scheduler.isRunning() ? 200 : 500, health());
                }
                case "/", "/index.html" -> {
                    if (allow(ex, "GET")) ex.send(200, "text/html; charset=utf-8", playground);
                }
                default -> ex.sendError(404, "not_found", "no such endpoint: " + method + " " + path
                        + " (calm4j serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /v1/models/ID, "
                        + "GET /health and the playground at /)");
            }
        } catch (IOException e) {
            // The client went away while we answered: nothing to tell it.
        }
    }

    private boolean allow(Exchange ex, String method) throws IOException {
        if (!ex.method().equals(method)) {
            ex.header("Allow", method);
            ex.sendError(405, "method_not_allowed", ex.path() + " takes " + method);
            return false;
        }
        if (method.equals("POST") && !isJson(ex.requestHeader("Content-Type"))) {
            // A web page can send text/plain or a form to any site without asking first (no CORS preflight):
            // requiring JSON makes a browser ask, and this server answers only origins it was told to allow.
            ex.sendError(415, "invalid_request_error", "the body must be sent as Content-Type: application/json, "
                    + "got " + (ex.requestHeader("Content-Type") == null ? "none" : ex.requestHeader("Content-Type")));
            return false;
        }
        return true;
    }

    /** application/json, with or without parameters (charset), or a +json type. */
    static boolean isJson(String contentType) {
        if (contentType == null) return false;
        String type = contentType.split(";", 2)[0].strip().toLowerCase(java.util.Locale.ROOT);
        return type.equals("application/json") || (type.startsWith("application/") && type.endsWith("+json"));
    }

    /**
     * Whether a browser page may call: requests without an Origin (non-browser clients), from this server's own
     * pages (the Origin's host and port are the Host the request was sent to), or from the --allow-origin one.
     */
    private boolean originAllowed(Exchange ex) {
        String origin = ex.requestHeader("Origin");
        if (origin == null) return true;
        String allowed = options.allowOrigin();
        if (allowed != null && (allowed.equals("*") || allowed.equalsIgnoreCase(origin))) return true;
        String host = ex.requestHeader("Host");
        return host != null && (origin.equalsIgnoreCase("http://" + host) || origin.equalsIgnoreCase("https://"
                + host));
    }

    /** One line on the server's log for a request refused before it was generated (not its prompt). */
    private static void logRefused(Exchange ex, long started) {
        System.err.printf("calm serve: %s %s %d %s %d ms%n", ex.method(), ex.path(), ex.status(), ex.error(),
                (System.nanoTime() - started) / 1_000_000);
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
    private OpenAiWire.ModelCard modelCard() {
        // What an empty prompt can get: the context bounds it as much as the server's limit does.
        return new OpenAiWire.ModelCard(model.id, "model", 0, "calm4j", model.kind(), model.tokensPerStep(),
                model.maxPromptTokens(), Math.min(options.maxTokens(), model.maxNewTokens(0)), model.chat.name());
    }

    private OpenAiWire.Health health() {
        return new OpenAiWire.Health(scheduler.isRunning() ? "ok" : "failed", model.id, model.kind(),
                scheduler.active(), scheduler.queued(), scheduler.failures(), scheduler.cacheBytes());
    }

    /** {@code POST /v1/completions} and {@code POST /v1/chat/completions}: parse, queue, then stream or collect. */
    private void generate(Exchange ex, boolean chat) throws IOException {
        inFlight.incrementAndGet();
        try {
            if (draining) {
                ex.header("Retry-After", "5");
                ex.sendError(503, "server_shutting_down", "the server is shutting down: retry with another");
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
            ex.sendError(413, "invalid_request_error", "the request body is larger than " + options.maxBodyBytes()
                    + " bytes (the server's limit)");
            return;
        }
        byte[] bytes;
        try {
            bytes = ex.readBody(options.maxBodyBytes());
        } catch (Exchange.BadBody e) {
            ex.sendErrorAndClose(400, "invalid_request_error", "the request body could not be read (" + e.getMessage()
                    + "): send a complete body of the length declared, or valid chunked encoding");
            return;
        }
        if (bytes.length > options.maxBodyBytes()) {
            ex.sendError(413, "invalid_request_error", "the request body is larger than " + options.maxBodyBytes()
                    + " bytes (the server's limit)");
            return;
        }
        ApiRequest req;
        List<int[]> prompts = new ArrayList<>();
        int maxTokens;
        try {
            JsonNode body;
            try {
                body = OpenAiWire.read(bytes);
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
            ex.sendError(e.status, "invalid_request_error", e.getMessage(), e.code, e.param);
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
        if (options.kvMemoryBytes() > 0) { // a sequence that cannot fit even alone would wait forever
            for (Sequence s : sequences) {
                long cache = model.model.cacheBytes(s.request, model.options);
                if (cache > options.kvMemoryBytes()) {
                    ex.sendError(400, "invalid_request_error", String.format("this request needs %.1f MB of KV "
                            + "cache at its full length, more than the server's --kv-memory of %.1f MB: ask for "
                            + "fewer tokens or send a shorter prompt", cache / 1e6, options.kvMemoryBytes() / 1e6));
                    return;
                }
            }
        }
        if (!scheduler.isRunning()) {
            ex.sendError(500, "server_error", "generation has failed on this server (see its log); restart it");
            return;
        }
        if (!scheduler.submit(sequences)) {
            ex.header("Retry-After", "1");
            ex.sendError(503, "server_busy", "the server is busy (its queue of " + options.queue() + " sequences is "
                    + "full): retry after a second");
            return;
        }
        List<String> stops = new ArrayList<>(req.stop());
        if (chat) stops.addAll(model.chat.stops());
        Call c = new Call((chat ? "chatcmpl-" : "cmpl-") + requestIds.incrementAndGet(), chat, model, sequences, out,
                prompts.stream().mapToInt(p -> p.length).sum(), stops, options.timeoutSeconds());
        try {
            if (req.stream()) {
                c.stream(ex, req.includeUsage());
            } else {
                c.collect(ex);
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
    private static void log(Exchange ex, Call c, long started) {
        ex.logged = true;
        System.err.printf("calm serve: %s %s %s prompt_tokens=%d completion_tokens=%d finish=%s %d ms%n", c.id,
                ex.method(), ex.path(), c.promptTokens, c.completionTokens(), c.finishes(),
                (System.nanoTime() - started) / 1_000_000);
    }
}
