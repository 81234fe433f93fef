package calm4j.engine;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Named configurations shipped with calm4j, as nanoGPT's config/ folder: JSON files in
 * src/main/resources/calm4j/presets/ with named keys. They are the one place where each default lives:
 * <ul>
 *   <li>{@code autoencoder}, {@code calm}, {@code token-lm}: the default models and how each is trained;</li>
 *   <li>{@code bench}: the benchmark configuration of the authors' reference measurements;</li>
 *   <li>{@code calm-m}, {@code calm-l}, {@code calm-xl}: the shapes of the authors' releases.</li>
 * </ul>
 */
public final class Presets {
    public static final List<String> NAMES = List.of("autoencoder", "calm", "token-lm", "bench", "calm-m", "calm-l",
            "calm-xl");

    private Presets() {}

    /** A preset's name, or a path to a JSON file of the same layout (a name never means a file). */
    public static JsonNode readNameOrFile(String nameOrFile) {
        if (nameOrFile.endsWith(".json") && Files.isRegularFile(Path.of(nameOrFile))) {
            return Configs.readTree(Path.of(nameOrFile));
        }
        return read(nameOrFile);
    }

    /** The preset {@code name} shipped with calm4j. */
    public static JsonNode read(String name) {
        try (InputStream in = Presets.class.getResourceAsStream("/calm4j/presets/" + name + ".json")) {
            if (in == null) throw new UserError("no preset '" + name + "': choose one of " + NAMES + " or a .json file");
            return Configs.JSON.readTree(in);
        } catch (IOException e) {
            throw new UserError("cannot read preset " + name + ": " + e.getMessage());
        }
    }

    /** Section {@code section} of preset {@code name} as a record; every key must be given (it is a default). */
    public static <T> T section(String name, String section, Class<T> type) {
        try {
            return Configs.JSON.readerFor(type).with(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
                    .readValue(read(name).get(section));
        } catch (IOException e) {
            // a preset ships inside calm4j: an incomplete one is a bug in calm4j, not the user's input
            throw new IllegalStateException("preset " + name + ", section " + section + ": " + e.getMessage(), e);
        }
    }
}
