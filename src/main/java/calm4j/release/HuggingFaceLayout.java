package calm4j.release;

import calm4j.chat.ChatTemplate;
import calm4j.ae.ChunkAutoencoder;
import calm4j.app.AutoencoderRun;
import calm4j.app.CalmRun;
import calm4j.calm.CalmModel;
import calm4j.calm.PromptConvention;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.io.StateDict;
import calm4j.io.WeightFiles;
import calm4j.nn.Layers;
import calm4j.run.Checkpoints;
import calm4j.run.RunFolder;
import calm4j.tokenize.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
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
 * A model folder in the Hugging Face layout (config.json, weights, tokenizer.json) to and from a calm4j run, in
 * either of the two layouts CALM models come in: calm4j's own ({@link Calm4jLayout}) and the authors' releases
 * ({@link OfficialLayout}). Import tells them apart by the config and matches the tokenizer to the model.
 */
public final class HuggingFaceLayout {
    public static final String CONFIG = "config.json";
    public static final String TOKENIZER = "tokenizer.json";

    private HuggingFaceLayout() {}

    /** Writes a run (a CALM or an autoencoder) in calm4j's layout. */
    public static void export(Path run, Path out) {
        Calm4jLayout.export(run, out);
    }

    /** Writes a run in the authors' layout, which their classes load with {@code from_pretrained}. */
    public static void exportOfficial(Path run, Path out) {
        OfficialLayout.export(run, out);
    }

    /**
     * Writes a run in the layout {@code format} names, "calm4j" or "official" (the authors'), and says what it
     * wrote.
     */
    public static String export(Path run, Path out, String format) {
        switch (format) {
            case "official" -> {
                exportOfficial(run, out);
                return "wrote " + out + " in the authors' layout";
            }
            case "calm4j" -> {
                export(run, out);
                return "wrote " + out.resolve(CONFIG) + ", " + out.resolve(WeightFiles.SAFETENSORS) + " and "
                        + out.resolve(TOKENIZER);
            }
            default -> throw UserError.badValue("format", "must be calm4j or official, got " + format);
        }
    }

    /** What an import made: the run's kind and its parameter count. */
    public record Imported(String kind, long parameters) {}

    /** Reads a directory in the Hugging Face layout (an autoencoder or a CALM) into a new calm4j run. */
    public static Imported importDir(Path dir, Path run) {
        return importDir(dir, run, null, null);
    }

    /**
     * Reads a release directory into a new calm4j run: calm4j's own export, or the authors' layout (the autoencoder
     * inside the CALM's checkpoint or given as {@code aeDir}). The tokenizer is {@code tokenizer} when given, else
     * the directory's tokenizer.json. A tokenizer one token short of the model's vocabulary is the authors' setup
     * (they added a [PAD] token after Llama-3's): the [PAD] is added to the run's copy. Any other mismatch is
     * refused with both sizes.
     */
    public static Imported importDir(Path dir, Path run, Path tokenizer, Path aeDir) {
        JsonNode cfg = Configs.readTree(dir.resolve(CONFIG));
        if (Files.exists(run)) throw new UserError(run + " already exists: choose another output folder");
        Path tokFile = tokenizer != null ? tokenizer : dir.resolve(TOKENIZER);
        if (!Files.isRegularFile(tokFile)) {
            throw UserError.badValue("tokenizer", tokenizer != null ? tokenizer + " does not exist"
                    : "is needed: " + dir + " has no " + TOKENIZER + " (the authors' releases use the Llama-3 "
                    + "tokenizer.json, shipped in their repository's llama3_tokenizer/)");
        }
        // A chat model's tokenizer_config.json: the folder's, else the one beside a tokenizer given apart. Its
        // template is checked before anything is written.
        Path chatDir = tokenizer != null && !Files.isRegularFile(dir.resolve(ChatTemplate.TOKENIZER_CONFIG))
                ? tokFile.toAbsolutePath().getParent() : dir;
        if (Files.isRegularFile(chatDir.resolve(ChatTemplate.TOKENIZER_CONFIG))) ChatTemplate.of(chatDir);
        Module model;
        Map<String, Object> sections = new LinkedHashMap<>();
        if (OfficialLayout.isCalm(cfg)) {
            ChunkAutoencoder given = aeDir != null ? OfficialLayout.autoencoder(aeDir) : null;
            CalmModel calm = OfficialLayout.calm(dir, WeightFiles.read(dir), given);
            model = calm;
            // Their documents were tokenized with BOS in front and no end-of-document chunk.
            sections.put("prompt", PromptConvention.official(cfg.path("bos_token_id").asInt(-1)));
        } else {
            model = Calm4jLayout.read(dir, cfg);
        }
        ChunkAutoencoder ae;
        String kind;
        if (model instanceof CalmModel calm) {
            ae = calm.autoencoder();
            sections.put("model", calm.config());
            sections.put("autoencoder", ae.config());
            kind = CalmRun.KIND;
        } else {
            ae = (ChunkAutoencoder) model;
            sections.put("model", ae.config());
            kind = AutoencoderRun.KIND;
        }
        Path tokForRun = matchTokenizer(tokFile, ae.config().vocabSize(), run);
        try {
            RunFolder.createOrResume(run, kind, sections, kind.equals(CalmRun.KIND) ? CalmRun.TRAIN
                    : AutoencoderRun.TRAIN, tokForRun);
        } finally {
            if (!tokForRun.equals(tokFile)) deleteQuietly(tokForRun);
        }
        copyChatTemplate(chatDir, run);
        Checkpoints.saveWeights(run, 0, model);
        return new Imported(kind, Layers.parameterCount(model, false));
    }

    /**
     * Copies {@code from}'s tokenizer_config.json, which carries a chat model's template and special tokens, into
     * {@code to} when there is one.
     */
    static void copyChatTemplate(Path from, Path to) {
        Path config = from == null ? null : from.resolve(ChatTemplate.TOKENIZER_CONFIG);
        if (config == null || !Files.isRegularFile(config)) return;
        try {
            Files.copy(config, to.resolve(ChatTemplate.TOKENIZER_CONFIG), StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UserError("cannot copy " + config + " to " + to + ": " + e.getMessage());
        }
    }

    /** Loads {@code tensors} into {@code model}, refusing tensors it has no place for. */
    static void load(Module model, Map<String, Tensor> tensors, Path dir) {
        List<String> unused = StateDict.load(model, tensors, dir.toString());
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
}
