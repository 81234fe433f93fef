package calm4j.run;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.engine.Engine;
import calm4j.loader.LoaderState;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** A reader of a run (generate, eval, serve) while its training writes and prunes checkpoints. */
class ConcurrentReaderTest {
    @Test
    void aReaderTakesTheNewestCompleteCheckpointEvenWhileTrainingPrunesTheOneItListed(@TempDir Path dir)
            throws Exception {
        Engine.cpu();
        AutoencoderConfig cfg = AutoencoderConfig.DEFAULTS.with("hidden_size", 32, "intermediate_size", 64,
                "latent_size", 8).withVocabulary(64, 1, 2, 0);
        ChunkAutoencoder trained = new ChunkAutoencoder(cfg);
        AdamW opt = new AdamW(trained.parameters(), new AdamWOptions(1e-3));
        Checkpoints writer = new Checkpoints(dir, 1); // keeps one: every save prunes the one before
        writer.save(new Checkpoints.State(1, LoaderState.START, 0, 0, Map.of()), trained, opt);
        AtomicReference<Throwable> failed = new AtomicReference<>();
        Thread training = new Thread(() -> {
            try {
                for (int step = 2; step <= 80; step++) { // a checkpoint every 50 ms: far more often than training
                    writer.save(new Checkpoints.State(step, LoaderState.START, 0, 0, Map.of()), trained, opt);
                    Thread.sleep(50);
                }
            } catch (Throwable t) {
                failed.set(t);
            }
        });
        training.start();
        int reads = 0;
        while (training.isAlive()) {
            assertTrue(Checkpoints.loadLatest(dir, new ChunkAutoencoder(cfg)).step() >= 1);
            reads++;
        }
        training.join();
        assertNull(failed.get());
        assertTrue(reads > 10, "the reader ran alongside: " + reads + " reads");
    }
}
