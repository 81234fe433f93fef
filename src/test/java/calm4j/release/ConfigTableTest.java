package calm4j.release;

import calm4j.ae.AutoencoderConfig;
import calm4j.calm.CalmConfig;
import calm4j.engine.Configs;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class ConfigTableTest {
    static final Path WHERE = Path.of("config.json");

    /** An autoencoder config whose every value differs from the authors' defaults. */
    static final AutoencoderConfig AE = new AutoencoderConfig(300, 48, 96, 3, 1, 2, 12, false, 0.05, 0.25, 0.75,
            2e-3, 7, 5, 6);

    /** A CALM config whose every value that calm4j's layout carries differs from the authors' defaults. */
    static final CalmConfig CALM = CalmConfig.DEFAULTS.with("hidden_size", 96, "intermediate_size", 200,
            "num_hidden_layers", 3, "num_attention_heads", 6, "num_key_value_heads", 3, "rope_theta", 5000.0,
            "context_chunks", 40, "noise_size", 24, "num_mlp_layers", 3, "num_samples", 5, "num_targets", 50,
            "alpha", 1.5, "eval_block_chunks", 20, "eval_samples", 3, "head", "flow", "flow_steps", 7,
            "head_proposal", false, "aux_token_weight", 0.0, "aux_token_decay", 1.0, "proposal_rank", 0,
            "decode", "sample");

    @Test
    void everyAutoencoderFieldSurvivesExportAndImportInCalm4jsLayout() {
        assertEquals(AE, ConfigTable.autoencoder(Calm4jLayout.autoencoderConfig(AE), WHERE));
    }

    @Test
    void everyCalmFieldSurvivesExportAndImportInCalm4jsLayout() {
        ObjectNode json = Calm4jLayout.calmConfig(CALM, AE);
        assertEquals(CALM, ConfigTable.calm(json, WHERE));
        assertEquals(AE, ConfigTable.autoencoder(json.get("ae_config"), WHERE));
    }

    @Test
    void aProposingHeadIsPartOfTheExportedModelAndATrainingOnlyOneIsNot() {
        CalmConfig proposing = CALM.with("head", "energy", "head_proposal", true, "aux_token_weight", 1.0,
                "aux_token_head", "linear", "proposal_rank", 24, "proposal_latent", "table",
                "proposal_draw", "sequential");
        ObjectNode json = Calm4jLayout.calmConfig(proposing, AE);
        assertTrue(json.get("calm4j_head_proposal").asBoolean());
        assertEquals(proposing.with("aux_token_decay", 1.0), ConfigTable.calm(json, WHERE));
        CalmConfig trainingOnly = CALM.with("head", "energy", "aux_token_weight", 0.5);
        JsonNode plain = Calm4jLayout.calmConfig(trainingOnly, AE);
        assertFalse(plain.has("calm4j_head_proposal"));
        assertEquals(0.0, ConfigTable.calm(plain, WHERE).auxTokenWeight(), "the training-only head is not imported");
    }

    @Test
    void theAuthorsLayoutKeepsTheFieldsTheirClassesHaveAndTheirDefaultsFillTheRest() {
        ObjectNode json = OfficialLayout.calmConfig(CALM.with("head", "energy"), AE, Path.of("/ae"));
        assertEquals("energy", json.get("model_type").asText());
        assertEquals(1.5, json.get("beta").asDouble(), "the energy score's exponent is their beta");
        assertEquals(40, json.get("max_position_embeddings").asInt());
        CalmConfig back = ConfigTable.calm(json, WHERE);
        assertEquals(96, back.backbone().hiddenSize());
        assertEquals(3, back.backbone().numKeyValueHeads());
        assertEquals(5, back.numSamples());
        assertEquals(100, back.numTargets(), "a field they do not write takes their default");
        assertEquals(10, back.flowSteps(), "their flow head samples with 10 midpoint steps");
        assertEquals(40, back.evalBlockChunks(), "their 512 chunks, at most the context");
    }

    @Test
    void theAuthorsAutoencoderConfigDropsTokensAsLatentsAndPadsWithEosWhenItNamesNoPad() throws Exception {
        JsonNode json = Configs.JSON.readTree("{\"vocab_size\": 512, \"hidden_size\": 64, \"intermediate_size\": "
                + "160, \"latent_size\": 16, \"patch_size\": 4, \"num_encoder_layers\": 2, \"num_decoder_layers\": 2, "
                + "\"ae_dropout\": 0.2, \"eos_token_id\": 2, \"pad_token_id\": null}");
        AutoencoderConfig c = ConfigTable.autoencoder(json, WHERE);
        assertEquals(0.2, c.tokenDrop());
        assertEquals(0.2, c.latentDrop());
        assertEquals(2, c.padId());
        assertEquals(0, c.maskId(), "their DropToken replaces a dropped token by id 0");
        assertTrue(c.variational());
    }

    @Test
    void aConfigWithoutARequiredSizeIsRefusedNamingTheField() throws Exception {
        JsonNode json = Configs.JSON.readTree("{\"hidden_size\": 64}");
        var e = assertThrows(calm4j.engine.UserError.class, () -> ConfigTable.autoencoder(json, WHERE));
        assertTrue(e.getMessage().contains("\"vocab_size\""), e.getMessage());
    }
}
