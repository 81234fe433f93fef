package calm4j.app;

import calm4j.engine.UserError;
import calm4j.run.RunFolder;
import calm4j.tokenize.Tokenizer;

import java.nio.file.Path;

/**
 * A trained run of any kind, loaded from its folder: an {@link AutoencoderRun}, or a {@link LanguageModel} (a
 * {@link CalmRun} or a {@link TokenLMRun}). {@link #load} is the one place that reads a run's kind and picks its
 * class; everything else (serving, the report, the demo, import and export) takes the run it returns and asks its type.
 */
public sealed interface TrainedRun extends AutoCloseable permits AutoencoderRun, LanguageModel {

    /** The run in {@code dir}, of whichever kind its config.json names. */
    static TrainedRun load(Path dir) {
        String kind = RunFolder.config(dir, null).path("kind").asText();
        return switch (kind) {
            case AutoencoderRun.KIND -> AutoencoderRun.load(dir);
            case CalmRun.KIND -> CalmRun.load(dir);
            case TokenLMRun.KIND -> TokenLMRun.load(dir);
            default -> throw new UserError(dir + " is a run of kind \"" + kind + "\", which this calm4j does not know: "
                    + "it reads " + AutoencoderRun.KIND + ", " + CalmRun.KIND + " and " + TokenLMRun.KIND + " runs");
        };
    }

    /** {@link AutoencoderRun#KIND}, {@link CalmRun#KIND} or {@link TokenLMRun#KIND}. */
    String kind();

    Path dir();

    Tokenizer tokenizer();

    /** The training step its weights are from. */
    long step();

    /** Frees the tokenizer's native memory (the model's tensors are freed by libtorch's reference counts). */
    @Override
    default void close() {
        tokenizer().close();
    }
}
