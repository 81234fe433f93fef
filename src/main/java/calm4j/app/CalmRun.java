package calm4j.app;

import calm4j.calm.PromptConvention;
import calm4j.calm.CalmModel;
import calm4j.calm.CalmConfig;
import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.tokenize.Tokenizer;
import calm4j.run.Checkpoints;
import calm4j.engine.Configs;
import calm4j.run.RunFolder;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;

/**
 * A trained CALM loaded from its run folder. The checkpoint holds the frozen autoencoder too ({@code ae_model.*}),
 * and config.json its config ({@code "autoencoder"}), so a CALM run is self-contained.
 */
public record CalmRun(Path dir, CalmModel model, Tokenizer tokenizer, long step, PromptConvention prompt) {
    public static final String KIND = "calm";

    public static CalmRun load(Path dir) {
        JsonNode root = RunFolder.config(dir, KIND);
        String where = dir.resolve(RunFolder.CONFIG).toString();
        CalmConfig cfg = Configs.section(root, "model", CalmConfig.DEFAULTS, CalmConfig.class, where);
        AutoencoderConfig ae = Configs.section(root, "autoencoder", AutoencoderConfig.DEFAULTS,
                AutoencoderConfig.class, where);
        Path ckpt = Checkpoints.latestOf(dir);
        Tokenizer tok = Tokenizer.load(dir.resolve(RunFolder.TOKENIZER));
        tok.requireVocabulary(ae.vocabSize(), "CALM run " + dir);
        CalmModel model = new CalmModel(cfg, new ChunkAutoencoder(ae));
        Checkpoints.State state = Checkpoints.load(ckpt, model, null);
        model.eval();
        PromptConvention prompt = Configs.section(root, "prompt", PromptConvention.CALM4J, PromptConvention.class,
                where);
        return new CalmRun(dir, model, tok, state.step(), prompt);
    }

    /** The tokens before every prompt of this model (see {@link PromptConvention}). */
    public int[] promptPrefix() {
        var ae = model.autoencoder().config();
        return prompt.prefix(model.patchSize(), ae.eosId(), ae.padId());
    }
}
