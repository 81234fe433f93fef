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
import calm4j.tokenize.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The layout of the CALM authors' releases, which their classes load with {@code from_pretrained}: a flat
 * config.json ({@code model_type} "energy" or "flow", the autoencoder named only by {@code ae_path}, a path on their
 * machine), weights in any of their formats ({@link WeightFiles}) with the autoencoder inside as {@code ae_model.*}
 * or as a release of its own, and module aliases ({@code generative_head.*}, the tied
 * {@code decoder.lm_head_weight}).
 */
public final class OfficialLayout {
    private OfficialLayout() {}

    /** Whether a config.json is the authors' flat CALM config (model_type "energy" or "flow", or an ae_path). */
    public static boolean isCalm(JsonNode cfg) {
        return List.of("energy", "flow").contains(cfg.path("model_type").asText()) || cfg.has("ae_path");
    }

    /** The authors' autoencoder release in {@code dir}, loaded. */
    public static ChunkAutoencoder autoencoder(Path dir) {
        Path cfgFile = dir.resolve(HuggingFaceLayout.CONFIG);
        ChunkAutoencoder ae = new ChunkAutoencoder(ConfigTable.autoencoder(Configs.readTree(cfgFile), cfgFile));
        HuggingFaceLayout.load(ae, WeightFiles.read(dir), dir);
        return ae;
    }

    /** An autoencoder config from a config.json in the authors' layout (or calm4j's). */
    public static AutoencoderConfig autoencoderConfig(JsonNode n, Path where) {
        return ConfigTable.autoencoder(n, where);
    }

    /**
     * A CALM as the authors' release in {@code dir} stores it, with {@code tensors} its weights: the autoencoder's
     * are {@code ae_model.*} among them, or {@code autoencoder} is given from a separate autoencoder release.
     */
    public static CalmModel calm(Path dir, Map<String, Tensor> tensors, ChunkAutoencoder autoencoder) {
        Path cfgFile = dir.resolve(HuggingFaceLayout.CONFIG);
        JsonNode cfg = Configs.readTree(cfgFile);
        int eos = cfg.path("eos_token_id").asInt(0);
        int pad = cfg.hasNonNull("pad_token_id") ? cfg.get("pad_token_id").asInt() : eos;
        ChunkAutoencoder ae = autoencoder != null ? autoencoder
                : new ChunkAutoencoder(autoencoderConfigOf(tensors, "ae_model.", eos, pad, cfgFile));
        CalmModel model = new CalmModel(ConfigTable.calm(cfg, cfgFile), ae);
        Map<String, Tensor> all = tensors;
        if (autoencoder != null && !tensors.containsKey("ae_model.encoder.embed_tokens.weight")) {
            all = new LinkedHashMap<>(tensors); // the given autoencoder's weights stand in for ae_model.*
            for (var e : StateDict.of(autoencoder).entrySet()) all.put("ae_model." + e.getKey(), e.getValue());
        }
        HuggingFaceLayout.load(model, all, dir);
        return model;
    }

    /**
     * The autoencoder config of the {@code prefix}ed tensors of a release (the authors' CALM checkpoints carry their
     * autoencoder as {@code ae_model.*} but name its config only by a path on their machine): every size is read
     * from the tensors' shapes; the training-only settings take the authors' defaults (preset {@code official}).
     */
    public static AutoencoderConfig autoencoderConfigOf(Map<String, Tensor> tensors, String prefix, int eos, int pad,
                                                        Path where) {
        Tensor embed = tensors.get(prefix + "encoder.embed_tokens.weight");
        Tensor gate = tensors.get(prefix + "encoder.encoder_layers.0.mlp.gate_proj.weight");
        Tensor squeeze = tensors.get(prefix + "encoder.squeeze_layer.weight");
        Tensor latent = tensors.get(prefix + "encoder.hidden_to_latent.weight");
        if (embed == null || gate == null || squeeze == null || latent == null) {
            throw UserError.badValue("ae", "is needed: " + where + " has no autoencoder tensors (" + prefix
                    + "encoder.*); give the folder of its autoencoder release");
        }
        int d = (int) embed.size(1);
        ObjectNode shapes = Configs.JSON.createObjectNode();
        shapes.put("vocab_size", embed.size(0));
        shapes.put("hidden_size", d);
        shapes.put("intermediate_size", gate.size(0));
        shapes.put("num_encoder_layers", countLayers(tensors, prefix + "encoder.encoder_layers."));
        shapes.put("num_decoder_layers", countLayers(tensors, prefix + "decoder.decoder_layers."));
        shapes.put("patch_size", squeeze.size(1) / d);
        shapes.put("latent_size", latent.size(0) / 2);
        shapes.put("eos_token_id", eos);
        shapes.put("pad_token_id", pad);
        return ConfigTable.autoencoder(shapes, where);
    }

    private static int countLayers(Map<String, Tensor> tensors, String prefix) {
        int n = 0;
        while (tensors.containsKey(prefix + n + ".layernorm.weight")) n++;
        return n;
    }

