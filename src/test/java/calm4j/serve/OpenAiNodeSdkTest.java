package calm4j.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The official OpenAI Node SDK (openai 6, as apps use it) against {@code calm serve}: src/test/node/openai-sdk.mjs
 * covers chat, streamed chat with usage, stop, n, seed, prompt lists, token-id prompts, models.retrieve and a refused
 * field. Runs where {@code node} is installed (.ci/run installs it from Debian); the SDK comes from the npm registry
 * into target/node-sdk the first time.
 */
class OpenAiNodeSdkTest {
    static final Path SDK = Path.of("target", "node-sdk");

    @TempDir
    Path dir;

    @Test
    void theOfficialNodeSdkChatsStreamsStopsAndListsModelsAgainstCalmServe() throws Exception {
        calm4j.SystemPackages.require(onPath("node") && onPath("npm"), "Node.js and npm (apt-get install nodejs npm)");
        if (!Files.isRegularFile(SDK.resolve("node_modules/openai/package.json"))) {
            Files.createDirectories(SDK);
            Result npm = run(List.of("npm", "install", "--prefix", SDK.toAbsolutePath().toString(), "--no-audit", "--no-fund",
                    "openai@6"), SDK.getParent(), 300);
            assertEquals(0, npm.status, "installing the OpenAI Node SDK from the npm registry failed:\n" + npm.output);
        }
        Path script = SDK.resolve("openai-sdk.mjs"); // beside node_modules, where an ES module finds its imports
        Files.copy(Path.of("src", "test", "node", "openai-sdk.mjs"), script, StandardCopyOption.REPLACE_EXISTING);
        ServedRuns runs = ServedRuns.train(dir);
        try (CompletionServer server = CompletionServer.start(runs.calm, ServedRuns.options(8, 16, 60))) {
            Result r = run(List.of("node", script.getFileName().toString(), server.url() + "/v1", server.modelId()),
                    SDK, 180);
            System.out.println(r.output);
            assertEquals(0, r.status, "the Node SDK script failed:\n" + r.output);
            assertTrue(r.output.contains("\"models_retrieve\""), r.output);
        }
    }

    record Result(int status, String output) {}

    static Result run(List<String> command, Path cwd, long timeoutSeconds) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).directory(cwd.toFile()).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(String.join(" ", command) + " did not finish in " + timeoutSeconds + " s");
        }
        return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    static boolean onPath(String program) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, program))) return true;
        }
        return false;
    }
}
