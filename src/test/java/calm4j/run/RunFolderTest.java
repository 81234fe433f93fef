package calm4j.run;

import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.train.TrainConfig;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class RunFolderTest {
    @TempDir
    Path dir;

    Path create(Map<String, Object> model) throws Exception {
        Path tokenizer = Files.writeString(dir.resolve("tokenizer.json"), "{}");
        Path run = dir.resolve("run");
        RunFolder.createOrResume(run, "calm", Map.of("model", model), Presets.section("calm", "train", TrainConfig.class), tokenizer);
        return run;
    }

    /** Marks the run as having a complete checkpoint (what the checkpoint list looks for). */
    static void checkpointed(Path run, int step) throws Exception {
        Path ckpt = Files.createDirectories(run.resolve(String.format("checkpoints/step-%08d", step)));
        Files.writeString(ckpt.resolve("state.json"), "{}");
    }

    @Test
    void aRunResumesWithTheSameModelConfigAndRefusesAnotherNamingTheKey() throws Exception {
        Path run = create(Map.of("hidden_size", 256, "num_layers", 4));
        checkpointed(run, 1);
        assertDoesNotThrow(() -> create(Map.of("hidden_size", 256, "num_layers", 4)));
        UserError e = assertThrows(UserError.class, () -> create(Map.of("hidden_size", 512, "num_layers", 4)));
        assertTrue(e.getMessage().contains("model.hidden_size is 256 there, 512 now"), e.getMessage());
        assertTrue(e.getMessage().contains(run.toString()), e.getMessage());
    }

    @Test
    void aRunWrittenBeforeAConfigKeyExistedResumesAndGainsTheKey() throws Exception {
        Path run = create(Map.of("hidden_size", 256));
        checkpointed(run, 1);
        create(Map.of("hidden_size", 256, "eval_samples", 2));
        ObjectNode written = (ObjectNode) Configs.readTree(run.resolve(RunFolder.CONFIG));
        assertEquals(2, written.path("model").path("eval_samples").asInt());
    }

    @Test
    void aRunThatStoppedBeforeItsFirstCheckpointStartsAfreshWithWhatIsGivenNow() throws Exception {
        Path run = create(Map.of("hidden_size", 256));
        Files.writeString(run.resolve(MetricsLog.FILE), "{\"step\": 1}\n");
        Path changed = create(Map.of("hidden_size", 512)); // no checkpoint: nothing to resume, nothing refused
        assertEquals(512, Configs.readTree(changed.resolve(RunFolder.CONFIG)).path("model").path("hidden_size")
                .asInt());
        assertFalse(Files.exists(run.resolve(MetricsLog.FILE)), "the new attempt starts a new log");
        try (var s = Files.list(run)) {
            Path aside = s.filter(p -> p.getFileName().toString().startsWith(MetricsLog.FILE + ".before-"))
                    .findFirst().orElseThrow(() -> new AssertionError("the failed attempt's log was deleted"));
            assertEquals("{\"step\": 1}\n", Files.readString(aside), "kept as it was");
        }
    }

    @Test
    void aRunWhoseOnlyCheckpointLostItsStateIsRefusedAndNothingIsDeleted() throws Exception {
        Path run = create(Map.of("hidden_size", 256));
        Files.writeString(run.resolve(MetricsLog.FILE), "{\"step\": 10}\n{\"step\": 20}\n");
        Path damaged = Files.createDirectories(run.resolve("checkpoints/step-00000020"));
        Files.writeString(damaged.resolve("model.pt"), "weights");
        UserError e = assertThrows(UserError.class, () -> create(Map.of("hidden_size", 256)));
        assertTrue(e.getMessage().contains("step-00000020") && e.getMessage().contains("lacks its state.json")
                && e.getMessage().contains("nothing was changed"), e.getMessage());
        assertEquals("{\"step\": 10}\n{\"step\": 20}\n", Files.readString(run.resolve(MetricsLog.FILE)));
        assertTrue(Files.exists(damaged.resolve("model.pt")));
    }

    @Test
    void resumingOnACorpusOfAnotherTokenizerIsRefused() throws Exception {
        Path run = create(Map.of("hidden_size", 256));
        checkpointed(run, 1);
        Path other = Files.writeString(dir.resolve("other-tokenizer.json"), "{\"other\": true}");
        UserError e = assertThrows(UserError.class, () -> RunFolder.createOrResume(run, "calm",
                Map.of("model", Map.of("hidden_size", 256)), Presets.section("calm", "train", TrainConfig.class), other));
        assertTrue(e.getMessage().contains("another tokenizer"), e.getMessage());
    }

    @Test
    void aSecondWriterOfARunIsRefusedAndALockLeftByADeadProcessIsNot() throws Exception {
        Path run = dir.resolve("locked");
        try (RunLock first = RunLock.acquire(run)) {
            UserError e = assertThrows(UserError.class, () -> RunLock.acquire(run));
            assertTrue(e.getMessage().contains("being written by another process (pid "
                    + ProcessHandle.current().pid() + ")"), e.getMessage());
            UserError setup = assertThrows(UserError.class, () -> RunFolder.createOrResume(run, "calm",
                    Map.of("model", Map.of()), Presets.section("calm", "train", TrainConfig.class), Files.writeString(dir.resolve("t.json"), "{}")));
            assertTrue(setup.getMessage().contains("being written by another process"), setup.getMessage());
        }
        // A killed trainer leaves the file but not the operating-system lock.
        Files.writeString(run.resolve(RunLock.FILE), "999999999");
        assertDoesNotThrow(() -> RunLock.acquire(run).close());
    }

    @Test
    void pruningRemovesIncompleteFoldersOfEarlierStepsThatAKillLeftBehind() throws Exception {
        Path run = dir.resolve("pruned");
        checkpointed(run, 80);
        checkpointed(run, 90);
        Files.createDirectories(run.resolve("checkpoints/step-00000085")); // state.json deleted, then killed
        Files.createDirectories(run.resolve("checkpoints/.tmp-step-00000070")); // killed while writing
        Files.createDirectories(run.resolve("checkpoints/.tmp-step-00000105")); // being written now: left alone
        checkpointed(run, 100);
        new Checkpoints(run, 2).prune();
        try (var s = Files.list(run.resolve("checkpoints"))) {
            assertEquals(java.util.List.of(".tmp-step-00000105", "step-00000090", "step-00000100"),
                    s.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }
}
