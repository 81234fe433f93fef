package calm4j;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packages of calm4j depend one way: each may use only packages of a lower layer, so no cycle can form. The
 * layers follow the pipeline (docs/architecture.md): engine, then the building blocks, then run folders and the
 * training loop, the models, generation, the application entries, what is built on them, and the command line.
 */
class PackageLayersTest {
    /** Layer of every package; a package may depend only on packages with a smaller number. */
    static final Map<String, Integer> LAYERS = Map.ofEntries(
            Map.entry("engine", 0),
            Map.entry("nn", 1), Map.entry("tokenize", 1), Map.entry("eval", 1), Map.entry("chat", 1),
            Map.entry("fetch", 1),
            Map.entry("data", 2), Map.entry("io", 2),
            Map.entry("loader", 3),
            Map.entry("run", 4),
            Map.entry("train", 5),
            Map.entry("ae", 6), Map.entry("ar", 6),
            Map.entry("calm", 7),
            Map.entry("generate", 8),
            Map.entry("app", 9),
            Map.entry("release", 10), Map.entry("report", 10), Map.entry("serve", 10), Map.entry("api", 10),
            Map.entry("bench", 11), Map.entry("langchain4j", 11), Map.entry("demo", 11),
            Map.entry("cli", 12));

    private static final Path MAIN = Path.of("src/main/java/calm4j");
    /** An import or a qualified name of a calm4j class: {@code calm4j.<package>.<Class>}. */
    private static final Pattern REFERENCE = Pattern.compile("\\bcalm4j\\.([a-z]+)\\.[A-Z]");

    /** package -> the packages its sources refer to, with one file that does for each. */
    private static Map<String, Map<String, String>> dependencies() throws IOException {
        Map<String, Map<String, String>> deps = new TreeMap<>();
        try (Stream<Path> files = Files.walk(MAIN)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                String pkg = MAIN.relativize(f.getParent()).toString().replace('/', '.');
                Map<String, String> uses = deps.computeIfAbsent(pkg, p -> new TreeMap<>());
                Matcher m = REFERENCE.matcher(Files.readString(f));
                while (m.find()) {
                    if (!m.group(1).equals(pkg)) uses.putIfAbsent(m.group(1), f.getFileName().toString());
                }
            }
        }
        return deps;
    }

    @Test
    void everyPackageHasALayer() throws IOException {
        TreeSet<String> unlisted = new TreeSet<>(dependencies().keySet());
        unlisted.removeAll(LAYERS.keySet());
        assertEquals(new TreeSet<>(), unlisted, "new packages need a layer in PackageLayersTest.LAYERS "
                + "(and a line in docs/architecture.md)");
    }

    @Test
    void packagesDependOnlyOnLowerLayers() throws IOException {
        List<String> upward = new ArrayList<>();
        dependencies().forEach((pkg, uses) -> uses.forEach((used, file) -> {
            int from = LAYERS.getOrDefault(pkg, Integer.MAX_VALUE), to = LAYERS.getOrDefault(used, -1);
            if (to >= from) {
                upward.add(pkg + " (layer " + from + ") -> " + used + " (layer " + to + ") in " + pkg + "/" + file);
            }
        }));
        assertTrue(upward.isEmpty(), "dependencies against the layering:\n" + String.join("\n", upward));
    }

    @Test
    void theScanSeesDependencies() throws IOException {
        // guards the test itself: the command line uses the models, so an empty scan cannot pass as "no cycles"
        assertTrue(dependencies().get("cli").containsKey("calm"), "the import scan found nothing");
    }
}
