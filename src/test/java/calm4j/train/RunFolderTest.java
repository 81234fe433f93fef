package calm4j.train;

import calm4j.engine.UserError;
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
        RunFolder.createOrResume(run, "calm", Map.of("model", model), TrainConfig.DEFAULTS, tokenizer);
        return run;
    }

    @Test
    void aRunResumesWithTheSameModelConfigAndRefusesAnotherNamingTheKey() throws Exception {
        Path run = create(Map.of("hidden_size", 256, "num_layers", 4));
        assertDoesNotThrow(() -> create(Map.of("hidden_size", 256, "num_layers", 4)));
        UserError e = assertThrows(UserError.class, () -> create(Map.of("hidden_size", 512, "num_layers", 4)));
        assertTrue(e.getMessage().contains("model.hidden_size is 256 there, 512 now"), e.getMessage());
        assertTrue(e.getMessage().contains(run.toString()), e.getMessage());
    }

    @Test
    void aRunWrittenBeforeAConfigKeyExistedResumesAndGainsTheKey() throws Exception {
        Path run = create(Map.of("hidden_size", 256));
        create(Map.of("hidden_size", 256, "eval_samples", 2));
        ObjectNode written = (ObjectNode) Configs.readTree(run.resolve(RunFolder.CONFIG));
        assertEquals(2, written.path("model").path("eval_samples").asInt());
    }
}
