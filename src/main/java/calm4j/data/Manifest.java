package calm4j.data;

import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What a prepared corpus holds: {@code manifest.json} beside the token shards. The tokenizer hash lets every later
 * command refuse a tokenizer or model that does not match the data.
 *
 * @param dtype "uint16" when every id fits, else "int32"; shards are raw little-endian arrays of that type
 */
public record Manifest(int format, String tokenizerSha256, int vocabSize, int eosId, int padId, int maskId,
                       String dtype, Split train, Split val) {

    public static final int FORMAT = 1;
    public static final String FILE = "manifest.json";
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** One split: its folder name, the documents and tokens it holds, and its shards in order. */
    public record Split(String name, long documents, long tokens, List<Shard> shards) {}

    public record Shard(String file, long tokens) {}

    public int bytesPerToken() {
        return dtype.equals("uint16") ? 2 : 4;
    }

    public Split split(String name) {
        return switch (name) {
            case "train" -> train;
            case "val" -> val;
            default -> throw new UserError("unknown split '" + name + "': use train or val");
        };
    }

    public void write(Path dir) throws IOException {
        JSON.writeValue(dir.resolve(FILE).toFile(), this);
    }

    public static Manifest read(Path dir) {
        Path file = dir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            throw new UserError(dir + " is not a prepared corpus (no " + FILE + "): run 'calm data prepare' first");
        }
        try {
            Manifest m = JSON.readValue(file.toFile(), Manifest.class);
            if (m.format() != FORMAT) {
                throw new UserError(file + " has format " + m.format() + "; this calm4j reads format " + FORMAT);
            }
            return m;
        } catch (IOException e) {
            throw new UserError(file + " is not a valid corpus manifest: " + e.getMessage());
        }
    }

    /** Refuses a tokenizer that is not the one this corpus was prepared with. */
    public void requireTokenizer(String sha256, String what) {
        if (!tokenizerSha256.equals(sha256)) {
            throw new UserError(what + " uses a different tokenizer than the prepared corpus (tokenizer sha256 "
                    + sha256.substring(0, 12) + "... vs the corpus's " + tokenizerSha256.substring(0, 12)
                    + "...): prepare the corpus with the same tokenizer.json");
        }
    }
}
