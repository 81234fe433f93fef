package calm4j.run;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.engine.Configs;
import calm4j.engine.Engine;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** A checkpoint whose checksums were forged to match is still checked tensor by tensor before libtorch reads it. */
class ForgedCheckpointTest {
    @Test
    void aModelArchiveWithARecordCutShortIsRefusedEvenWithMatchingChecksums(@TempDir Path dir) throws Exception {
        Engine.cpu();
        AutoencoderConfig cfg = AutoencoderConfig.DEFAULTS.withVocabulary(64, 1, 2, 0);
        Path ckpt = Checkpoints.saveWeights(dir.resolve("run"), 3, new ChunkAutoencoder(cfg));
        Path model = ckpt.resolve("model.pt");
        Path cutCopy = dir.resolve("cut.pt");
        String cut = calm4j.io.CutRecords.cutFirst(model, cutCopy, 64, 16);
        Files.move(cutCopy, model, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        ObjectNode state = (ObjectNode) Configs.readTree(ckpt.resolve("state.json"));
        ((ObjectNode) state.get("sha256")).put("model.pt", Checkpoints.sha256(model)); // the forger's checksum
        Configs.write(ckpt.resolve("state.json"), state);

        UserError e = assertThrows(UserError.class, () -> Checkpoints.load(ckpt, new ChunkAutoencoder(cfg), null));
        assertTrue(e.getMessage().contains("model.pt") && e.getMessage().contains("has 16 bytes")
                && e.getMessage().contains(cut.substring(cut.indexOf("data/"))), e.getMessage());
    }
}
