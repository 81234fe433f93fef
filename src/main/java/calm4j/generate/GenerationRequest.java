package calm4j.generate;

import calm4j.engine.UserError;

/**
 * One sequence to generate, for any model: the prompt's token ids (no special tokens needed), at most
 * {@code maxTokens} new tokens, how to sample them, and the seed of the sequence's own random stream (a sequence
 * comes out the same alone or in any batch).
 */
public record GenerationRequest(int[] prompt, int maxTokens, Sampling sampling, long seed) {
    public GenerationRequest {
        if (prompt == null) throw new UserError("a generation request needs a prompt (it may be empty)");
        if (maxTokens < 1) throw new UserError("max tokens must be at least 1, got " + maxTokens);
        if (sampling == null) sampling = Sampling.DEFAULT;
    }

    /** Plain sampling at {@code temperature}. */
    public GenerationRequest(int[] prompt, int maxTokens, double temperature, long seed) {
        this(prompt, maxTokens, Sampling.at(temperature), seed);
    }
}