    /**
     * Writes a run in the authors' layout: a CALM as {@code OUT/config.json} and {@code OUT/model.safetensors} with
     * every name their module tree has, and its autoencoder as a release of its own in {@code OUT/autoencoder},
     * named by {@code ae_path}; an autoencoder run as that release alone.
     */
    public static void export(Path run, Path out) {
        try (TrainedRun r = TrainedRun.load(run)) {
            Files.createDirectories(out);
            if (r instanceof CalmRun calm) {
                if (calm.model().config().refinesProposals()) {
                    throw new UserError(run + "'s head refines chunks proposed by its multi-token head "
                            + "(head_proposal), which the authors' classes do not have: export it in calm4j's layout");
                }
                Path aeDir = out.resolve("autoencoder");
                writeAutoencoder(calm.model().autoencoder(), aeDir, calm.tokenizer());
                Configs.write(out.resolve(HuggingFaceLayout.CONFIG), calmConfig(calm.model().config(),
                        calm.model().autoencoder().config(), aeDir.toAbsolutePath()));
                SafeTensors.write(out.resolve(WeightFiles.SAFETENSORS), tensors(calm.model()), Map.of("format", "pt"));
                Files.copy(calm.tokenizer().path(), out.resolve(HuggingFaceLayout.TOKENIZER),
                        StandardCopyOption.REPLACE_EXISTING);
                HuggingFaceLayout.copyChatTemplate(calm.dir(), out);
            } else if (r instanceof AutoencoderRun ae) {
                writeAutoencoder(ae.model(), out, ae.tokenizer());
            } else {
                throw new UserError(run + " is a " + r.kind() + " run: the authors' layout holds CALMs and "
                        + "autoencoders");
            }
        } catch (IOException e) {
            throw new UserError("cannot write " + out + ": " + e.getMessage());
        }
    }

    private static void writeAutoencoder(ChunkAutoencoder ae, Path dir, Tokenizer tok) throws IOException {
        Files.createDirectories(dir);
        AutoencoderConfig c = ae.config();
        ObjectNode n = common(c);
        ConfigTable.write(c, n, ConfigTable.AUTOENCODER);
        n.putArray("architectures").add("Autoencoder");
        n.put("max_position_embeddings", 2048);
        Configs.write(dir.resolve(HuggingFaceLayout.CONFIG), ConfigTable.sorted(n));
        SafeTensors.write(dir.resolve(WeightFiles.SAFETENSORS), tensors(ae), Map.of("format", "pt"));
        Files.copy(tok.path(), dir.resolve(HuggingFaceLayout.TOKENIZER), StandardCopyOption.REPLACE_EXISTING);
    }

    static ObjectNode calmConfig(CalmConfig c, AutoencoderConfig ae, Path aeDir) {
        ObjectNode n = common(ae);
        ConfigTable.write(c, n, ConfigTable.CALM);
        boolean flow = c.head().equals("flow");
        n.put("ae_path", aeDir.toString());
        n.putArray("architectures").add(flow ? "FlowTransformer" : "EnergyTransformer");
        n.put("model_type", flow ? "flow" : "energy");
        n.put("attention_bias", false);
        n.put("attention_dropout", 0.0);
        n.put("latent_size", ae.latentSize());
        n.put("patch_size", ae.patchSize());
        n.put("pad_token_id", ae.padId());
        n.put("vocab_size", ae.vocabSize());
        n.put("use_cache", true);
        return ConfigTable.sorted(n);
    }

    /** The fields every config.json of theirs has, whatever the model. */
    private static ObjectNode common(AutoencoderConfig ae) {
        ObjectNode n = Configs.JSON.createObjectNode();
        n.put("bos_token_id", ae.eosId());
        n.put("eos_token_id", ae.eosId());
        n.put("hidden_act", "silu");
        n.put("initializer_range", 0.02);
        n.put("mlp_bias", false);
        n.put("rms_norm_eps", RMSNorm.EPS);
        n.put("tie_word_embeddings", false);
        n.put("torch_dtype", "float32");
        return n;
    }

    /** A module's tensors under every name the authors' module tree gives them (their aliases included). */
    static Map<String, Tensor> tensors(Module m) {
        Map<String, Tensor> out = new LinkedHashMap<>(StateDict.of(m));
        if (m instanceof CalmModel calm) out.keySet().removeIf(calm::isTrainingOnly);
        Map<String, Tensor> aliases = new LinkedHashMap<>();
        for (var e : out.entrySet()) {
            String name = e.getKey();
            if (name.startsWith("mlp_generator.")) {
                aliases.put("generative_head." + name.substring("mlp_generator.".length()), e.getValue());
            }
            if (name.endsWith("encoder.embed_tokens.weight") && !name.contains("transformer.")) {
                aliases.put(name.substring(0, name.length() - "encoder.embed_tokens.weight".length())
                        + "decoder.lm_head_weight", e.getValue());
            }
        }
        out.putAll(aliases);
        return out;
    }
}
