package calm4j.generate;

import calm4j.engine.UserError;

/**
 * How one sequence is sampled, as an API request states it. Each model serves what it can and refuses the rest
 * with the reason ({@code checkSampling} of the model): a token model applies all of it to its logits; a CALM has
 * no logits, so it reaches temperature and nucleus through agreement among a pool of candidates
 * ({@link Temperature}) and refuses penalties.
 *
 * @param temperature      0 (the most likely: greedy, or a CALM's most frequent candidate) to 2
 * @param topP             nucleus: the smallest set of most likely outcomes whose mass reaches top_p, in (0, 1]
 * @param topK             the k most likely tokens only (0: off); token models only
 * @param presencePenalty  subtracted from the logit of every token already generated, in [-2, 2]
 * @param frequencyPenalty subtracted once per earlier occurrence of the token, in [-2, 2]
 */
public record Sampling(double temperature, double topP, int topK, double presencePenalty, double frequencyPenalty) {
    /** Plain sampling from the model's distribution. */
    public static final Sampling DEFAULT = new Sampling(1, 1, 0, 0, 0);
    public static final double MAX_TEMPERATURE = 2;

    public Sampling {
        if (!(temperature >= 0 && temperature <= MAX_TEMPERATURE)) {
            throw new UserError("temperature must lie in [0, " + MAX_TEMPERATURE + "], got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) throw new UserError("top_p must lie in (0, 1], got " + topP);
        if (topK < 0) throw new UserError("top_k must be at least 0 (0: off), got " + topK);
        if (!(Math.abs(presencePenalty) <= 2) || !(Math.abs(frequencyPenalty) <= 2)) {
            throw new UserError("presence_penalty and frequency_penalty must lie in [-2, 2], got "
                    + presencePenalty + " and " + frequencyPenalty);
        }
    }

    /** Plain sampling at {@code temperature}. */
    public static Sampling at(double temperature) {
        return new Sampling(temperature, 1, 0, 0, 0);
    }

    public Sampling withTopP(double p) {
        return new Sampling(temperature, p, topK, presencePenalty, frequencyPenalty);
    }

    public Sampling withTopK(int k) {
        return new Sampling(temperature, topP, k, presencePenalty, frequencyPenalty);
    }

    public Sampling withPenalties(double presence, double frequency) {
        return new Sampling(temperature, topP, topK, presence, frequency);
    }

    public boolean greedy() {
        return temperature == 0;
    }

    public boolean penalised() {
        return presencePenalty != 0 || frequencyPenalty != 0;
    }
}
