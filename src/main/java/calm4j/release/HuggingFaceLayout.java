package calm4j.release;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.app.AutoencoderRun;
import calm4j.app.CalmRun;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmModel;
import calm4j.calm.PromptConvention;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.io.SafeTensors;
import calm4j.io.StateDict;
import calm4j.nn.Layers;
import calm4j.nn.RMSNorm;
import calm4j.run.Checkpoints;
import calm4j.run.RunFolder;
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
import java.util.Set;
import java.util.TreeSet;

/**
 * The Hugging Face layout of the CALM authors' releases: {@code config.json} with the reference's field names,
 * {@code model.safetensors} (or {@code pytorch_model.bin}) with the reference's parameter names, and
 * {@code tokenizer.json}. calm4j's parameter names already are the reference's, so weights map one to one.
 *
 * <p>Config fields: hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
 * latent_size, patch_size, num_encoder_layers, num_decoder_layers, num_mlp_layers, noise_size, num_samples, beta
 * (the energy score's exponent, calm4j's alpha), rms_norm_eps, rope_theta, ae_dropout (DropLatent), kl_clamp,
 * kl_weight, vocab_size and the pad/eos/bos ids. Fields only calm4j has are prefixed {@code calm4j_}; a CALM's
 * config nests its autoencoder's as {@code ae_config}.
 */
public final class HuggingFaceLayout {
    public static final String CONFIG = "config.json";
    public static final String WEIGHTS = "model.safetensors";
    public static final String LEGACY_WEIGHTS = "pytorch_model.bin";
    public static final String TOKENIZER = "tokenizer.json";

    private HuggingFaceLayout() {}

    static ObjectNode autoencoderConfig(AutoencoderConfig c) {
        ObjectNode n = Configs.JSON.createObjectNode();
        n.put("model_type", "calm_autoencoder");
        n.put("vocab_size", c.vocabSize());
        n.put("hidden_size", c.hiddenSize());
        n.put("intermediate_size", c.intermediateSize());
        n.put("latent_size", c.latentSize());
        n.put("patch_size", c.patchSize());
        n.put("num_encoder_layers", c.encoderLayers());
        n.put("num_decoder_layers", c.decoderLayers());
        n.put("ae_dropout", c.latentDrop());
        n.put("kl_clamp", c.klClamp());
        n.put("kl_weight", c.klWeight());
        n.put("rms_norm_eps", RMSNorm.EPS);
        n.put("pad_token_id", c.padId());
        n.put("eos_token_id", c.eosId());
        n.put("bos_token_id", c.eosId());
        n.put("calm4j_token_drop", c.tokenDrop());
        n.put("calm4j_mask_token_id", c.maskId());
        n.put("calm4j_variational", c.variational());
        return n;
    }

    /** An autoencoder config from a config.json as the authors' code or calm4j's export writes it. */
    public static AutoencoderConfig autoencoderConfig(JsonNode n, Path where) {
        require(n, where, "vocab_size", "hidden_size", "intermediate_size", "latent_size", "patch_size",
                "num_encoder_layers", "num_decoder_layers");
        double drop = n.path("ae_dropout").asDouble(0.15);
        return new AutoencoderConfig(n.get("vocab_size").asInt(), n.get("hidden_size").asInt(),
                n.get("intermediate_size").asInt(), n.get("num_encoder_layers").asInt(),
                n.get("num_decoder_layers").asInt(), n.get("patch_size").asInt(), n.get("latent_size").asInt(),
                n.path("calm4j_variational").asBoolean(true), n.path("calm4j_token_drop").asDouble(drop), drop,
                n.path("kl_clamp").asDouble(0.5), n.path("kl_weight").asDouble(1e-3),
                n.hasNonNull("pad_token_id") ? n.get("pad_token_id").asInt() : n.path("eos_token_id").asInt(0),
                // The authors' DropToken replaces a dropped token by id 0; calm4j's own runs name their mask token.
                n.path("calm4j_mask_token_id").asInt(0), n.path("eos_token_id").asInt(0));
    }

