package calm4j.cli;

import calm4j.engine.UserError;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Named model configurations shipped with calm4j (src/main/resources/calm4j/presets/NAME.json, as nanoGPT's
 * config/ folder): the shapes of the authors' releases. A path to a JSON file is taken as it is.
 */
final class Presets {
    static final List<String> NAMES = List.of("calm-m", "calm-l", "calm-xl");

    private Presets() {}

    /** The preset's JSON as a file (extracted from the jar to a temporary file), or {@code name} itself if a file. */
    static Path path(String name) {
        if (Files.isRegularFile(Path.of(name))) return Path.of(name);
        try (InputStream in = Presets.class.getResourceAsStream("/calm4j/presets/" + name + ".json")) {
            if (in == null) throw new UserError("no preset '" + name + "': choose one of " + NAMES + " or a JSON file");
            Path tmp = Files.createTempFile("calm4j-preset-" + name, ".json");
            tmp.toFile().deleteOnExit();
            Files.write(tmp, in.readAllBytes());
            return tmp;
        } catch (IOException e) {
            throw new UserError("cannot read preset " + name + ": " + e.getMessage());
        }
    }
}
