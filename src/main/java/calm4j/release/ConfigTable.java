package calm4j.release;

import calm4j.ae.AutoencoderConfig;
import calm4j.calm.CalmConfig;
import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The fields of a Hugging Face config.json and the calm4j config keys they hold: one table per model, read in one
 * direction by import and in the other by export, so a field cannot drift between the two. A field a config.json
 * leaves out takes the authors' default (preset {@code official}: their config classes' defaults and the CALM-M
 * release's sizes). Fields only calm4j has are prefixed {@code calm4j_}.
 */
final class ConfigTable {
    /** A config.json field and the calm4j key it holds. */
    record Field(String json, String key) {}

    /** The autoencoder's fields, in both layouts. */
    static final List<Field> AUTOENCODER = List.of(
            new Field("vocab_size", "vocab_size"), new Field("hidden_size", "hidden_size"),
            new Field("intermediate_size", "intermediate_size"), new Field("latent_size", "latent_size"),
            new Field("patch_size", "patch_size"), new Field("num_encoder_layers", "encoder_layers"),
            new Field("num_decoder_layers", "decoder_layers"), new Field("ae_dropout", "latent_drop"),
            new Field("kl_clamp", "kl_clamp"), new Field("kl_weight", "kl_weight"),
            new Field("pad_token_id", "pad_id"), new Field("eos_token_id", "eos_id"));

    /** The autoencoder's fields only calm4j's layout has. */
    static final List<Field> AUTOENCODER_CALM4J = List.of(
            new Field("calm4j_token_drop", "token_drop"), new Field("calm4j_mask_token_id", "mask_id"),
            new Field("calm4j_variational", "variational"));

    /** The CALM's fields, in both layouts (the autoencoder's sizes are written beside them from its config). */
    static final List<Field> CALM = List.of(
            new Field("hidden_size", "hidden_size"), new Field("intermediate_size", "intermediate_size"),
            new Field("num_hidden_layers", "num_hidden_layers"),
            new Field("num_attention_heads", "num_attention_heads"),
            new Field("num_key_value_heads", "num_key_value_heads"), new Field("rope_theta", "rope_theta"),
            new Field("max_position_embeddings", "context_chunks"), new Field("noise_size", "noise_size"),
            new Field("num_mlp_layers", "num_mlp_layers"), new Field("num_samples", "num_samples"),
            // the authors call the energy score's exponent beta; calm4j (and the paper) alpha
            new Field("beta", "alpha"));

    /** The CALM's fields only calm4j's layout has. */
    static final List<Field> CALM_CALM4J = List.of(
            new Field("calm4j_num_targets", "num_targets"), new Field("calm4j_eval_block_chunks", "eval_block_chunks"),
            new Field("calm4j_eval_samples", "eval_samples"), new Field("calm4j_head", "head"),
            new Field("calm4j_flow_steps", "flow_steps"), new Field("calm4j_decode", "decode"));

    /**
     * Present only when the head refines proposed chunks: the multi-token head (or the low-rank head and latent
     * table that replace it) is then part of the model and exported with it.
     */
    static final List<Field> CALM_PROPOSALS = List.of(
            new Field("calm4j_head_proposal", "head_proposal"), new Field("calm4j_aux_token_head", "aux_token_head"),
            new Field("calm4j_proposal_rank", "proposal_rank"), new Field("calm4j_proposal_latent", "proposal_latent"),
            new Field("calm4j_proposal_draw", "proposal_draw"));

    private ConfigTable() {}

    /** Writes {@code config}'s values into {@code out} under the tables' field names. */
    @SafeVarargs
    static ObjectNode write(Object config, ObjectNode out, List<Field>... tables) {
        JsonNode values = Configs.JSON.valueToTree(config);
        for (List<Field> table : tables) for (Field f : table) out.set(f.json(), values.get(f.key()));
        return out;
    }

    /**
     * The calm4j keys the tables' fields give in {@code json} (a null field counts as absent), over the authors'
     * defaults of section {@code section}; {@code required} fields must be there.
     */
    @SafeVarargs
    static ObjectNode read(JsonNode json, String section, Path where, List<String> required, List<Field>... tables) {
        for (String f : required) {
            if (!json.hasNonNull(f)) throw new UserError(where + " has no \"" + f + "\"");
        }
        Class<?> type = section.equals("model") ? CalmConfig.class : AutoencoderConfig.class;
        ObjectNode values = Configs.JSON.valueToTree(Presets.section("official", section, type));
        for (List<Field> table : tables) {
            for (Field f : table) if (json.hasNonNull(f.json())) values.set(f.key(), json.get(f.json()));
        }
        return values;
    }

    /** The autoencoder config of a config.json in either layout. */
    static AutoencoderConfig autoencoder(JsonNode json, Path where) {
        ObjectNode v = read(json, "autoencoder", where, List.of("vocab_size", "hidden_size", "intermediate_size",
                "latent_size", "patch_size", "num_encoder_layers", "num_decoder_layers"), AUTOENCODER,
                AUTOENCODER_CALM4J);
        // The authors drop tokens and latent dimensions at one rate, and pad with EOS when they name no [PAD].
        if (!json.hasNonNull("calm4j_token_drop")) v.set("token_drop", v.get("latent_drop"));
        if (!json.hasNonNull("pad_token_id")) v.set("pad_id", v.get("eos_id"));
        return Configs.section(v, null, AutoencoderConfig.DEFAULTS, AutoencoderConfig.class, where.toString());
    }

    /** The CALM config of a config.json in either layout. */
    static CalmConfig calm(JsonNode json, Path where) {
        ObjectNode v = read(json, "model", where, List.of("hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads"), CALM, CALM_CALM4J, CALM_PROPOSALS);
        if (!json.hasNonNull("num_key_value_heads")) v.set("num_key_value_heads", v.get("num_attention_heads"));
        if (!json.hasNonNull("calm4j_eval_block_chunks")) {
            v.put("eval_block_chunks", Math.min(v.get("context_chunks").asInt(), v.get("eval_block_chunks").asInt()));
        }
        if (json.path("model_type").asText().equals("flow")) v.put("head", "flow"); // the authors' flow release
        // The authors' models have no multi-token head, nor does an export where it was training-only; a proposing
        // head's is part of the model (its loss weight here only makes the module exist).
        v.put("aux_token_weight", v.get("head_proposal").asBoolean() ? 1.0 : 0.0);
        return Configs.section(v, null, CalmConfig.DEFAULTS, CalmConfig.class, where.toString());
    }

    /** {@code node}'s fields in alphabetical order, as transformers writes a config.json. */
    static ObjectNode sorted(ObjectNode node) {
        Map<String, JsonNode> byName = new TreeMap<>();
        node.fields().forEachRemaining(e -> byName.put(e.getKey(), e.getValue()));
        ObjectNode out = Configs.JSON.createObjectNode();
        byName.forEach(out::set);
        return out;
    }
}
