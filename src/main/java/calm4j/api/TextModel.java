package calm4j.api;

import calm4j.app.LanguageModel;
import calm4j.chat.ChatTemplate;
import calm4j.engine.UserError;
import calm4j.generate.Finish;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.GenerationSession;
import calm4j.generate.Sampling;
import calm4j.generate.StopStrings;
import calm4j.generate.TextStream;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * calm4j as a library: a trained run (a CALM or a token model) as text in, text out.
 *
 * <pre>{@code
 * try (TextModel model = TextModel.load(Path.of("runs/demo/calm"))) {
 *     var out = model.complete("The state of the union is", TextModel.Options.DEFAULT.withMaxTokens(48),
 *             System.out::print);
 *     System.out.println("\n[" + out.completionTokens() + " tokens, " + out.finish() + "]");
 * }
 * }</pre>
 * Not thread-safe: one thread at a time (a server batches many requests through {@code calm serve}).
 */
public final class TextModel implements AutoCloseable {
    /**
     * How to generate.
     *
     * @param maxTokens  at most this many new tokens (the context may end a sequence sooner)
     * @param sampling   temperature, top_p, ... (a CALM serves temperature and top_p through its candidate pool)
     * @param seed       sequence i of a batch uses seed + i
     * @param stop       up to four strings that end a sequence; they and what follows are not returned
     * @param generation the CALM's candidate pool and draw limits
     */
    public record Options(int maxTokens, Sampling sampling, long seed, List<String> stop,
                          GenerationOptions generation) {
        public static final Options DEFAULT = new Options(128, Sampling.DEFAULT, 0, List.of(),
                GenerationOptions.DEFAULT);

        public Options {
            if (maxTokens < 1) throw UserError.badValue("max_tokens", "must be at least 1, got " + maxTokens);
            if (stop.size() > StopStrings.MAX) {
                throw UserError.badValue("stop", "takes at most " + StopStrings.MAX + " strings, got " + stop.size());
            }
            stop = List.copyOf(stop);
        }

        public Options withMaxTokens(int n) {
            return new Options(n, sampling, seed, stop, generation);
        }

        public Options withSampling(Sampling s) {
            return new Options(maxTokens, s, seed, stop, generation);
        }

        public Options withTemperature(double t) {
            return withSampling(new Sampling(t, sampling.topP(), sampling.topK(), sampling.presencePenalty(),
                    sampling.frequencyPenalty()));
        }

        public Options withSeed(long s) {
            return new Options(maxTokens, sampling, s, stop, generation);
        }

        public Options withStop(List<String> s) {
            return new Options(maxTokens, sampling, seed, s, generation);
        }

        public Options withGeneration(GenerationOptions g) {
            return new Options(maxTokens, sampling, seed, stop, g);
        }
    }

    /** One generated text: what it was, how many tokens it took, and why it ended. */
    public record Completion(String text, int promptTokens, int completionTokens, Finish finish) {}

    /** Receives text as it is generated: sequence {@code index} of the batch gained {@code text}. */
    public interface Listener {
        void onText(int index, String text);
    }

    private final LanguageModel model;
    private final ChatTemplate chat;

    private TextModel(LanguageModel model, ChatTemplate chat) {
        this.model = model;
        this.chat = chat;
    }

    /** Loads the run in {@code dir}, chatting with its own template ({@link ChatTemplate#of}). */
    public static TextModel load(Path dir) {
        return new TextModel(LanguageModel.load(dir), ChatTemplate.of(dir));
    }

    /** A loaded run, chatting with {@code chat}. */
    public static TextModel of(LanguageModel model, ChatTemplate chat) {
        return new TextModel(model, chat);
    }

    /** The run in {@code dir}, chatting with {@code chat}. */
    public static TextModel load(Path dir, ChatTemplate chat) {
        return new TextModel(LanguageModel.load(dir), chat);
    }

    public LanguageModel model() {
        return model;
    }

