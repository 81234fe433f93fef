package calm4j.bench;

import calm4j.serve.CompletionServer;
import calm4j.serve.ServedRuns;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** A bounded load test on loopback: 32 concurrent clients x 10 requests against a small CALM. */
class ServerLoadTest {
    @Test
    void thirtyTwoClientsGetAnswersOrDeliberate503sAndNothingElse(@TempDir Path dir) throws Exception {
        Path calm = ServedRuns.train(dir).calm;
        try (CompletionServer server = CompletionServer.start(calm, ServedRuns.options(16, 8, 60))) {
            LoadGenerator.Report r = LoadGenerator.run(server.url(), 32, 10, 16, 1.0);
            System.out.println("load test, 32 clients x 10 requests, batch 16, queue 8: " + r.format());
            assertEquals(320, r.requests());
            assertEquals(0, r.failed(), "only 200s and deliberate 503s: " + r.failures());
            assertEquals(320, r.ok() + r.busy());
            assertTrue(r.ok() >= 32, "most clients were served: " + r.format());
            assertTrue(r.p99Millis() >= r.p50Millis());
        }
    }
}
