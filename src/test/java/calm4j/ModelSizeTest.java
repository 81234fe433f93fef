package calm4j;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmModel;
import calm4j.engine.Engine;
import calm4j.engine.UserError;
import calm4j.nn.Layers;
import calm4j.nn.Transformer;
import calm4j.nn.TransformerConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Model sizes are known from a config before anything is allocated, and a config that cannot fit is refused. */
class ModelSizeTest {
    @Test
    void theParameterCountsFromAConfigAreThoseOfTheBuiltModels() {
        Engine.cpu();
        TransformerConfig shape = new TransformerConfig(32, 88, 3, 4, 2, 10000);
        Transformer t = new Transformer(shape, 97, 16);
        assertEquals(Layers.parameterCount(t, false), (long) shape.parameterCount(97));
        AutoencoderConfig ae = AutoencoderConfig.DEFAULTS.with("hidden_size", 48, "intermediate_size", 80,
                "latent_size", 12).withVocabulary(97, 1, 2, 0);
        assertEquals(Layers.parameterCount(new ChunkAutoencoder(ae), false), (long) ChunkAutoencoder.parameterCount(ae));
    }

    @Test
    void theBackbonesMultiplyAccumulatesAreOnePerLinearWeightPlusTheAttentionOverItsKeys() {
        Engine.cpu();
        TransformerConfig shape = new TransformerConfig(32, 88, 3, 4, 2, 10000);
        Transformer t = new Transformer(shape, 97, 16);
        double norms = 3 * 2 * 32 + 32, table = 97 * 32;
        assertEquals(Layers.parameterCount(t, false) - norms - table, shape.macsPerPosition(0), 1e-9,
                "each linear weight is one multiply-accumulate per position");
        assertEquals(3 * 2 * 10 * 32, shape.macsPerPosition(10) - shape.macsPerPosition(0), 1e-9,
                "q.k and p.v: 2 d per key and layer");
    }

    @Test
    void aConfigAskingForABillionLayersIsRefusedAtOnceWithTheFigures() {
        Engine.cpu();
        long start = System.nanoTime();
        CalmConfig huge = CalmConfig.DEFAULTS.with("num_hidden_layers", 1_000_000_000);
        AutoencoderConfig ae = AutoencoderConfig.DEFAULTS.withVocabulary(97, 1, 2, 0);
        UserError e = assertThrows(UserError.class, () -> new CalmModel(huge, new ChunkAutoencoder(ae)));
        assertTrue(e.getMessage().contains("1000000000 layers") && e.getMessage().contains("GB available"),
                e.getMessage());
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "refused before building anything");

        AutoencoderConfig wide = AutoencoderConfig.DEFAULTS.with("hidden_size", 1 << 20).withVocabulary(97, 1, 2, 0);
        assertThrows(UserError.class, () -> new ChunkAutoencoder(wide));
    }
}
