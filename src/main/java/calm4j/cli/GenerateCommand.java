package calm4j.cli;

import calm4j.api.TextModel;
import calm4j.app.LanguageModel;
import calm4j.chat.ChatTemplate;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.generate.Finish;
import calm4j.generate.GenerationOptions;
import calm4j.generate.Sampling;
import calm4j.io.TextFiles;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt with a CALM (K tokens a step) or a token model, streamed as it is "
                + "produced.")
class GenerateCommand implements Callable<Integer> {
    static final class Prompt {
        @Option(names = "--prompt", description = "the prompt text")
        String text;

        @Option(names = "--prompt-file", description = "a UTF-8 file with one prompt per line (a batch)")
        Path file;
    }

    @Option(names = "--ckpt", required = true, description = "a CALM or token-model run folder")
    Path run;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Prompt prompt;

    @Option(names = "--max-tokens", defaultValue = "128")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "1", description = "in [0, 2]: 1/n for an integer n is exact (1, "
            + "0.5, 0.3333, ...), other values use the candidate pool's counts (docs/method.md); 0 is the pool's "
            + "most frequent chunk (the authors recommend <= 0.5 for fluent text)")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1", description = "nucleus (a CALM's over its candidate pool), in (0, "
            + "1]")
    double topP;

    @Option(names = "--top-k", defaultValue = "0", description = "at most this many most likely tokens (a CALM: "
            + "chunks of its pool); 0 is off")
    int topK;

    @Option(names = "--stop", description = "a string that ends the text (not printed); up to 4")
    List<String> stop = new ArrayList<>();

    @Option(names = "--chat", description = "the prompt is a user message: reply as the assistant, through the run's "
            + "chat template (tokenizer_config.json's chat_template, else plain User:/Assistant: lines)")
    boolean chat;

    @Option(names = "--chat-template", description = "a Jinja chat template file for --chat")
    Path chatTemplate;

    @Option(names = "--exact", description = "exact temperature: draw n samples until all n agree (capped by "
            + "--max-draws, then the pool rule)")
    boolean exact;

    @picocli.CommandLine.Mixin
    CandidateOptions candidates;

    @Option(names = "--seed", defaultValue = "0", description = "sequence i of the batch uses seed + i")
    long seed;

    @Option(names = "--batch", defaultValue = "1", description = "samples per prompt")
    int batch;

    @Option(names = "--json", description = "print JSON: token ids, chunk boundaries and timing")
    boolean json;

    @Mixin
    WeightOptions weights;

    @Mixin
    EngineOptions engine;

    @Override
    public Integer call() throws IOException {
        engine.engine();
        if (batch < 1) throw new UserError("--batch must be at least 1, got " + batch);
        if (json && !stop.isEmpty()) throw new UserError("--stop cuts the text; --json prints token ids: use one");
        List<String> prompts = prompt.text != null ? List.of(prompt.text)
                : TextFiles.nonBlankLines(prompt.file, "prompt");
        List<String> texts = prompts.stream().flatMap(p -> Collections.nCopies(batch, p).stream()).toList();
        Sampling sampling = Sampling.at(temperature).withTopP(topP).withTopK(topK);
        var options = new TextModel.Options(maxTokens, sampling, seed, stop,
                new GenerationOptions(candidates.pool, exact, candidates.maxDraws));
        TextModel model = TextModel.of(LanguageModel.load(run, weights.type()),
                chatTemplate != null ? ChatTemplate.file(chatTemplate) : ChatTemplate.of(run));
        model.model().checkSampling(sampling, options.generation()); // every mistake before any text is printed
        if (json) {
            List<String> in = chat ? texts.stream().map(model::userTurn).toList() : texts;
            System.out.println(Configs.JSON.writeValueAsString(model.model().generateJson(in, maxTokens, sampling,
                    options.generation(), seed)));
            return 0;
        }
        boolean stream = texts.size() == 1;
        boolean[] echoed = {chat}; // a streamed prompt is echoed once generation has accepted it
        TextModel.Listener print = (i, text) -> {
            if (!stream) return;
            if (!echoed[0]) System.out.print(texts.get(0));
            echoed[0] = true;
            System.out.print(text);
            System.out.flush();
        };
        long t0 = System.nanoTime();
        List<TextModel.Completion> outs = chat ? model.replies(texts, options, print)
                : model.complete(texts, options, print);
        if (stream) {
            if (!echoed[0]) System.out.print(texts.get(0));
            System.out.println();
            System.err.printf("[%d tokens, %.2f s, %s]%n", outs.get(0).completionTokens(),
                    (System.nanoTime() - t0) / 1e9, outs.get(0).finish());
        } else {
            for (int i = 0; i < outs.size(); i++) {
                System.out.println("--- " + (i + 1) + " (seed " + (seed + i) + ", " + outs.get(i).finish() + ")");
                System.out.println((chat ? "" : texts.get(i)) + outs.get(i).text());
            }
        }
        // The context, not --max-tokens, ended a text: say so, so that a short text is not taken for the limit.
        outs.stream().filter(o -> o.finish() == Finish.CONTEXT).findFirst().ifPresent(o -> System.err.printf(
                "calm generate: the model's context ended the text after %d new tokens, before the %d --max-tokens "
                        + "asked for: the prompt (%d tokens) and the text fill it (a shorter prompt leaves more room)%n",
                o.completionTokens(), maxTokens, o.promptTokens()));
        return 0;
    }
}