    static ObjectNode calmConfig(CalmConfig c, AutoencoderConfig ae) {
        ObjectNode n = Configs.JSON.createObjectNode();
        n.put("model_type", "calm");
        n.put("vocab_size", ae.vocabSize());
        n.put("hidden_size", c.hiddenSize());
        n.put("intermediate_size", c.intermediateSize());
        n.put("num_hidden_layers", c.numHiddenLayers());
        n.put("num_attention_heads", c.numAttentionHeads());
        n.put("num_key_value_heads", c.numKeyValueHeads());
        n.put("rope_theta", c.ropeTheta());
        n.put("rms_norm_eps", RMSNorm.EPS);
        n.put("max_position_embeddings", c.contextChunks());
        n.put("patch_size", ae.patchSize());
        n.put("latent_size", ae.latentSize());
        n.put("noise_size", c.noiseSize());
        n.put("num_mlp_layers", c.numMlpLayers());
        n.put("num_samples", c.numSamples());
        n.put("beta", c.alpha());
        n.put("pad_token_id", ae.padId());
        n.put("eos_token_id", ae.eosId());
        n.put("bos_token_id", ae.eosId());
        n.put("calm4j_num_targets", c.numTargets());
        n.put("calm4j_eval_block_chunks", c.evalBlockChunks());
        n.put("calm4j_eval_samples", c.evalSamples());
        n.put("calm4j_head", c.head());
        n.put("calm4j_flow_steps", c.flowSteps());
        if (c.refinesProposals()) { // the multi-token head proposes chunks: part of the model, exported with it
            n.put("calm4j_head_proposal", true);
            n.put("calm4j_aux_token_head", c.auxTokenHead());
        }
        n.set("ae_config", autoencoderConfig(ae));
        return n;
    }

    static CalmConfig calmConfig(JsonNode n, Path where) {
        require(n, where, "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads");
        int context = n.path("max_position_embeddings").asInt(2048);
        int heads = n.get("num_attention_heads").asInt();
        return CalmConfig.DEFAULTS.with("hidden_size", n.get("hidden_size").asInt(),
                "intermediate_size", n.get("intermediate_size").asInt(),
                "num_hidden_layers", n.get("num_hidden_layers").asInt(), "num_attention_heads", heads,
                "num_key_value_heads", n.path("num_key_value_heads").asInt(heads),
                "rope_theta", n.path("rope_theta").asDouble(10000.0), "context_chunks", context,
                "noise_size", n.path("noise_size").asInt(64), "num_mlp_layers", n.path("num_mlp_layers").asInt(4),
                "num_samples", n.path("num_samples").asInt(8),
                "num_targets", n.path("calm4j_num_targets").asInt(100), "alpha", n.path("beta").asDouble(1.0),
                "eval_block_chunks", n.path("calm4j_eval_block_chunks").asInt(Math.min(context, 512)),
                "eval_samples", n.path("calm4j_eval_samples").asInt(2),
                "head", n.path("model_type").asText().equals("flow") ? "flow" : n.path("calm4j_head").asText("energy"),
                "flow_steps", n.path("calm4j_flow_steps").asInt(10),
                // the authors' models have no multi-token head, nor does an export where it is training-only; a
                // proposal head's belongs to the model (its weight here only makes it exist)
                "head_proposal", n.path("calm4j_head_proposal").asBoolean(false),
                "aux_token_weight", n.path("calm4j_head_proposal").asBoolean(false) ? 1.0 : 0.0,
                "aux_token_head", n.path("calm4j_aux_token_head").asText("tied"));
    }

    private static void require(JsonNode n, Path where, String... fields) {
        for (String f : fields) {
            if (!n.hasNonNull(f)) throw new UserError(where + " has no \"" + f + "\"");
        }
    }

