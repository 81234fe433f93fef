package calm4j.engine;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Config records from JSON. Keys are snake_case (as in Hugging Face configs); a key the file leaves out takes the
 * default, an unknown key is an error (a typo must not silently train the wrong model).
 */
public final class Configs {
    public static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT); // "batch_size": 2.7 is an error, not 2

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

    /** Refuses a top-level key of a config file that is not one of {@code sections} (a typo must not be ignored). */
    public static void requireSections(JsonNode root, Collection<String> sections, String where) {
        for (var it = root.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (!sections.contains(name)) {
                throw new UserError(where + ": unknown section \"" + name + "\"; a config has the sections "
                        + sections);
            }
        }
    }

    /**
     * Refuses a config that changes any of {@code keys} from {@code from} (a fine-tuned model keeps its source's
     * architecture): the message names the key, both values and both places.
     */
    public static void requireUnchanged(Object from, Object now, Collection<String> keys, String source,
                                        String where) {
        JsonNode was = JSON.valueToTree(from), is = JSON.valueToTree(now);
        for (String key : keys) {
            if (!was.get(key).equals(is.get(key))) {
                throw new UserError("fine-tuning keeps the source's architecture: model." + key + " is " + was.get(key)
                        + " in " + source + ", " + is.get(key) + " in " + where);
            }
        }
    }

    /** Refuses {@code keys} in {@code section} of a config file: calm4j sets them, {@code because}. */
    public static void forbidKeys(JsonNode root, String section, Collection<String> keys, String because,
                                  String where) {
        JsonNode node = root.get(section);
        if (node == null || !node.isObject()) return;
        for (String key : keys) {
            if (node.has(key)) {
                throw new UserError(where + ": \"" + section + "." + key + "\" cannot be set: " + because
                        + "; leave it out");
            }
        }
    }

    /** The record in {@code section} of {@code root} (or all of it if section is null), over {@code defaults}. */
    public static <T> T section(JsonNode root, String section, T defaults, Class<T> type, String where) {
        JsonNode node = section == null ? root : root.get(section);
        ObjectNode merged = JSON.valueToTree(defaults);
        List<String> known = merged.properties().stream().map(Map.Entry::getKey).toList();
        if (node != null && !node.isNull()) {
            if (!node.isObject()) throw new UserError(where + ": \"" + section + "\" must be a JSON object");
            for (var it = node.fields(); it.hasNext(); ) {
                var e = it.next();
                if (e.getValue().isNumber() && !Double.isFinite(e.getValue().asDouble())) {
                    throw new UserError(where + ": \"" + e.getKey() + "\"" + (section == null ? "" : " in \""
                            + section + "\"") + " is " + e.getValue().asText() + ", which is not a finite number");
                }
                // checked here, not by Jackson, which lets unknown keys through a record with an unwrapped part
                if (!merged.has(e.getKey())) throw unknownKey(where, e.getKey(), section, known);
                merged.set(e.getKey(), e.getValue());
            }
        }
        try {
            return JSON.treeToValue(merged, type);
        } catch (UnrecognizedPropertyException e) {
            throw unknownKey(where, e.getPropertyName(), section, known);
        } catch (IOException e) {
            Throwable c = e.getCause();
            String msg = c instanceof UserError ? c.getMessage()
                    : e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
            String key = e instanceof JsonMappingException m && !m.getPath().isEmpty()
                    ? m.getPath().get(m.getPath().size() - 1).getFieldName() : null;
            if (key != null && msg != null && msg.startsWith("Cannot coerce Floating-point value")) {
                msg = "must be a whole number, got " + merged.get(key);
            }
            throw new UserError(where + ": " + (key != null && c == null ? "\"" + key + "\"" + (section == null ? ""
                    : " in \"" + section + "\"") + ": " : "") + msg);
        }
    }

    private static UserError unknownKey(String where, String key, String section, List<String> known) {
        return new UserError(where + ": unknown key \"" + key + "\"" + (section == null ? "" : " in \"" + section
                + "\"") + "; known keys: " + known);
    }

    /**
     * {@code base} with the named keys changed, checked as a config file's section is (unknown keys and invalid
     * values are refused): {@code Configs.with(train, "max_steps", 300, "lr", 3e-3)}.
     */
    @SuppressWarnings("unchecked")
    public static <T> T with(T base, Object... keysAndValues) {
        if (keysAndValues.length % 2 != 0) throw new IllegalArgumentException("keys and values come in pairs");
        ObjectNode changes = JSON.createObjectNode();
        for (int i = 0; i < keysAndValues.length; i += 2) {
            changes.set((String) keysAndValues[i], JSON.valueToTree(keysAndValues[i + 1]));
        }
        return section(changes, null, base, (Class<T>) base.getClass(), base.getClass().getSimpleName());
    }

    /** Writes {@code value} as JSON, atomically. */
    public static void write(Path file, Object value) {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            JSON.writeValue(tmp.toFile(), value);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE,
                    StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp); // nothing half-written is left behind (a full disk, say)
            } catch (IOException ignored) {
                // the message below says what failed
            }
            throw new UserError("could not write " + file + ": " + e.getMessage());
        }
    }
}
