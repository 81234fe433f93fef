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
            // Bounded retries: an offline machine answers within a minute instead of npm's default minutes.
            Result npm = run(List.of("npm", "install", "--prefix", SDK.toAbsolutePath().toString(), "--no-audit",
                    "--no-fund", "--fetch-retries=1", "--fetch-timeout=30000", "openai@6"), SDK.getParent(), 300);
            // npm is here but the registry is not (an offline machine): skipped with the reason, failed in CI.
            calm4j.SystemPackages.require(npm.status == 0, "the OpenAI Node SDK from the npm registry (npm install "
                    + "openai@6 failed here with exit " + npm.status + ": " + lastLine(npm.output) + ")");
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

    /** Runs {@code command}, its output to a file so that a process that hangs is stopped at the timeout. */
    static Result run(List<String> command, Path cwd, long timeoutSeconds) throws IOException, InterruptedException {
        Path log = Files.createTempFile("calm4j-node", ".log");
        try {
            Process p = new ProcessBuilder(command).directory(cwd.toFile()).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail(String.join(" ", command) + " did not finish in " + timeoutSeconds + " s:\n"
                        + Files.readString(log, StandardCharsets.UTF_8));
            }
            return new Result(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(log);
        }
    }

    static String lastLine(String output) {
        String[] lines = output.strip().split("\n");
        return lines.length == 0 ? "" : lines[lines.length - 1];
    }

    static boolean onPath(String program) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, program))) return true;
        }
        return false;
    }
}
