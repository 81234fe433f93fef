package calm4j.cli;

import calm4j.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static calm4j.cli.CalmCliTest.calm;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Training onto a disk that fills up: a clear error and exit 2, the last good checkpoint untouched, nothing
 * half-written left. The disk is a small tmpfs, so the test needs root (as CI and these machines run).
 */
class FullDiskTest {
    static boolean run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    }

    /** Writes to {@code file} until the disk is full. */
    static void fill(Path file) {
        try (var out = Files.newOutputStream(file)) {
            byte[] block = new byte[1 << 16];
            while (true) out.write(block);
        } catch (java.io.IOException full) {
            // No space left on device: as intended
        }
    }

    static final String CONFIG = "{\"model\": {\"hidden_size\": 64, \"intermediate_size\": 128, \"latent_size\": 16}, "
            + "\"train\": {\"max_steps\": 30, \"batch_size\": 16, \"checkpoint_every\": 10, \"eval_every\": 10, "
            + "\"eval_batches\": 1, \"keep_checkpoints\": 2}}";

    @Test
    void aFullDiskStopsTrainingWithAClearErrorAndKeepsTheLastCheckpoint(@TempDir Path dir) throws Exception {
        Path corpus = Fixtures.corpus(dir, 8, 2, 4);
        Path config = Files.writeString(dir.resolve("ae.json"), CONFIG);
        // The size of one checkpoint, from a run on the ordinary disk.
        assertEquals(0, calm("ae", "train", "--data", corpus.toString(), "--config", config.toString(), "--out",
                dir.resolve("sizing").toString(), "--max-steps", "10", "--quiet").status());
        long checkpoint;
        try (Stream<Path> files = Files.walk(dir.resolve("sizing/checkpoints/step-00000010"))) {
            checkpoint = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }

        Path disk = Files.createDirectories(dir.resolve("disk"));
        long bytes = checkpoint * 3 / 2 + 256 * 1024; // room for the first checkpoint, not for a second beside it
        assumeTrue(run("mount", "-t", "tmpfs", "-o", "size=" + bytes, "tmpfs", disk.toString()),
                "mounting a tmpfs needs root");
        try {
            Path out = disk.resolve("ae");
            CalmCliTest.Run r = calm("ae", "train", "--data", corpus.toString(), "--config", config.toString(),
                    "--out", out.toString(), "--quiet");
            assertEquals(2, r.status(), r.err());
            assertTrue(r.err().startsWith("calm ae train: error: could not write checkpoint")
                    && r.err().contains("No space left on device"), r.err());
            assertTrue(r.err().contains("the previous checkpoint is untouched"), r.err());
            try (Stream<Path> s = Files.list(out.resolve("checkpoints"))) {
                assertEquals(List.of("step-00000010"), s.map(p -> p.getFileName().toString()).sorted().toList(),
                        "the good checkpoint, and no temporary folder");
            }
            assertDoesNotThrow(() -> calm4j.run.Checkpoints.verify(out.resolve("checkpoints/step-00000010")));

            // Setting up a run on a disk with no room at all leaves no half-written config behind.
            fill(disk.resolve("filler"));
            Path fresh = disk.resolve("fresh");
            CalmCliTest.Run setup = calm("ae", "train", "--data", corpus.toString(), "--config", config.toString(),
                    "--out", fresh.toString(), "--quiet");
            assertEquals(2, setup.status(), setup.err());
            assertFalse(Files.exists(fresh.resolve("config.json.tmp")), "no half-written config");
        } finally {
            run("umount", disk.toString());
        }
    }
}