    public ChatTemplate chatTemplate() {
        return chat;
    }

    /** Continues {@code prompt}; {@code onText} (may be null) sees the text as it comes. */
    public Completion complete(String prompt, Options options, java.util.function.Consumer<String> onText) {
        return complete(List.of(prompt), options, onText == null ? null : (i, t) -> onText.accept(t)).get(0);
    }

    /** The assistant's reply to {@code messages}, through the chat template (whose stop strings are added). */
    public Completion chat(List<ChatTemplate.Message> messages, Options options,
                           java.util.function.Consumer<String> onText) {
        List<String> stops = new ArrayList<>(options.stop());
        stops.addAll(chat.stops());
        boolean[] started = {false};
        Completion c = generate(List.of(chatPrompt(messages)), options, stops, (i, t) -> {
            if (!started[0]) t = t.stripLeading(); // after "Assistant:"
            started[0] |= !t.isEmpty();
            if (onText != null && !t.isEmpty()) onText.accept(t);
        }).get(0);
        return new Completion(c.text().stripLeading(), c.promptTokens(), c.completionTokens(), c.finish());
    }

    /**
     * The assistant's replies to {@code userMessages}, each the user's message of its own chat, generated as one
     * batch through the chat template (whose stop strings are added to the options').
     */
    public List<Completion> replies(List<String> userMessages, Options options, Listener listener) {
        List<String> stops = new ArrayList<>(options.stop());
        stops.addAll(chat.stops());
        return generate(userMessages.stream().map(this::userTurn).toList(), options, stops, listener);
    }

    /** The prompt text a chat of one user message becomes. */
    public String userTurn(String userMessage) {
        return chatPrompt(List.of(new ChatTemplate.Message("user", userMessage)));
    }

    /** The prompt text a chat becomes. */
    public String chatPrompt(List<ChatTemplate.Message> messages) {
        return chat.render(messages);
    }

    /** Continues every prompt, as one batch. */
    public List<Completion> complete(List<String> prompts, Options options, Listener listener) {
        return generate(prompts, options, options.stop(), listener);
    }

    private List<Completion> generate(List<String> prompts, Options options, List<String> stops, Listener listener) {
        model.checkSampling(options.sampling(), options.generation());
        List<GenerationRequest> requests = new ArrayList<>();
        for (String p : prompts) {
            requests.add(new GenerationRequest(model.tokenizer().encode(p), options.maxTokens(), options.sampling(),
                    options.seed() + requests.size()));
        }
        int n = requests.size();
        List<TextStream> decoded = new ArrayList<>();
        List<StopStrings> stopping = new ArrayList<>();
        StringBuilder[] text = new StringBuilder[n];
        Finish[] finish = new Finish[n];
        for (int i = 0; i < n; i++) {
            decoded.add(new TextStream(model.tokenizer()::decode));
            stopping.add(new StopStrings(stops));
            text[i] = new StringBuilder();
        }
        try (GenerationSession<?> session = model.newSession(options.generation())) {
            List<Integer> ids = session.join(requests);
            while (!session.isEmpty()) {
                for (var e : session.step()) {
                    int i = ids.indexOf(e.id());
                    if (finish[i] != null) continue;
                    boolean last = e.finished() != null;
                    StopStrings stop = stopping.get(i);
                    String delta = stop.add(decoded.get(i).add(e.tokens(), last));
                    if (stop.stopped()) {
                        finish[i] = Finish.STOP;
                        if (!last) session.cancel(e.id());
                    } else if (last) {
                        delta += stop.flush();
                        finish[i] = e.finished().finish();
                    }
                    text[i].append(delta);
                    if (listener != null && !delta.isEmpty()) listener.onText(i, delta);
                }
            }
        }
        List<Completion> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new Completion(text[i].toString(), requests.get(i).prompt().length, decoded.get(i).size(),
                    finish[i]));
        }
        return out;
    }

    @Override
    public void close() {
        model.close();
    }
}
