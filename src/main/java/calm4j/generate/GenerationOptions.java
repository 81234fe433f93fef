package calm4j.generate;

import calm4j.engine.UserError;

/**
 * How a CALM generator spends draws, the same for every sequence it serves (a token model needs none of it).
 *
 * @param pool     candidate chunks drawn per step when a sequence's temperature or top_p chooses among candidates
 *                 ({@link Temperature}): the batch approximation's sample size
 * @param exact    T = 1/n by exact rejection (draw n at a time until all n agree), falling back to the pool rule
 *                 after {@code maxDraws}
 * @param maxDraws the most draws for exact temperature, and for continuing a prompt whose last chunk is partial
 */
public record GenerationOptions(int pool, boolean exact, int maxDraws) {
    public static final GenerationOptions DEFAULT = new GenerationOptions(200, false, 2000);

    public GenerationOptions {
        if (pool < 1) throw UserError.badValue("pool", "must be at least 1, got " + pool);
        if (maxDraws < 1) throw UserError.badValue("max_draws", "must be at least 1, got " + maxDraws);
    }
}
