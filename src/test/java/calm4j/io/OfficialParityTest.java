package calm4j.io;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.engine.Engine;
import calm4j.train.Configs;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The authors' released layout, loaded and run: outputs match what their own code computed for the same inputs
 * ({@code shared/fixtures/official-tiny}, see its expected.json), to 1e-4.
 */
class OfficialParityTest {
    static final Path FIXTURE = Path.of("..", "shared", "fixtures", "official-tiny");
    static Map<String, Tensor> expected;

    @BeforeAll
    static void read() {
        Engine.cpu();
        expected = SafeTensors.read(FIXTURE.resolve("expected.safetensors"));
    }

    static double maxAbsDiff(Tensor a, Tensor b) {
        assertArrayEquals(b.sizes().vec().get(), a.sizes().vec().get(), "shape");
        return a.sub(b).abs().max().item_double();
    }

    @Test
    void theOfficialAutoencoderEncodesAndDecodesAsTheirCodeDoes() {
        Path dir = FIXTURE.resolve("autoencoder");
        AutoencoderConfig cfg = HuggingFaceLayout.autoencoderConfig(Configs.readTree(dir.resolve("config.json")),
                dir.resolve("config.json"));
        ChunkAutoencoder ae = new ChunkAutoencoder(cfg);
        List<String> unused = StateDict.load(ae, StateDict.readFile(dir.resolve("pytorch_model.bin")),
                dir.toString());
        assertEquals(List.of(), unused, "every tensor of the release is used");
        ae.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor ids = expected.get("input_ids"); // [2, 32]
            int k = cfg.patchSize();
            ChunkAutoencoder.Posterior q = ae.encode(ids.reshape(-1, k)); // [16, l]
            long rows = ids.size(0), chunks = ids.size(1) / k;
            Tensor mu = q.mu().reshape(rows, chunks, -1), logSigma = q.logSigma().reshape(rows, chunks, -1);
            assertTrue(maxAbsDiff(mu, expected.get("ae_mean")) < 1e-4, "mean");
            assertTrue(maxAbsDiff(logSigma, expected.get("ae_log_std")) < 1e-4, "log std");
            Tensor logits = ae.decode(q.mu()).reshape(rows, chunks * k, -1);
            double d = maxAbsDiff(logits, expected.get("ae_logits_of_mean"));
            assertTrue(d < 1e-4, "decoder logits differ by " + d);
        }
    }
}
