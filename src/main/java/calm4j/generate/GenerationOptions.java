package calm4j.generate;

import calm4j.engine.UserError;

/**
 * How a generator spends draws and prefill, the same for every sequence it serves (a token model draws no pool).
 *
 * @param pool     candidate chunks drawn per step when a sequence's temperature or top_p chooses among candidates
 *                 ({@link Temperature}): the batch approximation's sample size
 * @param exact    T = 1/n by exact rejection (draw n at a time until all n agree), falling back to the pool rule
 *                 after {@code maxDraws}
 * @param maxDraws the most draws for exact temperature, and for continuing a prompt whose last chunk is partial
 * @param prefillSlice backbone positions prefilled per step at most: a longer prompt is prefilled in slices between
 *                 the batch's decoding steps ({@link PrefillQueue})
 */
public record GenerationOptions(int pool, boolean exact, int maxDraws, int prefillSlice) {
    /**
     * The default prefill slice, in backbone positions: a short request's time to first token while an 8,192-token
     * prompt was prefilled was 1.16x (CALM) and 1.57x (token model) its time on an idle server with slices of 64,
     * 2.27x and 4.28x with 256 (the long prompt's own first token 1.7x and 1.3x later with 64).
     */
    public static final int PREFILL_SLICE = 64;
    public static final GenerationOptions DEFAULT = new GenerationOptions(200, false, 2000);

    public GenerationOptions {
        if (pool < 1) throw UserError.badValue("pool", "must be at least 1, got " + pool);
        if (maxDraws < 1) throw UserError.badValue("max_draws", "must be at least 1, got " + maxDraws);
        if (prefillSlice < 1) throw UserError.badValue("prefill_slice", "must be at least 1, got " + prefillSlice);
    }

    /** With the default prefill slice. */
    public GenerationOptions(int pool, boolean exact, int maxDraws) {
        this(pool, exact, maxDraws, PREFILL_SLICE);
    }
}
