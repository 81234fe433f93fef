package calm4j.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/** Removing folders with everything in them, the two ways calm4j needs. */
public final class Folders {
    private Folders() {}

    /** Deletes {@code dir} and everything in it; a failure is an error (a checkpoint that must go). */
    public static void delete(Path dir) {
        if (!Files.exists(dir)) return;
        try (Stream<Path> walk = Files.walk(dir)) {
            List<Path> all = walk.sorted(Comparator.reverseOrder()).toList();
            for (Path p : all) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UserError("could not delete " + dir + ": " + e.getMessage());
        }
    }

    /** Deletes {@code dir} and everything in it as far as it can (scratch and work folders). */
    public static void deleteQuietly(Path dir) {
        if (!Files.exists(dir)) return;
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort: what is left is a scratch folder, clearly not a result
        }
    }
}
