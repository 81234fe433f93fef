package calm4j.calm;

import calm4j.ar.TokenLMConfig;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.nn.TransformerConfig;
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
        assertEquals(64, c.backbone().hiddenSize());
        assertEquals(0.5, CalmConfig.saved(old.put("aux_token_weight", 0.5), "a newer run").auxTokenWeight());
        assertEquals(CalmConfig.DEFAULTS.numSamples(), c.numSamples(), "other missing keys take the preset");
    }

    @Test
    void bothModelsReadTheSameFlatBackboneKeysIntoOneSharedRecord() {
        ObjectNode keys = Configs.JSON.createObjectNode().put("hidden_size", 96).put("num_attention_heads", 6)
                .put("num_key_value_heads", 2);
        CalmConfig calm = Configs.section(keys, null, CalmConfig.DEFAULTS, CalmConfig.class, "test");
        TokenLMConfig token = Configs.section(keys, null, TokenLMConfig.DEFAULTS, TokenLMConfig.class, "test");
        assertEquals(calm.backbone(), token.backbone(), "the token-lm preset has the calm preset's backbone");
        assertEquals(new TransformerConfig(96, calm.backbone().intermediateSize(), calm.backbone().numHiddenLayers(),
                6, 2, calm.backbone().ropeTheta()), calm.backbone());
        assertFalse(Configs.JSON.valueToTree(calm).has("backbone"), "written flat, as read");
        UserError typo = assertThrows(UserError.class, () -> Configs.section(keys.deepCopy().put("hiden_size", 3),
                null, TokenLMConfig.DEFAULTS, TokenLMConfig.class, "test"));
        assertTrue(typo.getMessage().contains("unknown key \"hiden_size\""), typo.getMessage());
        UserError uneven = assertThrows(UserError.class, () -> CalmConfig.DEFAULTS.with("num_attention_heads", 5));
        assertTrue(uneven.getMessage().contains("multiple of num_attention_heads"), uneven.getMessage());
    }

    @Test
    void eachHeadKindHasItsOwnSettings() {
        assertInstanceOf(HeadConfig.Energy.class, CalmConfig.DEFAULTS.headConfig());
        HeadConfig flow = CalmConfig.DEFAULTS.with("head", "flow", "num_samples", 3, "flow_steps", 7).headConfig();
        assertEquals(new HeadConfig.Flow(CalmConfig.DEFAULTS.numMlpLayers(), 3, 7), flow,
                "for the flow head num_samples is the posterior targets per position");
    }
}
