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
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** A checkpoint whose checksums were forged to match is still checked tensor by tensor before libtorch reads it. */
class ForgedCheckpointTest {
    @Test
    void aModelArchiveWithARecordCutShortIsRefusedEvenWithMatchingChecksums(@TempDir Path dir) throws Exception {
        Engine.cpu();
        AutoencoderConfig cfg = AutoencoderConfig.DEFAULTS.withVocabulary(64, 1, 2, 0);
        Path ckpt = Checkpoints.saveWeights(dir.resolve("run"), 3, new ChunkAutoencoder(cfg));
        Path model = ckpt.resolve("model.pt");
        Map<String, byte[]> records = new LinkedHashMap<>();
        String cut = null;
        try (ZipFile z = new ZipFile(model.toFile())) {
            for (var it = z.entries(); it.hasMoreElements(); ) {
                ZipEntry e = it.nextElement();
                byte[] b = z.getInputStream(e).readAllBytes();
                if (cut == null && e.getName().contains("/data/") && b.length > 64) {
                    cut = e.getName();
                    b = java.util.Arrays.copyOf(b, 16);
                }
                records.put(e.getName(), b);
            }
        }
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(model))) {
            for (var e : records.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey());
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                entry.setMethod(ZipEntry.STORED);
                entry.setSize(e.getValue().length);
                entry.setCrc(crc.getValue());
                z.putNextEntry(entry);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        ObjectNode state = (ObjectNode) Configs.readTree(ckpt.resolve("state.json"));
        ((ObjectNode) state.get("sha256")).put("model.pt", Checkpoints.sha256(model)); // the forger's checksum
        Configs.write(ckpt.resolve("state.json"), state);

        UserError e = assertThrows(UserError.class, () -> Checkpoints.load(ckpt, new ChunkAutoencoder(cfg), null));
        assertTrue(e.getMessage().contains("model.pt") && e.getMessage().contains("has 16 bytes")
                && e.getMessage().contains(cut.substring(cut.indexOf("data/"))), e.getMessage());
    }
}
