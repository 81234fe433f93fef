package calm4j;

import org.junit.jupiter.api.Assumptions;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Tests that need a system package calm4j itself does not (a browser, Node.js). On a developer's machine without it
 * such a test is skipped, saying what to install; in CI ({@code CI=true}, which .ci/run sets after installing the
 * packages) it must run, so a missing package fails the build instead of hiding a skipped test.
 */
public final class SystemPackages {
    private SystemPackages() {}

    /** What the plots need (the tests that check them draw only where a font is installed). */
    public static final String FONTS = "a font (apt-get install fontconfig fonts-dejavu-core)";

    /**
     * Whether the part of a test that needs {@code what} can run here: true when {@code present}; otherwise that
     * part is skipped with a printed line (or the test fails in CI) and the caller asserts what happens instead.
     */
    public static boolean present(boolean present, String what) {
        if (present) return true;
        String reason = "needs " + what + ", which this machine lacks (.ci/run installs it)";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail("in CI every test runs, but part of this one " + reason);
        System.err.println("skipped part: this test " + reason);
        return false;
    }

    /** Skips the calling test (or fails it in CI) unless {@code present}; {@code what} names the packages. */
    public static void require(boolean present, String what) {
        if (present) return;
        String reason = "needs " + what + ", which this machine lacks (.ci/run installs it)";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail("in CI every test runs, but this one " + reason);
        System.err.println("skipped: this test " + reason);
        Assumptions.abort(reason);
    }
}
