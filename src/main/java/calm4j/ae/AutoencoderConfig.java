package calm4j.ae;

import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.nn.SwiGLU;

/**
 * The chunk autoencoder's shape and regularisers (docs/method.md §1). Read from the {@code "model"} section of
 * {@code ae.json}; vocabulary and special ids come from the tokenizer and are filled in by the training command.
 *
 * @param hiddenSize       d, the width of token embeddings and hidden states
 * @param intermediateSize the SwiGLU hidden width
 * @param encoderLayers    AE layers in the encoder: the first half run per token before the squeeze, the rest after
 * @param decoderLayers    AE layers in the decoder: the first half before the expand, the rest per token after
 * @param patchSize        K, tokens per chunk
 * @param latentSize       l, the size of the latent vector
 * @param variational      sample z ~ N(mu, sigma^2) and add the KL term; false gives a plain (reconstruction-only) AE
 * @param tokenDrop        probability of replacing an input token by MASK while training (DropToken)
 * @param latentDrop       dropout probability on z before decoding while training (DropLatent)
 * @param klClamp          lambda_KL: each dimension's KL is clamped from below at this value (0 turns clipping off)
 * @param klWeight         beta, the weight of the KL term
 */
public record AutoencoderConfig(int vocabSize, int hiddenSize, int intermediateSize, int encoderLayers,
                                int decoderLayers, int patchSize, int latentSize, boolean variational,
                                double tokenDrop, double latentDrop, double klClamp, double klWeight,
                                int padId, int maskId, int eosId) {

    /** A size that trains on two CPU cores in well under an hour; vocabulary and ids come from the tokenizer. */
    public static final AutoencoderConfig DEFAULTS = Presets.section("autoencoder", "model", AutoencoderConfig.class);

    public AutoencoderConfig {
        require(hiddenSize > 0 && intermediateSize > 0 && latentSize > 0, "sizes must be positive");
        require(encoderLayers >= 0 && decoderLayers >= 0, "layer counts must be >= 0");
        require(patchSize >= 1, "patch_size (K) must be at least 1");
        require(tokenDrop >= 0 && tokenDrop < 1 && latentDrop >= 0 && latentDrop < 1,
                "token_drop and latent_drop must lie in [0, 1)");
        require(klClamp >= 0 && klWeight >= 0, "kl_clamp and kl_weight must be >= 0");
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new UserError("autoencoder config: " + message);
    }

    /** This config bound to a tokenizer's vocabulary and special ids. */
    public AutoencoderConfig withVocabulary(int vocab, int pad, int mask, int eos) {
        return new AutoencoderConfig(vocab, hiddenSize, intermediateSize, encoderLayers, decoderLayers, patchSize,
                latentSize, variational, tokenDrop, latentDrop, klClamp, klWeight, pad, mask, eos);
    }

    public void requireBound() {
        require(vocabSize > 0, "vocab_size is not set (it comes from the tokenizer)");
        require(padId >= 0 && padId < vocabSize, "pad_id is not a token of the vocabulary");
        require(tokenDrop == 0 || (maskId >= 0 && maskId < vocabSize), "token_drop needs a MASK token");
    }

    /**
     * Multiply-accumulates of encoding one chunk (matmuls only): the layers before the squeeze run on each of the K
     * positions, K*d -> d squeezes them, the layers after run once, and d -> 2l gives mean and log-sigma.
     */
    public double encoderMacsPerChunk() {
        double d = hiddenSize, k = patchSize, l = latentSize, mlp = SwiGLU.macs(hiddenSize, intermediateSize);
        int before = encoderLayers / 2, after = encoderLayers - before;
        return k * before * mlp + k * d * d + after * mlp + d * 2 * l;
    }

    /**
     * Multiply-accumulates of decoding one latent to K tokens' logits, the encoder's steps reversed; the tied output
     * layer (K d V) dominates.
     */
    public double decoderMacsPerChunk() {
        double d = hiddenSize, k = patchSize, l = latentSize, v = vocabSize, mlp = SwiGLU.macs(hiddenSize,
                intermediateSize);
        int before = decoderLayers / 2, after = decoderLayers - before;
        return l * d + before * mlp + d * k * d + k * after * mlp + k * d * v;
    }

    /** Training FLOPs per chunk: 6 x the forward MACs (2 forward, 4 backward), the usual dense estimate. */
    public double trainingFlopsPerChunk() {
        return 6 * (encoderMacsPerChunk() + decoderMacsPerChunk());
    }

    /** This config with the named keys changed: {@code with("KEY", value, ...)}, keys as in the JSON files. */
    public AutoencoderConfig with(Object... keysAndValues) {
        return Configs.with(this, keysAndValues);
    }
}
