package calm4j.serve;

import calm4j.app.LanguageModel;
import calm4j.chat.ChatTemplate;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationSession;
import calm4j.generate.Sampling;

import java.nio.file.Path;

/**
 * A trained run as the server sees it: its id, the limits a request is checked against, the chat template that
 * turns messages into a prompt, and new generation sessions for the scheduler to drive.
 */
class ServedModel {
    final String id;
    final LanguageModel model;
    final GenerationOptions options;
    final ChatTemplate chat;

    ServedModel(String id, LanguageModel model, GenerationOptions options, ChatTemplate chat) {
        this.id = id;
        this.model = model;
        this.options = options;
        this.chat = chat;
    }

    /** The run in {@code run}, named by its folder, chatting with {@code chat} (null: the run's own template). */
    static ServedModel load(Path run, GenerationOptions options, ChatTemplate chat, calm4j.nn.WeightType weights) {
        LanguageModel lm = LanguageModel.load(run, weights);
        String id = run.toAbsolutePath().normalize().getFileName().toString();
        return new ServedModel(id, lm, options, chat != null ? chat : ChatTemplate.of(run));
    }

    /** The same model and settings. */
    ServedModel(ServedModel other) {
        this(other.id, other.model, other.options, other.chat);
    }

    String kind() {
        return model.kind();
    }

    int tokensPerStep() {
        return model.tokensPerStep();
    }

    int maxPromptTokens() {
        return model.maxPromptTokens();
    }

    int maxNewTokens(int promptTokens) {
        return model.maxNewTokens(promptTokens);
    }

    void checkSampling(Sampling sampling) {
        model.checkSampling(sampling, options);
    }

    GenerationSession<?> newSession(boolean stopAtEos) {
        return model.newSession(options, stopAtEos);
    }

    /** The tokenizer is native and not thread-safe: HTTP threads take turns. */
    synchronized int[] encode(String text) {
        return model.tokenizer().encode(text);
    }

    synchronized String decode(int[] ids) {
        return model.tokenizer().decode(ids);
    }
}
