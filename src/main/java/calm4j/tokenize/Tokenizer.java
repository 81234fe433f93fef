package calm4j.tokenize;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json}, loaded through the tokenizers library with truncation and padding off
 * (its default silently truncates to 512 tokens). Knows the special ids calm4j needs: EOS ends every document,
 * PAD fills a document to a multiple of K, MASK replaces tokens in the autoencoder's token dropout.
 */
public final class Tokenizer implements AutoCloseable {
    static final List<String> EOS_NAMES = List.of("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "[SEP]");
    static final List<String> BOS_NAMES = List.of("<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>");
    static final List<String> PAD_NAMES = List.of("<|pad|>", "<pad>", "[PAD]", "<|finetune_right_pad_id|>");
    static final List<String> MASK_NAMES = List.of("<|mask|>", "<mask>", "[MASK]");

    private final HuggingFaceTokenizer hf;
    private final Path path;
    private final String sha256;
    private final int vocabSize;
    private final int bosId;
    private final int eosId;
    private final int padId;
    private final int maskId;

    private Tokenizer(HuggingFaceTokenizer hf, Path path, String sha256, int vocabSize, int eos, int pad, int mask,
                      int bos) {
        this.hf = hf;
        this.bosId = bos;
        this.path = path;
        this.sha256 = sha256;
        this.vocabSize = vocabSize;
        this.eosId = eos;
        this.padId = pad;
        this.maskId = mask;
    }

    public static Tokenizer load(Path path) {
        if (!Files.isRegularFile(path)) {
            throw new UserError("tokenizer " + path + " does not exist (make one with 'calm tokenizer train')");
        }
        byte[] bytes;
        JsonNode root;
        try {
            bytes = Files.readAllBytes(path);
            root = new ObjectMapper().readTree(bytes);
        } catch (IOException e) {
            throw new UserError("tokenizer " + path + " is not readable JSON: " + e.getMessage());
        }
        JsonNode vocab = root.path("model").path("vocab");
        if (!vocab.isObject()) {
            throw new UserError("tokenizer " + path + " has no model.vocab: is it a Hugging Face tokenizer.json?");
        }
        int maxId = -1;
        for (var it = vocab.fields(); it.hasNext(); ) maxId = Math.max(maxId, it.next().getValue().asInt());
        int eos = -1, pad = -1, mask = -1, bos = -1;
        for (JsonNode t : root.path("added_tokens")) {
            int id = t.path("id").asInt();
            String content = t.path("content").asText();
            maxId = Math.max(maxId, id);
            if (eos < 0 && EOS_NAMES.contains(content)) eos = id;
            if (pad < 0 && PAD_NAMES.contains(content)) pad = id;
            if (mask < 0 && MASK_NAMES.contains(content)) mask = id;
            if (bos < 0 && BOS_NAMES.contains(content)) bos = id;
        }
        if (eos < 0) {
            throw new UserError("tokenizer " + path + " has no end-of-text token (one of " + EOS_NAMES + ")");
        }
        HuggingFaceTokenizer hf;
        try {
            hf = HuggingFaceTokenizer.newInstance(path, Map.of(
                    "truncation", "false", "padding", "false", "addSpecialTokens", "false",
                    "maxLength", "100000000"));
        } catch (IOException | RuntimeException e) {
            throw new UserError("tokenizer " + path + " could not be loaded by the tokenizers library: "
                    + e.getMessage());
        }
        return new Tokenizer(hf, path, sha256(bytes), maxId + 1, eos, pad, mask, bos);
    }

    /** Writes {@code src} with one more special token, {@code content} as id {@code id}, to {@code dest}. */
    public static void writeWithToken(Path src, String content, int id, Path dest) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root =
                (ObjectNode) json.readTree(src.toFile());
        ArrayNode added = root.has("added_tokens")
                ? (ArrayNode) root.get("added_tokens") : root.putArray("added_tokens");
        added.addObject().put("id", id).put("content", content).put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
        json.writeValue(dest.toFile(), root);
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Token ids of {@code text}, without special tokens added around it. */
    public int[] encode(String text) {
        Encoding enc = hf.encode(text, false, false);
        long[] ids = enc.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = (int) ids[i];
        return out;
    }

    /** The text of {@code ids}; special tokens are kept, so decode(encode(x)) == x for any x. */
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) l[i] = ids[i];
        return hf.decode(l, false);
    }

    public int vocabSize() {
        return vocabSize;
    }

    /**
     * Refuses a tokenizer whose vocabulary is not the model's: its ids would index other embeddings and the model
     * would produce garbage without any error.
     */
    public void requireVocabulary(int modelVocabulary, String model) {
        if (vocabSize != modelVocabulary) {
            throw new UserError(path + " has a vocabulary of " + vocabSize + " tokens, but " + model + " was trained "
                    + "on " + modelVocabulary + ": the tokenizer was replaced or belongs to another model; put back "
                    + "the tokenizer.json it was trained with");
        }
    }

    /** The beginning-of-text token (Llama-3's {@code <|begin_of_text|>}, ...), or -1 when there is none. */
    public int bosIdOrMinusOne() {
        return bosId;
    }

    public int eosId() {
        return eosId;
    }

    /** The PAD id; refuses with a clear message when this tokenizer has none. */
    public int padId() {
        if (padId < 0) throw new UserError("tokenizer " + path + " has no PAD token (one of " + PAD_NAMES
                + "); 'calm tokenizer train' makes tokenizers with EOS, PAD and MASK");
        return padId;
    }

    public int maskId() {
        if (maskId < 0) throw new UserError("tokenizer " + path + " has no MASK token (one of " + MASK_NAMES
                + "); 'calm tokenizer train' makes tokenizers with EOS, PAD and MASK");
        return maskId;
    }

    public int padIdOrMinusOne() {
        return padId;
    }

    public int maskIdOrMinusOne() {
        return maskId;
    }

    /** SHA-256 of the tokenizer.json bytes: a prepared corpus and a trained model record it, and both are checked. */
    /** Its size and special tokens, in one line. */
    public String describe() {
        return String.format("%d tokens (EOS=%d, PAD=%d, MASK=%d)", vocabSize(), eosId(), padId(), maskId());
    }

    public String sha256() {
        return sha256;
    }

    public Path path() {
        return path;
    }

    @Override
    public void close() {
        hf.close();
    }
}