    /** Writes a run's model in the Hugging Face layout. */
    public static void export(Path run, Path out) {
        JsonNode kind = RunFolder.config(run, null).path("kind");
        ObjectNode config;
        Module model;
        Tokenizer tok;
        if (kind.asText().equals(CalmRun.KIND)) {
            CalmRun r = CalmRun.load(run);
            config = calmConfig(r.model().config(), r.model().autoencoder().config());
            model = r.model();
            tok = r.tokenizer();
        } else {
            AutoencoderRun r = AutoencoderRun.load(run);
            config = autoencoderConfig(r.model().config());
            model = r.model();
            tok = r.tokenizer();
        }
        try {
            Files.createDirectories(out);
            Configs.write(out.resolve(CONFIG), config);
            Map<String, Tensor> weights = new LinkedHashMap<>(StateDict.of(model));
            if (model instanceof CalmModel calm) weights.keySet().removeIf(calm::isTrainingOnly); // not exported
            SafeTensors.write(out.resolve(WEIGHTS), weights, Map.of("format", "pt"));
            Files.copy(tok.path(), out.resolve(TOKENIZER), StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UserError("cannot write " + out + ": " + e.getMessage());
        } finally {
            tok.close();
        }
    }

    /** What an import made. */
    public record Imported(String kind, long parameters, List<String> unusedTensors) {}

    /** Reads a directory in the Hugging Face layout (an autoencoder or a CALM) into a new calm4j run. */
    public static Imported importDir(Path dir, Path run) {
        return importDir(dir, run, null, null);
    }

    /**
     * Reads a release directory into a new calm4j run: calm4j's own export, or the authors' layout (flat config,
     * weights in any of their formats, the autoencoder inside the CALM's checkpoint or given as {@code aeDir}).
     * The tokenizer is {@code tokenizer} when given, else the directory's tokenizer.json. A tokenizer one token
     * short of the model's vocabulary is the authors' setup (they added a [PAD] token after Llama-3's): the [PAD] is
     * added to the run's copy. Any other mismatch is refused with both sizes.
     */
    public static Imported importDir(Path dir, Path run, Path tokenizer, Path aeDir) {
        Path cfgFile = dir.resolve(CONFIG);
        JsonNode cfg = Configs.readTree(cfgFile);
        if (Files.exists(run)) throw new UserError(run + " already exists: choose another --out");
        Path tokFile = tokenizer != null ? tokenizer : dir.resolve(TOKENIZER);
        if (!Files.isRegularFile(tokFile)) {
            throw new UserError((tokenizer != null ? tokenizer + " does not exist" : dir + " has no " + TOKENIZER)
                    + ": give the model's tokenizer with --tokenizer FILE (the authors' releases use the Llama-3 "
                    + "tokenizer.json, shipped in their repository's llama3_tokenizer/)");
        }
        Map<String, Tensor> tensors = readWeights(dir);
        Module model;
        Map<String, Object> sections = new LinkedHashMap<>();
        String kind;
        AutoencoderConfig ae;
        if (isOfficialCalm(cfg)) {
            ChunkAutoencoder given = aeDir != null ? officialAutoencoder(aeDir) : null;
            CalmModel calm = officialCalm(dir, tensors, given);
            model = calm;
            ae = calm.autoencoder().config();
            sections.put("model", calm.config());
            sections.put("autoencoder", ae);
            // Their documents were tokenized with BOS in front and no end-of-document chunk.
            sections.put("prompt", PromptConvention.official(cfg.path("bos_token_id").asInt(-1)));
            kind = CalmRun.KIND;
        } else if (cfg.has("num_hidden_layers")) {
            ae = autoencoderConfig(cfg.path("ae_config"), cfgFile);
            CalmConfig c = calmConfig(cfg, cfgFile);
            model = new CalmModel(c, new ChunkAutoencoder(ae));
            requireAllUsed(StateDict.load(model, tensors, dir.toString()), dir);
            sections.put("model", c);
            sections.put("autoencoder", ae);
            kind = CalmRun.KIND;
        } else {
            ae = autoencoderConfig(cfg, cfgFile);
            model = new ChunkAutoencoder(ae);
            requireAllUsed(StateDict.load(model, tensors, dir.toString()), dir);
            sections.put("model", ae);
            kind = AutoencoderRun.KIND;
        }
        Path tokForRun = matchTokenizer(tokFile, ae.vocabSize(), run);
        try {
            RunFolder.createOrResume(run, kind, sections, kind.equals(CalmRun.KIND) ? CalmRun.TRAIN : AutoencoderRun.TRAIN, tokForRun);
        } finally {
            if (!tokForRun.equals(tokFile)) deleteQuietly(tokForRun);
        }
        Checkpoints.saveWeights(run, 0, model);
        return new Imported(kind, Layers.parameterCount(model, false), List.of());
    }

    /** The authors' autoencoder release in {@code dir}, loaded. */
    public static ChunkAutoencoder officialAutoencoder(Path dir) {
        JsonNode cfg = Configs.readTree(dir.resolve(CONFIG));
        ChunkAutoencoder ae = new ChunkAutoencoder(autoencoderConfig(cfg, dir.resolve(CONFIG)));
        requireAllUsed(StateDict.load(ae, readWeights(dir), dir.toString()), dir);
        return ae;
    }

    private static void requireAllUsed(List<String> unused, Path dir) {
        if (!unused.isEmpty()) {
            throw new UserError(dir + " has tensors the model does not: " + unused + " (is config.json the one "
                    + "these weights were saved with?)");
        }
    }

    /** The tokenizer file for the run: {@code tokFile} itself, or a copy with the authors' [PAD] appended. */
    private static Path matchTokenizer(Path tokFile, int modelVocab, Path run) {
        int vocab;
        try (Tokenizer tok = Tokenizer.load(tokFile)) {
            vocab = tok.vocabSize();
        }
        if (vocab == modelVocab) return tokFile;
        if (vocab + 1 != modelVocab) {
            throw new UserError(tokFile + " has a vocabulary of " + vocab + " tokens and the model " + modelVocab
                    + ": they do not belong together (the authors' models have the tokenizer's vocabulary plus one "
                    + "[PAD]); give the tokenizer the model was trained with");
        }
        try {
            Path withPad = Files.createTempFile("calm4j-tokenizer", ".json");
            Tokenizer.writeWithToken(tokFile, "[PAD]", vocab, withPad);
            System.err.println("note: " + tokFile + " has " + vocab + " tokens and the model " + modelVocab
                    + ": added [PAD] as token " + vocab + ", as the authors' training did");
            return withPad;
        } catch (IOException e) {
            throw new UserError("cannot write a temporary tokenizer for " + run + ": " + e.getMessage());
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a temporary file
        }
    }

    /**
     * Every tensor of a release directory, whichever way it is stored: {@code model.safetensors} or
     * {@code pytorch_model.bin}, or their shards listed by {@code model.safetensors.index.json} /
     * {@code pytorch_model.bin.index.json}. Floating tensors come back as float32.
     */
    public static Map<String, Tensor> readWeights(Path dir) {
        for (String index : List.of(WEIGHTS + ".index.json", LEGACY_WEIGHTS + ".index.json")) {
            Path indexFile = dir.resolve(index);
            if (!Files.isRegularFile(indexFile)) continue;
            JsonNode map = Configs.readTree(indexFile).path("weight_map");
            if (!map.isObject() || map.isEmpty()) throw new UserError(indexFile + " has no \"weight_map\"");
            Map<String, Tensor> all = new LinkedHashMap<>();
            Set<String> shards = new TreeSet<>();
            map.fields().forEachRemaining(e -> shards.add(e.getValue().asText()));
            for (String shard : shards) {
                Path f = dir.resolve(shard).normalize();
                if (!f.startsWith(dir.normalize()) || !Files.isRegularFile(f)) {
                    throw new UserError(indexFile + " names the shard " + shard + ", which is not in " + dir);
                }
                all.putAll(StateDict.readFile(f));
            }
            for (var it = map.fieldNames(); it.hasNext(); ) {
                String name = it.next();
                if (!all.containsKey(name)) {
                    throw new UserError(indexFile + " lists tensor " + name + " in " + map.get(name).asText()
                            + ", which does not hold it");
                }
            }
            return all;
        }
        for (String single : List.of(WEIGHTS, LEGACY_WEIGHTS)) {
            if (Files.isRegularFile(dir.resolve(single))) return StateDict.readFile(dir.resolve(single));
        }
        throw new UserError(dir + " holds no weights: expected " + WEIGHTS + ", " + LEGACY_WEIGHTS
                + " or a sharded set with its .index.json");
    }

    /**
     * The autoencoder config of the {@code prefix}ed tensors of a release (the authors' CALM checkpoints carry their
     * autoencoder as {@code ae_model.*} but name its config only by a path on their machine): every size is read
     * from the tensors' shapes; the training-only settings take the authors' values.
     */
    public static AutoencoderConfig autoencoderConfigOf(Map<String, Tensor> tensors, String prefix, int eos, int pad,
                                                        Path where) {
        Tensor embed = tensors.get(prefix + "encoder.embed_tokens.weight");
        Tensor gate = tensors.get(prefix + "encoder.encoder_layers.0.mlp.gate_proj.weight");
        Tensor squeeze = tensors.get(prefix + "encoder.squeeze_layer.weight");
        Tensor latent = tensors.get(prefix + "encoder.hidden_to_latent.weight");
        if (embed == null || gate == null || squeeze == null || latent == null) {
            throw new UserError(where + " has no autoencoder tensors (" + prefix + "encoder.*): import its "
                    + "autoencoder release as well and give it with --ae DIR");
        }
        int d = (int) embed.size(1);
        int encoderLayers = countLayers(tensors, prefix + "encoder.encoder_layers.");
        int decoderLayers = countLayers(tensors, prefix + "decoder.decoder_layers.");
        return new AutoencoderConfig((int) embed.size(0), d, (int) gate.size(0), encoderLayers, decoderLayers,
                (int) (squeeze.size(1) / d), (int) (latent.size(0) / 2), true, 0.15, 0.15, 0.5, 1e-3, pad, 0, eos);
    }

    private static int countLayers(Map<String, Tensor> tensors, String prefix) {
        int n = 0;
        while (tensors.containsKey(prefix + n + ".layernorm.weight")) n++;
        return n;
    }

    /** Whether a config.json is the authors' flat one (model_type "energy", autoencoder named by ae_path). */
    public static boolean isOfficialCalm(JsonNode cfg) {
        return List.of("energy", "flow").contains(cfg.path("model_type").asText()) || cfg.has("ae_path");
    }

    /**
     * A CALM as the authors' release stores it: the flat config.json and the weights (with {@code ae_model.*}, or
     * {@code autoencoder} given from a separate autoencoder release).
     */
    public static CalmModel officialCalm(Path dir, Map<String, Tensor> tensors, ChunkAutoencoder autoencoder) {
        Path cfgFile = dir.resolve(CONFIG);
        JsonNode cfg = Configs.readTree(cfgFile);
        int eos = cfg.path("eos_token_id").asInt(0);
        int pad = cfg.hasNonNull("pad_token_id") ? cfg.get("pad_token_id").asInt() : eos;
        ChunkAutoencoder ae = autoencoder != null ? autoencoder
                : new ChunkAutoencoder(autoencoderConfigOf(tensors, "ae_model.", eos, pad, cfgFile));
        CalmModel model = new CalmModel(calmConfig(cfg, cfgFile), ae);
        Map<String, Tensor> all = tensors;
        if (autoencoder != null && !tensors.containsKey("ae_model.encoder.embed_tokens.weight")) {
            all = new LinkedHashMap<>(tensors); // the given autoencoder's weights stand in for ae_model.*
            for (var e : StateDict.of(autoencoder).entrySet()) all.put("ae_model." + e.getKey(), e.getValue());
        }
        List<String> unused = StateDict.load(model, all, dir.toString());
        if (!unused.isEmpty()) {
            throw new UserError(dir + " has tensors the model does not: " + unused + " (is config.json the one "
                    + "these weights were saved with?)");
        }
        return model;
    }

    /**
     * Writes a run in the authors' layout, which their classes load with {@code from_pretrained}: a CALM as
     * {@code OUT/config.json} (flat, {@code model_type} "energy") and {@code OUT/model.safetensors} with every name
     * their module tree has (the {@code generative_head.*} alias and the tied {@code decoder.lm_head_weight}
     * included), and its autoencoder as a release of its own in {@code OUT/autoencoder}, named by {@code ae_path};
     * an autoencoder run as that release alone.
     */
    public static void exportOfficial(Path run, Path out) {
        String kind = RunFolder.config(run, null).path("kind").asText();
        try {
            Files.createDirectories(out);
            if (kind.equals(CalmRun.KIND)) {
                CalmRun r = CalmRun.load(run);
                if (r.model().config().refinesProposals()) {
                    r.tokenizer().close();
                    throw new UserError(run + "'s head refines chunks proposed by its multi-token head "
                            + "(head_proposal), which the authors' classes do not have: export it in calm4j's layout");
                }
                try (Tokenizer tok = r.tokenizer()) {
                    Path aeDir = out.resolve("autoencoder");
                    writeOfficialAutoencoder(r.model().autoencoder(), aeDir, tok);
                    Configs.write(out.resolve(CONFIG), officialCalmConfig(r.model().config(),
                            r.model().autoencoder().config(), aeDir.toAbsolutePath()));
                    SafeTensors.write(out.resolve(WEIGHTS), officialTensors(r.model()), Map.of("format", "pt"));
                    Files.copy(tok.path(), out.resolve(TOKENIZER), StandardCopyOption.REPLACE_EXISTING);
                }
            } else {
                AutoencoderRun r = AutoencoderRun.load(run);
                try (Tokenizer tok = r.tokenizer()) {
                    writeOfficialAutoencoder(r.model(), out, tok);
                }
            }
        } catch (IOException e) {
            throw new UserError("cannot write " + out + ": " + e.getMessage());
        }
    }

    private static void writeOfficialAutoencoder(ChunkAutoencoder ae, Path dir, Tokenizer tok) throws IOException {
        Files.createDirectories(dir);
        AutoencoderConfig c = ae.config();
        ObjectNode n = Configs.JSON.createObjectNode();
        n.put("ae_dropout", c.latentDrop());
        n.putArray("architectures").add("Autoencoder");
        n.put("bos_token_id", c.eosId());
        n.put("eos_token_id", c.eosId());
        n.put("hidden_act", "silu");
        n.put("hidden_size", c.hiddenSize());
        n.put("initializer_range", 0.02);
        n.put("intermediate_size", c.intermediateSize());
        n.put("kl_clamp", c.klClamp());
        n.put("kl_weight", c.klWeight());
        n.put("latent_size", c.latentSize());
        n.put("max_position_embeddings", 2048);
        n.put("mlp_bias", false);
        n.put("num_decoder_layers", c.decoderLayers());
        n.put("num_encoder_layers", c.encoderLayers());
        n.put("pad_token_id", c.padId());
        n.put("patch_size", c.patchSize());
        n.put("rms_norm_eps", RMSNorm.EPS);
        n.put("tie_word_embeddings", false);
        n.put("torch_dtype", "float32");
        n.put("vocab_size", c.vocabSize());
        Configs.write(dir.resolve(CONFIG), n);
        SafeTensors.write(dir.resolve(WEIGHTS), officialTensors(ae), Map.of("format", "pt"));
        Files.copy(tok.path(), dir.resolve(TOKENIZER), StandardCopyOption.REPLACE_EXISTING);
    }

    static ObjectNode officialCalmConfig(CalmConfig c, AutoencoderConfig ae, Path aeDir) {
        ObjectNode n = Configs.JSON.createObjectNode();
        n.put("ae_path", aeDir.toString());
        boolean flow = c.head().equals("flow");
        n.putArray("architectures").add(flow ? "FlowTransformer" : "EnergyTransformer");
        n.put("attention_bias", false);
        n.put("attention_dropout", 0.0);
        n.put("beta", c.alpha());
        n.put("bos_token_id", ae.eosId());
        n.put("eos_token_id", ae.eosId());
        n.put("hidden_act", "silu");
        n.put("hidden_size", c.hiddenSize());
        n.put("initializer_range", 0.02);
        n.put("intermediate_size", c.intermediateSize());
        n.put("latent_size", ae.latentSize());
        n.put("max_position_embeddings", c.contextChunks());
        n.put("mlp_bias", false);
        n.put("model_type", flow ? "flow" : "energy");
        n.put("noise_size", c.noiseSize());
        n.put("num_attention_heads", c.numAttentionHeads());
        n.put("num_hidden_layers", c.numHiddenLayers());
        n.put("num_key_value_heads", c.numKeyValueHeads());
        n.put("num_mlp_layers", c.numMlpLayers());
        n.put("num_samples", c.numSamples());
        n.put("pad_token_id", ae.padId());
        n.put("patch_size", ae.patchSize());
        n.put("rms_norm_eps", RMSNorm.EPS);
        n.put("rope_theta", c.ropeTheta());
        n.put("tie_word_embeddings", false);
        n.put("torch_dtype", "float32");
        n.put("use_cache", true);
        n.put("vocab_size", ae.vocabSize());
        return n;
    }

    /** A module's tensors under every name the authors' module tree gives them (their aliases included). */
    static Map<String, Tensor> officialTensors(Module m) {
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
