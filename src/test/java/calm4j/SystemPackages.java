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

    /** Skips the calling test (or fails it in CI) unless {@code present}; {@code what} names the packages. */
    public static void require(boolean present, String what) {
        if (present) return;
        String reason = "needs " + what + ", which this machine lacks (.ci/run installs it)";
        if ("true".equalsIgnoreCase(System.getenv("CI"))) fail("in CI every test runs, but this one " + reason);
        System.err.println("skipped: this test " + reason);
        Assumptions.abort(reason);
    }
}
