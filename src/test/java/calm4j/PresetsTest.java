package calm4j;

import calm4j.ae.AutoencoderConfig;
import calm4j.ar.TokenLMConfig;
import calm4j.calm.CalmConfig;
import calm4j.engine.Presets;
import calm4j.train.TrainConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;

/** The presets calm4j reads as defaults name every key of their config (a key added to a record must be added there). */
class PresetsTest {
    @Test
    void everyPresetSectionReadAsADefaultNamesEveryKeyOfItsConfig() {
        // `calm bench all` read preset "bench" without token_brier_weight and failed at start for a whole session.
        assertDoesNotThrow(() -> Presets.section("calm", "model", CalmConfig.class));
        assertDoesNotThrow(() -> Presets.section("calm", "train", TrainConfig.class));
        assertDoesNotThrow(() -> Presets.section("autoencoder", "model", AutoencoderConfig.class));
        assertDoesNotThrow(() -> Presets.section("autoencoder", "train", TrainConfig.class));
        assertDoesNotThrow(() -> Presets.section("token-lm", "model", TokenLMConfig.class));
        assertDoesNotThrow(() -> Presets.section("token-lm", "train", TrainConfig.class));
        assertDoesNotThrow(() -> Presets.section("bench", "model", CalmConfig.class));
        assertDoesNotThrow(() -> Presets.section("bench", "autoencoder", AutoencoderConfig.class));
        assertDoesNotThrow(() -> Presets.section("bench", "token_model", TokenLMConfig.class));
        assertDoesNotThrow(() -> Presets.section("official", "model", CalmConfig.class));
        assertDoesNotThrow(() -> Presets.section("official", "autoencoder", AutoencoderConfig.class));
    }
}
