package calm4j.nn;

import calm4j.engine.UserError;

import java.util.List;

/**
 * The shape of the Llama-style {@link Transformer} both language models share (a CALM's backbone and the token
 * model's): in their JSON these keys sit flat beside the model's own, as in a Hugging Face Llama config.
 *
 * @param hiddenSize        d, the width of every position's hidden state
 * @param intermediateSize  the SwiGLU MLP's inner width
 * @param numHiddenLayers   decoder blocks
 * @param numAttentionHeads query heads; d / heads is the head size (and the rotary table's)
 * @param numKeyValueHeads  key and value heads (grouped-query attention when fewer than the query heads)
 * @param ropeTheta         the rotary embedding's base
 */
public record TransformerConfig(int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                                int numKeyValueHeads, double ropeTheta) {
    /** Its keys as they are spelled in JSON. */
    public static final List<String> KEYS = List.of("hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "rope_theta");

    public TransformerConfig {
        if (hiddenSize <= 0 || intermediateSize <= 0 || numHiddenLayers <= 0) {
            throw new UserError("backbone: hidden_size, intermediate_size and num_hidden_layers must be positive");
        }
        if (numAttentionHeads <= 0 || numKeyValueHeads <= 0) {
            throw new UserError("backbone: num_attention_heads and num_key_value_heads must be positive");
        }
        if (hiddenSize % numAttentionHeads != 0 || numAttentionHeads % numKeyValueHeads != 0) {
            throw new UserError("backbone: hidden_size (" + hiddenSize + ") must be a multiple of num_attention_heads ("
                    + numAttentionHeads + "), and that of num_key_value_heads (" + numKeyValueHeads + ")");
        }
        if (!(ropeTheta > 0)) throw new UserError("backbone: rope_theta must be positive, got " + ropeTheta);
    }

    /** The width of the keys and values each block projects to: d / heads x kv heads. */
    public int kvSize() {
        return hiddenSize / numAttentionHeads * numKeyValueHeads;
    }

    /** Parameters of such a Transformer over a {@code vocab}-token table, computed before any is allocated. */
    public double parameterCount(double vocab) {
        double d = hiddenSize;
        double block = 2 * d * d + 2 * d * kvSize() + 3 * d * intermediateSize + 2 * d; // attention, MLP, two norms
        return vocab * d + numHiddenLayers * block + d;
    }

    /**
     * Multiply-accumulates of one position through every block when it attends to {@code keys} keys: the four
     * attention projections, the SwiGLU MLP, and q.k and p.v over the keys. Norms and softmax are left out.
     */
    public double macsPerPosition(double keys) {
        double layer = Attention.macs(hiddenSize, kvSize(), keys) + SwiGLU.macs(hiddenSize, intermediateSize);
        return numHiddenLayers * layer;
    }
}
