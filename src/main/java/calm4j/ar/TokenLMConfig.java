package calm4j.ar;

import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.nn.TransformerConfig;
import com.fasterxml.jackson.annotation.JsonUnwrapped;

/**
 * The token-level baseline: the same Llama-style backbone as a CALM, reading and predicting one token per step.
 *
 * @param backbone        the Transformer's shape, shared with a CALM's (its keys flat in JSON)
 * @param contextTokens   the longest sequence the backbone sees
 * @param evalBlockTokens tokens per block when the Brier scores are estimated
 */
public record TokenLMConfig(@JsonUnwrapped TransformerConfig backbone, int contextTokens, int evalBlockTokens) {

    /** The backbone of the default CALM (CalmConfig.DEFAULTS), over the same 128 tokens (32 chunks of 4). */
    public static final TokenLMConfig DEFAULTS = Presets.section("token-lm", "model", TokenLMConfig.class);

    public TokenLMConfig {
        if (backbone == null) throw new UserError("token LM config: the backbone's keys are missing");
        if (contextTokens < 2 || evalBlockTokens < 2 || evalBlockTokens > contextTokens) {
            throw new UserError("token LM config: context_tokens >= 2 and eval_block_tokens in [2, context_tokens]");
        }
    }

    /** Training FLOPs per token: 6 x the matmul MACs (tied output layer included, attention over S/2 keys). */
    public double trainingFlopsPerToken(int vocab) {
        return 6 * macsPerToken(vocab, contextTokens / 2.0);
    }

    /** Inference FLOPs per generated token (attention over a full context). */
    public double inferenceFlopsPerToken(int vocab) {
        return 2 * macsPerToken(vocab, contextTokens);
    }

    private double macsPerToken(int vocab, double keys) {
        return backbone.macsPerPosition(keys) + (double) backbone.hiddenSize() * vocab; // the tied output layer
    }

    /** This config with the named keys changed: {@code with("KEY", value, ...)}, keys as in the JSON files. */
    public TokenLMConfig with(Object... keysAndValues) {
        return Configs.with(this, keysAndValues);
    }
}
