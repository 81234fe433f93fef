package calm4j.ar;

import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.UserError;

/**
 * The token-level baseline: the same Llama-style backbone as a CALM, reading and predicting one token per step.
 *
 * @param contextTokens the longest sequence the backbone sees
 */
public record TokenLMConfig(int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                            int numKeyValueHeads, double ropeTheta, int contextTokens, int evalBlockTokens) {

    /** The backbone of the default CALM (CalmConfig.DEFAULTS), over the same 128 tokens (32 chunks of 4). */
    public static final TokenLMConfig DEFAULTS = Presets.section("token-lm", "model", TokenLMConfig.class);

    public TokenLMConfig {
        if (hiddenSize <= 0 || intermediateSize <= 0 || numHiddenLayers <= 0 || numAttentionHeads <= 0
                || numKeyValueHeads <= 0) {
            throw new UserError("token LM config: sizes and head counts must be positive");
        }
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
        double d = hiddenSize, f = intermediateSize, kv = d * numKeyValueHeads / numAttentionHeads;
        return numHiddenLayers * (2 * d * d + 2 * d * kv + 3 * d * f + 2 * keys * d) + d * vocab;
    }

    /** This config with the named keys changed: {@code with("KEY", value, ...)}, keys as in the JSON files. */
    public TokenLMConfig with(Object... keysAndValues) {
        return Configs.with(this, keysAndValues);
    }
}
