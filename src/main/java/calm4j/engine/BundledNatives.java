package calm4j.engine;

import org.bytedeco.javacpp.Loader;

import java.io.File;
import java.io.IOException;

/**
 * Puts every native library of the bundled libtorch into JavaCPP's cache before the first one is loaded.
 *
 * <p>Why: JavaCPP extracts and loads the libraries one at a time. On a fresh cache, {@code libtorch.so} is loaded
 * before {@code libtorch_cpu.so} has been extracted next to it, so the dynamic linker resolves that dependency
 * through the system's search path; on a machine with Debian's {@code python3-torch} (libtorch 1.13 in
 * {@code /usr/lib}) that maps a second, older libtorch into the JVM, which then crashes in native code. With all
 * of them in place first, the linker finds the bundled ones beside each other, on the first run as on every other.
 */
public final class BundledNatives {
    private static volatile boolean done;

    private BundledNatives() {}

    /** Extracts the bundled libtorch natives (once per JVM; a no-op when they are cached already). */
    public static synchronized void extract() {
        if (done) return;
        String platform = Loader.getPlatform();
        for (String folder : new String[] {platform, platform + "-gpu"}) {
            try {
                File[] files = Loader.cacheResources("/org/bytedeco/pytorch/" + folder + "/");
                if (files != null && files.length > 0) break;
            } catch (IOException e) {
                throw new UserError("cannot extract libtorch's native libraries into JavaCPP's cache ("
                        + e.getMessage() + "): make room in ~/.javacpp/cache, or set -Dorg.bytedeco.javacpp.cachedir "
                        + "in CALM4J_JAVA_OPTS to a writable folder");
            }
        }
        done = true;
    }
}
