package calm4j.release;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.app.AutoencoderRun;
import calm4j.app.CalmRun;
import calm4j.app.TrainedRun;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmModel;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.io.SafeTensors;
import calm4j.io.StateDict;
import calm4j.io.WeightFiles;
import calm4j.nn.RMSNorm;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * calm4j's own Hugging Face layout: {@code config.json} with the authors' field names where they have one and
 * {@code calm4j_} fields where only calm4j does ({@link ConfigTable}), a CALM's autoencoder nested as
 * {@code ae_config} and its weights inside the CALM's; {@code model.safetensors} with the authors' parameter names
 * (calm4j's are theirs, so weights map one to one); {@code tokenizer.json}.
 */
final class Calm4jLayout {
    private Calm4jLayout() {}

    /** Whether {@code config} is a CALM's (an autoencoder's has no backbone layers). */
    static boolean isCalm(JsonNode config) {
        return config.has("num_hidden_layers");
    }

    static ObjectNode autoencoderConfig(AutoencoderConfig c) {
        ObjectNode n = Configs.JSON.createObjectNode();
        n.put("model_type", "calm_autoencoder");
        ConfigTable.write(c, n, ConfigTable.AUTOENCODER, ConfigTable.AUTOENCODER_CALM4J);
        n.put("rms_norm_eps", RMSNorm.EPS);
        n.put("bos_token_id", c.eosId());
        return n;
    }

    static ObjectNode calmConfig(CalmConfig c, AutoencoderConfig ae) {
        ObjectNode n = Configs.JSON.createObjectNode();
        n.put("model_type", "calm");
        n.put("vocab_size", ae.vocabSize());
        ConfigTable.write(c, n, ConfigTable.CALM, ConfigTable.CALM_CALM4J);
        if (c.refinesProposals()) ConfigTable.write(c, n, ConfigTable.CALM_PROPOSALS);
        n.put("rms_norm_eps", RMSNorm.EPS);
        n.put("patch_size", ae.patchSize());
        n.put("latent_size", ae.latentSize());
        n.put("pad_token_id", ae.padId());
        n.put("eos_token_id", ae.eosId());
        n.put("bos_token_id", ae.eosId());
        n.set("ae_config", autoencoderConfig(ae));
        return n;
    }

    /** Writes the run in {@code run} (a CALM or an autoencoder) to {@code out}. */
    static void export(Path run, Path out) {
        try (TrainedRun r = TrainedRun.load(run)) {
            ObjectNode config;
            Map<String, Tensor> weights;
            if (r instanceof CalmRun calm) {
                config = calmConfig(calm.model().config(), calm.model().autoencoder().config());
                weights = new LinkedHashMap<>(StateDict.of(calm.model()));
                weights.keySet().removeIf(calm.model()::isTrainingOnly); // not exported
            } else if (r instanceof AutoencoderRun ae) {
                config = autoencoderConfig(ae.model().config());
                weights = StateDict.of(ae.model());
            } else {
                throw new UserError(run + " is a " + r.kind() + " run: calm4j's release layout holds CALMs and "
                        + "autoencoders");
            }
            Files.createDirectories(out);
            Configs.write(out.resolve(HuggingFaceLayout.CONFIG), config);
            SafeTensors.write(out.resolve(WeightFiles.SAFETENSORS), weights, Map.of("format", "pt"));
            Files.copy(r.tokenizer().path(), out.resolve(HuggingFaceLayout.TOKENIZER),
                    StandardCopyOption.REPLACE_EXISTING);
            HuggingFaceLayout.copyChatTemplate(r.dir(), out);
        } catch (IOException e) {
            throw new UserError("cannot write " + out + ": " + e.getMessage());
        }
    }

    /** The model a folder in this layout holds, with its weights. */
    static Module read(Path dir, JsonNode cfg) {
        Path cfgFile = dir.resolve(HuggingFaceLayout.CONFIG);
        Map<String, Tensor> tensors = WeightFiles.read(dir);
        if (isCalm(cfg)) {
            CalmModel calm = new CalmModel(ConfigTable.calm(cfg, cfgFile),
                    new ChunkAutoencoder(ConfigTable.autoencoder(cfg.path("ae_config"), cfgFile)));
            // An export leaves training-only modules out (the multi-token head beside a low-rank proposal head):
            // they keep their fresh initialisation, as they would start a fine-tuning.
            Map<String, Tensor> all = new java.util.HashMap<>(tensors);
            StateDict.of(calm).forEach((name, p) -> {
                if (calm.isTrainingOnly(name)) all.putIfAbsent(name, p);
            });
            HuggingFaceLayout.load(calm, all, dir);
            return calm;
        }
        ChunkAutoencoder ae = new ChunkAutoencoder(ConfigTable.autoencoder(cfg, cfgFile));
        HuggingFaceLayout.load(ae, tensors, dir);
        return ae;
    }
}
