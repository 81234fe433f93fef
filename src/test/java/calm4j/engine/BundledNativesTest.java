package calm4j.engine;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The first run on a machine with an empty JavaCPP cache loads only the bundled libtorch, even when the system has
 * another one in its library path (Debian's python3-torch puts libtorch 1.13 in /usr/lib; CI installs it so that this
 * test meets it).
 */
class BundledNativesTest {
    @Test
    void aFreshCacheLoadsOnlyTheBundledLibtorch(@TempDir Path dir) throws Exception {
        Path cache = dir.resolve("javacpp-cache");
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process p = new ProcessBuilder(java.toString(), "-Xmx1g", "-Dorg.bytedeco.javacpp.cachedir=" + cache,
                "-cp", System.getProperty("java.class.path"), NativesProbe.class.getName())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the probe finished");
        assertEquals(0, p.exitValue(), "the JVM did not crash:\n" + out);
        assertTrue(out.contains("sum 3.0"), out);
        List<String> mapped = out.lines().filter(l -> l.startsWith("mapped ")).map(l -> l.substring(7)).toList();
        assertFalse(mapped.isEmpty(), out);
        for (String m : mapped) assertTrue(m.startsWith(cache.toString()), "a libtorch from outside the cache: " + m);
        if (Files.exists(Path.of("/usr/lib/x86_64-linux-gnu/libtorch_cpu.so"))) {
            System.out.println("a system libtorch_cpu.so is installed here, and was not loaded");
        }
    }
}
