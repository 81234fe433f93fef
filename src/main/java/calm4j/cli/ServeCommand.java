package calm4j.cli;

import calm4j.serve.CompletionServer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve a CALM or token model over HTTP with the OpenAI API: POST /v1/chat/completions (messages "
                + "through the chat template) and POST /v1/completions, each streamed as server-sent events with "
                + "\"stream\": true; GET /v1/models, GET /health, and a playground page at /. Bodies must be "
                + "Content-Type: application/json.",
                "Concurrent requests share generation steps (continuous batching). Stop with Ctrl-C (graceful)."})
final class ServeCommand implements Callable<Integer> {
    @Option(names = "--ckpt", required = true, description = "a CALM or token-model run folder")
    Path run;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to listen on (the default serves "
            + "this machine only; 0.0.0.0 exposes the server to the network)")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "0 picks a free port")
    int port;

    @Option(names = "--max-batch", defaultValue = "16", description = "sequences generated together; 1 turns shared "
            + "batching off")
    int maxBatch;

    @Option(names = "--queue", defaultValue = "64", description = "sequences that may wait for the batch; beyond "
            + "that the server answers 503 with Retry-After")
    int queue;

    @Option(names = "--max-tokens", defaultValue = "512", description = "the largest max_tokens a request may ask for")
    int maxTokens;

    @Option(names = "--timeout", defaultValue = "120", description = "seconds after which a request's generation is "
            + "stopped")
    double timeout;

    @Option(names = "--max-body", defaultValue = "1048576", description = "largest request body in bytes")
    int maxBody;

    @Mixin
    CandidateOptions candidates;

    @Option(names = "--allow-origin", description = "let browser apps from this origin call the API (CORS), e.g. "
            + "https://app.example.com, or * for any (default: none)")
    String allowOrigin;

    @Option(names = "--allow-host", split = ",", description = "host names the server answers to besides its address, "
            + "IP addresses and localhost (e.g. calm.example.com behind a proxy); a request naming any other host is "
            + "refused, so a web page cannot reach a local server through DNS rebinding")
    java.util.List<String> allowHosts = new java.util.ArrayList<>();

    @Option(names = "--kv-memory", defaultValue = "0", description = "GB of KV cache the running sequences may take "
            + "at their full lengths (prompt and max_tokens): a sequence joins the batch only while its cache fits, "
            + "others wait in the queue; 0 limits by --max-batch alone. A CALM's cache takes a position per K tokens")
    double kvMemoryGb;

    @Option(names = "--prefill-slice", defaultValue = "64", description = "backbone positions (a CALM's chunks, a "
            + "token model's tokens) of a long prompt prefilled between two decoding steps of the running batch")
    int prefillSlice;

    @Option(names = "--ignore-eos", description = "sequences run to max_tokens whatever they sample (for benchmarks "
            + "of fixed output lengths, as vLLM's ignore_eos)")
    boolean ignoreEos;

    @Option(names = "--shutdown-grace", defaultValue = "10", description = "on SIGTERM or Ctrl-C, seconds that "
            + "sequences under way may still run before they end with finish reason 'shutdown'")
    double shutdownGrace;

    @Option(names = "--chat-template", description = "a Jinja chat template file for /v1/chat/completions (default: "
            + "the run's tokenizer_config.json chat_template, else plain User:/Assistant: lines)")
    Path chatTemplate;

    @Mixin
    EngineOptions engine;

    @Mixin
    WeightOptions weights;

    @Override
    public Integer call() throws Exception {
        engine.engine();
        // Every option is checked before the model loads.
        CompletionServer.Options options = new CompletionServer.Options(host, port, maxBatch, queue, maxTokens,
                timeout, maxBody, candidates.pool, candidates.maxDraws, allowOrigin, allowHosts,
                (long) (kvMemoryGb * 1e9), prefillSlice, ignoreEos);
        CompletionServer server = CompletionServer.start(run, options, chatTemplate, weights.type());
        System.out.println(server.banner());
        System.out.flush();
        server.serveUntilSignalled((long) (shutdownGrace * 1000));
        return 0;
    }
}
