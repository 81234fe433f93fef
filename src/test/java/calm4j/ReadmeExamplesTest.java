package calm4j;

import calm4j.serve.ServedRuns;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The README's library section is all a user has: its Java examples compile and run as they are written, against a
 * trained run, and its dependency block and run command name what this build and the {@code calm} launcher use.
 */
class ReadmeExamplesTest {
    static final Path README = Path.of("README.md");

    @TempDir
    Path dir;

    /** The fenced blocks of {@code language} in the README's library section, in order. */
    static List<String> blocks(String language) throws Exception {
        String readme = Files.readString(README, StandardCharsets.UTF_8);
        int from = readme.indexOf("### calm4j as a library");
        int to = readme.indexOf("\n### ", from + 1);
        assertTrue(from >= 0 && to > from, "the README has its library section");
        Matcher m = Pattern.compile("```" + language + "\n(.*?)```", Pattern.DOTALL).matcher(readme.substring(from,
                to));
        List<String> out = new ArrayList<>();
        while (m.find()) out.add(m.group(1));
        return out;
    }

    @Test
    void theJavaExamplesCompileAndRunAsWritten() throws Exception {
        List<String> sources = blocks("java");
        assertEquals(2, sources.size(), "the TextModel and the langchain4j examples");
        Path src = Files.createDirectories(dir.resolve("src")), classes = Files.createDirectories(dir.resolve("out"));
        List<String> names = new ArrayList<>();
        for (String source : sources) {
            Matcher cls = Pattern.compile("public class (\\w+)").matcher(source);
            assertTrue(cls.find(), source);
            names.add(cls.group(1));
            Files.writeString(src.resolve(cls.group(1) + ".java"), source);
        }
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream diagnostics = new ByteArrayOutputStream();
        List<String> args = new ArrayList<>(List.of("-d", classes.toString(), "-cp",
                System.getProperty("java.class.path")));
        for (String n : names) args.add(src.resolve(n + ".java").toString());
        int status = javac.run(null, diagnostics, diagnostics, args.toArray(String[]::new));
        assertEquals(0, status, "the README's examples compile:\n" + diagnostics);

        ServedRuns runs = ServedRuns.train(dir.resolve("runs"));
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()},
                getClass().getClassLoader())) {
            for (String n : names) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                PrintStream before = System.out;
                System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
                try {
                    loader.loadClass(n).getMethod("main", String[].class).invoke(null,
                            (Object) new String[] {runs.calm.toString()});
                } finally {
                    System.setOut(before);
                }
                String printed = out.toString(StandardCharsets.UTF_8);
                System.out.println(n + " printed: " + printed);
                assertFalse(printed.isBlank(), n + " printed text");
            }
        }
    }

    @Test
    void theDependencyBlockAndRunCommandMatchThisBuildAndTheLauncher() throws Exception {
        String pom = Files.readString(Path.of("pom.xml"));
        String block = blocks("xml").get(0);
        for (String tag : new String[] {"groupId", "artifactId", "version"}) {
            Matcher own = Pattern.compile("<" + tag + ">([^<]+)</" + tag + ">").matcher(pom);
            assertTrue(own.find());
            assertTrue(block.contains("<" + tag + ">" + own.group(1) + "</" + tag + ">"), tag + " " + own.group(1)
                    + " in\n" + block);
        }
        Matcher lc4j = Pattern.compile("<artifactId>langchain4j-core</artifactId>\\s*<version>([^<]+)</version>")
                .matcher(pom);
        assertTrue(lc4j.find());
        assertTrue(block.contains("<version>" + lc4j.group(1) + "</version>"), "the langchain4j-core version built "
                + "against, " + lc4j.group(1));
        String launcher = Files.readString(Path.of("calm"));
        String run = String.join("\n", blocks("bash"));
        for (String flag : new String[] {"--enable-native-access=ALL-UNNAMED",
                "-Dorg.bytedeco.javacpp.maxPhysicalBytes=0"}) {
            assertTrue(launcher.contains(flag), "the launcher passes " + flag);
            assertTrue(run.contains(flag), "the README's run command passes " + flag + ":\n" + run);
        }
        for (String variable : new String[] {"OMP_WAIT_POLICY=passive", "GOMP_SPINCOUNT=0", "MALLOC_ARENA_MAX=1"}) {
            String name = variable.substring(0, variable.indexOf('=')), value = variable.substring(name.length() + 1);
            assertTrue(launcher.contains("export " + name + "=\"${" + name + ":-" + value + "}\""),
                    "the launcher sets " + variable);
            assertTrue(run.contains(variable), "the README's run command sets " + variable + ":\n" + run);
        }
        assertTrue(run.contains("install -DskipTests"), run);
    }
}
