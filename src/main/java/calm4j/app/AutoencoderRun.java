package calm4j.app;

import calm4j.ae.ChunkAutoencoder;
import calm4j.ae.AutoencoderConfig;
import calm4j.tokenize.Tokenizer;
import calm4j.run.Checkpoints;
import calm4j.engine.Configs;
import calm4j.run.RunFolder;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;

/** A trained autoencoder loaded from its run folder: config, tokenizer and the newest checkpoint's weights. */
public record AutoencoderRun(Path dir, ChunkAutoencoder model, Tokenizer tokenizer, long step) {
    public static final String KIND = "autoencoder";

    public static AutoencoderRun load(Path dir) {
        JsonNode root = RunFolder.config(dir, KIND);
        AutoencoderConfig cfg = Configs.section(root, "model", AutoencoderConfig.DEFAULTS, AutoencoderConfig.class,
                dir.resolve(RunFolder.CONFIG).toString());
        Path ckpt = Checkpoints.latestOf(dir);
        Tokenizer tok = Tokenizer.load(dir.resolve(RunFolder.TOKENIZER));
        tok.requireVocabulary(cfg.vocabSize(), "autoencoder run " + dir);
        ChunkAutoencoder ae = new ChunkAutoencoder(cfg);
        Checkpoints.State state = Checkpoints.load(ckpt, ae, null);
        ae.eval();
        return new AutoencoderRun(dir, ae, tok, state.step());
    }
}
