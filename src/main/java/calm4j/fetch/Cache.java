package calm4j.fetch;

import java.nio.file.Path;

/** Where calm4j keeps what it downloads: one root for corpora and models alike. */
public final class Cache {
    private Cache() {}

    /** {@code $CALM4J_CACHE}, else {@code ~/.cache/calm4j}. */
    public static Path root() {
        String env = System.getenv("CALM4J_CACHE");
        return env != null && !env.isBlank() ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache",
                "calm4j");
    }

    /** Where Hugging Face Hub repositories go. */
    public static Path hub() {
        return root().resolve("hub");
    }
}
