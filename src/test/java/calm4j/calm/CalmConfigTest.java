package calm4j.calm;

import calm4j.engine.Configs;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class CalmConfigTest {
    @Test
    void theDefaultRecipeTrainsTheBackboneWithTheAuxiliaryTokenLoss() {
        assertEquals("energy", CalmConfig.DEFAULTS.head(), "one-step sampling: the method's speed");
        assertEquals(1.0, CalmConfig.DEFAULTS.auxTokenWeight(), "the head study's best lever at equal FLOPs");
        assertEquals("tied", CalmConfig.DEFAULTS.auxTokenHead());
    }

    @Test
    void aRunWrittenBeforeThePresetChangedReadsAsItWasTrained() {
        ObjectNode old = Configs.JSON.createObjectNode().put("hidden_size", 64).put("head", "energy");
        CalmConfig c = CalmConfig.saved(old, "an old run");
        assertEquals(0.0, c.auxTokenWeight(), "a run without the key trained without the auxiliary loss");
        assertEquals(64, c.hiddenSize());
        assertEquals(0.5, CalmConfig.saved(old.put("aux_token_weight", 0.5), "a newer run").auxTokenWeight());
        assertEquals(CalmConfig.DEFAULTS.numSamples(), c.numSamples(), "other missing keys take the preset");
    }
}
