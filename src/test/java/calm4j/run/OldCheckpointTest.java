package calm4j.run;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.engine.Configs;
import calm4j.engine.Engine;
import calm4j.nn.Layers;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.OutputArchive;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Runs saved before the autoencoder's squeeze and expand layers had biases still load, as the model they saved. */
class OldCheckpointTest {
    /** Module.save's archive layout, leaving out the parameters whose names end in one of {@code skip}. */
    static OutputArchive archiveWithout(Module m, String... skip) {
        OutputArchive a = new OutputArchive();
        var params = m.named_parameters(false);
        outer:
        for (long i = 0; i < params.size(); i++) {
            String name = params.get(i).key().getString();
            for (String s : skip) if (name.equals(s)) continue outer;
            a.write(name, params.get(i).value(), false);
        }
        var children = m.named_children();
        for (long i = 0; i < children.size(); i++) {
            String name = children.get(i).key().getString();
            String[] inner = java.util.Arrays.stream(skip).filter(s -> s.startsWith(name + "."))
                    .map(s -> s.substring(name.length() + 1)).toArray(String[]::new);
            a.write(name, archiveWithout(children.get(i).value(), inner));
        }
        return a;
    }

    @Test
    void anAutoencoderSavedWithoutSqueezeAndExpandBiasesLoadsWithThemZero(@TempDir Path dir) throws Exception {
        Engine.cpu();
        AutoencoderConfig cfg = AutoencoderConfig.DEFAULTS.withVocabulary(64, 1, 2, 0);
        torch.manual_seed(1);
        ChunkAutoencoder old = new ChunkAutoencoder(cfg);
        String[] biases = {"encoder.squeeze_layer.bias", "decoder.expand_layer.bias"};
        try (NoGradGuard ng = new NoGradGuard()) {
            for (String b : biases) Layers.namedParameters(old).get(b).zero_(); // the old model had none
        }
        Path run = dir.resolve("run");
        Path ckpt = Checkpoints.saveWeights(run, 7, old);
        Checkpoints.writeArchive(archiveWithout(old, biases), ckpt.resolve("model.pt"));
        ObjectNode state = (ObjectNode) Configs.readTree(ckpt.resolve("state.json"));
        ((ObjectNode) state.get("sha256")).put("model.pt", Checkpoints.sha256(ckpt.resolve("model.pt")));
        Configs.write(ckpt.resolve("state.json"), state);

        torch.manual_seed(2);
        ChunkAutoencoder loaded = new ChunkAutoencoder(cfg);
        assertEquals(7, Checkpoints.load(ckpt, loaded, null).step());
        try (NoGradGuard ng = new NoGradGuard()) {
            for (String b : biases) assertEquals(0.0, Layers.namedParameters(loaded).get(b).abs().max().item_double());
            old.eval();
            loaded.eval();
            Tensor tokens = torch.randint(64, new long[] {5, cfg.patchSize()});
            assertTrue(torch.equal(old.encode(tokens).mu(), loaded.encode(tokens).mu()), "the same model");
        }
    }

    @Test
    void aCheckpointMissingAnyOtherTensorIsCorruptAndSaysWhich(@TempDir Path dir) throws Exception {
        Engine.cpu();
        AutoencoderConfig cfg = AutoencoderConfig.DEFAULTS.withVocabulary(64, 1, 2, 0);
        ChunkAutoencoder ae = new ChunkAutoencoder(cfg);
        Path ckpt = Checkpoints.saveWeights(dir.resolve("run"), 1, ae);
        Checkpoints.writeArchive(archiveWithout(ae, "encoder.norm.weight"), ckpt.resolve("model.pt"));
        ObjectNode state = (ObjectNode) Configs.readTree(ckpt.resolve("state.json"));
        ((ObjectNode) state.get("sha256")).put("model.pt", Checkpoints.sha256(ckpt.resolve("model.pt")));
        Configs.write(ckpt.resolve("state.json"), state);
        calm4j.engine.UserError e = assertThrows(calm4j.engine.UserError.class,
                () -> Checkpoints.load(ckpt, new ChunkAutoencoder(cfg), null));
        assertTrue(e.getMessage().contains("has no tensor encoder.norm.weight"), e.getMessage());
    }
}
