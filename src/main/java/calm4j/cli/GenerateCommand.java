package calm4j.cli;

import calm4j.app.CalmRun;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.generate.CalmGenerator;
import calm4j.generate.TextStream;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt with a CALM, K tokens a step, streamed as it is produced.")
final class GenerateCommand implements Callable<Integer> {
    static final class Prompt {
        @Option(names = "--prompt", description = "the prompt text")
        String text;

        @Option(names = "--prompt-file", description = "a UTF-8 file with one prompt per line (a batch)")
        Path file;
    }

    @Option(names = "--ckpt", required = true, description = "a CALM run folder")
    Path run;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Prompt prompt;

    @Option(names = "--max-tokens", defaultValue = "128", description = "default: ${DEFAULT-VALUE}")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "1", description = "1/n for an integer n: 1, 0.5, 0.3333, ... "
            + "(the authors recommend <= 0.5 for fluent text; default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--pool", defaultValue = "200", description = "candidate chunks per step for T < 1 (default: "
            + "${DEFAULT-VALUE})")
    int pool;

    @Option(names = "--exact", description = "exact temperature: draw n samples until all n agree (capped by "
            + "--max-draws, then the pool rule)")
    boolean exact;

    @Option(names = "--max-draws", defaultValue = "2000", description = "default: ${DEFAULT-VALUE}")
    int maxDraws;

    @Option(names = "--seed", defaultValue = "0", description = "sequence i of the batch uses seed + i (default: "
            + "${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--batch", defaultValue = "1", description = "samples per prompt (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--json", description = "print JSON: token ids, chunk boundaries and timing")
    boolean json;

    @Mixin
    EngineOptions engine;

    @Override
    public Integer call() throws IOException {
        engine.engine();
        List<String> prompts = new ArrayList<>();
        if (prompt.text != null) {
            prompts.add(prompt.text);
        } else {
            if (!Files.isRegularFile(prompt.file)) throw new UserError("prompt file " + prompt.file + " does not exist");
            for (String line : readUtf8(prompt.file).split("\\R")) {
                if (!line.isBlank()) prompts.add(line);
            }
            if (prompts.isEmpty()) throw new UserError("prompt file " + prompt.file + " has no prompt");
        }
        if (batch < 1) throw new UserError("--batch must be at least 1, got " + batch);
        if (maxTokens < 1) throw new UserError("--max-tokens must be at least 1, got " + maxTokens);
        CalmRun calm = CalmRun.load(run);
        var tok = calm.tokenizer();
        // Everything a request can get wrong is checked here, before any text is printed.
        CalmGenerator gen = new CalmGenerator(calm.model(), tok.eosId(), calm.model().autoencoder().config().padId(),
                pool, exact, maxDraws).withPrefix(calm.promptPrefix());
        gen.checkTemperature(temperature);
        List<CalmGenerator.Request> requests = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        for (String p : prompts) {
            for (int b = 0; b < batch; b++) {
                requests.add(new CalmGenerator.Request(tok.encode(p), maxTokens, temperature, seed + requests.size()));
                texts.add(p);
            }
        }
        boolean stream = !json && requests.size() == 1;
        TextStream shown = new TextStream(tok::decode);
        boolean[] promptShown = {false}; // the prompt is echoed once generation has accepted it
        long t0 = System.nanoTime();
        List<CalmGenerator.Output> outs = gen.generate(requests, (req, tokens) -> {
            if (!stream) return;
            if (!promptShown[0]) System.out.print(texts.get(0));
            promptShown[0] = true;
            System.out.print(shown.add(tokens, false));
            System.out.flush();
        });
        double seconds = (System.nanoTime() - t0) / 1e9;
        if (stream) {
            if (!promptShown[0]) System.out.print(texts.get(0));
            System.out.println(shown.add(new int[0], true));
            System.err.printf("[%d tokens in %d steps, %.2f s, %s]%n", outs.get(0).tokens().length,
                    outs.get(0).steps(), seconds, outs.get(0).finish());
            return 0;
        }
        if (!json) {
            for (int i = 0; i < outs.size(); i++) {
                System.out.println("--- " + (i + 1) + " (seed " + requests.get(i).seed() + ", "
                        + outs.get(i).finish() + ")");
                System.out.println(texts.get(i) + tok.decode(outs.get(i).tokens()));
            }
            return 0;
        }
        ObjectNode root = Configs.JSON.createObjectNode();
        root.put("model", run.toString());
        root.put("patch_size", calm.model().patchSize());
        root.put("temperature", temperature);
        root.put("seconds", seconds);
        long total = outs.stream().mapToLong(o -> o.tokens().length).sum();
        root.put("tokens_per_second", total / seconds);
        ArrayNode arr = root.putArray("outputs");
        for (int i = 0; i < outs.size(); i++) {
            CalmGenerator.Output o = outs.get(i);
            ObjectNode n = arr.addObject();
            n.put("prompt", texts.get(i));
            n.put("seed", requests.get(i).seed());
            n.put("text", tok.decode(o.tokens()));
            ArrayNode ids = n.putArray("token_ids");
            for (int t : o.tokens()) ids.add(t);
            ArrayNode ends = n.putArray("chunk_ends");
            for (int e : o.chunkEnds()) ends.add(e);
            n.put("steps", o.steps());
            n.put("finish_reason", o.finish().label());
            n.put("forced_prompt_prefix", o.forcedPrefix());
        }
        System.out.println(Configs.JSON.writeValueAsString(root));
        return 0;
    }

    /** A text file's content, refusing bytes that are not UTF-8 with where they are. */
    static String readUtf8(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult r = strict.decode(in, out, true);
        if (r.isError()) {
            throw new UserError(file + " is not valid UTF-8 (bytes at offset " + in.position() + "): save it as "
                    + "UTF-8");
        }
        return out.flip().toString();
    }
}
