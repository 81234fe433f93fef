package calm4j.app;

import calm4j.ar.TokenLMConfig;
import calm4j.ar.TokenLM;
import calm4j.tokenize.Tokenizer;
import calm4j.run.Checkpoints;
import calm4j.engine.Configs;
import calm4j.run.RunFolder;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;

/** A trained token baseline loaded from its run folder, with the chunk size its data was padded to. */
public record TokenLMRun(Path dir, TokenLM model, Tokenizer tokenizer, int patchSize, int padId, long step) {
    public static final String KIND = "token-lm";

    public static TokenLMRun load(Path dir) {
        JsonNode root = RunFolder.config(dir, KIND);
        TokenLMConfig cfg = Configs.section(root, "model", TokenLMConfig.DEFAULTS, TokenLMConfig.class,
                dir.resolve(RunFolder.CONFIG).toString());
        JsonNode data = root.path("data");
        Tokenizer tok = Tokenizer.load(dir.resolve(RunFolder.TOKENIZER));
        int vocab = data.path("vocab_size").asInt(tok.vocabSize());
        tok.requireVocabulary(vocab, "token model run " + dir);
        TokenLM model = new TokenLM(cfg, vocab);
        Checkpoints.State state = Checkpoints.load(Checkpoints.latestOf(dir), model, null);
        model.eval();
        return new TokenLMRun(dir, model, tok, data.path("patch_size").asInt(4), data.path("pad_id").asInt(),
                state.step());
    }

    /** The data layout a token baseline was trained on: vocabulary, and the chunk size documents were padded to. */
    public record DataLayout(int vocabSize, int patchSize, int padId) {}
}
