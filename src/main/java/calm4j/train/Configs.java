package calm4j.train;

import calm4j.engine.UserError;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Config records from JSON. Keys are snake_case (as in Hugging Face configs); a key the file leaves out takes the
 * default, an unknown key is an error (a typo must not silently train the wrong model).
 */
public final class Configs {
    public static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);

    private Configs() {}

    /** Reads the whole file as JSON; a missing or malformed file is a {@link UserError}. */
    public static JsonNode readTree(Path file) {
        if (!Files.isRegularFile(file)) throw new UserError("config " + file + " does not exist");
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) throw new UserError("config " + file + " is not a JSON object");
            return node;
        } catch (IOException e) {
            throw new UserError("config " + file + " is not valid JSON: " + e.getMessage().split("\n")[0]);
        }
    }

    /** The record in {@code section} of {@code root} (or all of it if section is null), over {@code defaults}. */
    public static <T> T section(JsonNode root, String section, T defaults, Class<T> type, String where) {
        JsonNode node = section == null ? root : root.get(section);
        ObjectNode merged = JSON.valueToTree(defaults);
        if (node != null && !node.isNull()) {
            if (!node.isObject()) throw new UserError(where + ": \"" + section + "\" must be a JSON object");
            node.fields().forEachRemaining(e -> merged.set(e.getKey(), e.getValue()));
        }
        try {
            return JSON.treeToValue(merged, type);
        } catch (UnrecognizedPropertyException e) {
            throw new UserError(where + ": unknown key \"" + e.getPropertyName() + "\""
                    + (section == null ? "" : " in \"" + section + "\"") + "; known keys: " + merged.properties()
                    .stream().map(java.util.Map.Entry::getKey).toList());
        } catch (IOException e) {
            Throwable c = e.getCause();
            String msg = c instanceof UserError ? c.getMessage()
                    : e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
            throw new UserError(where + ": " + msg);
        }
    }

    /** Writes {@code value} as JSON, atomically. */
    public static void write(Path file, Object value) {
        try {
            Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            JSON.writeValue(tmp.toFile(), value);
            Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UserError("could not write " + file + ": " + e.getMessage());
        }
    }
}
