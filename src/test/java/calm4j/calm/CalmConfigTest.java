package calm4j.calm;

import calm4j.engine.Configs;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class CalmConfigTest {
    @Test
    void theDefaultRecipeTrainsTheBackboneWithTheAuxiliaryTokenLoss() {
        assertEquals("energy", CalmConfig.DEFAULTS.head(), "one-step sampling: the method's speed");
        assertEquals(1.0, CalmConfig.DEFAULTS.auxTokenWeight(), "the multi-token head the energy head refines");
        assertEquals("tied", CalmConfig.DEFAULTS.auxTokenHead());
        assertTrue(CalmConfig.DEFAULTS.refinesProposals(), "the head study's recipe (docs/head-study/README.md)");
    }

    @Test
    void aRunWrittenBeforeThePresetChangedReadsAsItWasTrained() {
        ObjectNode old = Configs.JSON.createObjectNode().put("hidden_size", 64).put("head", "energy");
        CalmConfig c = CalmConfig.saved(old, "an old run");
        assertEquals(0.0, c.auxTokenWeight(), "a run without the key trained without the auxiliary loss");
        assertFalse(c.refinesProposals(), "nor with proposals");
        assertEquals(1.0, c.auxTokenDecay());
        assertEquals(64, c.hiddenSize());
        assertEquals(0.5, CalmConfig.saved(old.put("aux_token_weight", 0.5), "a newer run").auxTokenWeight());
        assertEquals(CalmConfig.DEFAULTS.numSamples(), c.numSamples(), "other missing keys take the preset");
    }
}
