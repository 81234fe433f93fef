package calm4j.eval;

/**
 * BrierLM, the likelihood-free language-model score (docs/method.md §4). For an outcome y and model P,
 * {@code Brier(P, y) = 2 P(y) - sum_x P(x)^2}; with two independent samples x1, x2 ~ P the unbiased estimate is
 * {@code 1{x1 = y} + 1{x2 = y} - 1{x1 = x2}}. Brier-n takes the next n tokens as one outcome, and
 * {@code BrierLM = 100 * (Brier-1 Brier-2 Brier-3 Brier-4)^(1/4)}, and 0 as soon as any Brier-n is not positive
 * (a model that scores below zero on some n is worse than useless there; an even number of negative factors must not
 * multiply into a large positive score).
 *
 * <p>This class accumulates per-position estimates (from whichever model and estimator) and reports each Brier-n
 * with its standard error, and BrierLM with a delta-method standard error from the 4 x 4 covariance of the
 * per-position estimates. Positions are treated as independent, which understates the error somewhat for
 * positions from the same document.
 */
public final class BrierLM {
    public static final int MAX_N = 4;

    private long positions;
    private final double[] sum = new double[MAX_N];
    private final double[][] cross = new double[MAX_N][MAX_N];
    private long agreements;              // positions whose samples' agreement was given
    private double agreementSum, agreementSquares;

    /**
     * The share of a position's pairs of samples whose first tokens agree (what the collision term of Brier-1
     * estimates): how concentrated a sampler is, reported beside the scores.
     */
    public void addAgreement(double share) {
        agreements++;
        agreementSum += share;
        agreementSquares += share * share;
    }

    /** The estimates of Brier-1..4 at one position. */
    public void add(double[] estimates) {
        positions++;
        for (int i = 0; i < MAX_N; i++) {
            sum[i] += estimates[i];
            for (int j = 0; j < MAX_N; j++) cross[i][j] += estimates[i] * estimates[j];
        }
    }

    /** The unbiased two-sample estimate for one position and one n. */
    public static double estimate(boolean firstHits, boolean secondHits, boolean samplesAgree) {
        return (firstHits ? 1 : 0) + (secondHits ? 1 : 0) - (samplesAgree ? 1 : 0);
    }

    /**
     * The unbiased estimate from S >= 2 independent samples at one position and one n, the U-statistic of the
     * two-sample one: {@code 2 hits / S - agreeingPairs / C(S, 2)}, where {@code hits} samples equal the outcome
     * and {@code agreeingPairs} of the C(S, 2) unordered pairs of samples agree. S = 2 gives
     * {@link #estimate(boolean, boolean, boolean)}; more samples estimate the same Brier score with less variance
     * (the mean of the two-sample estimate over all pairs of the S samples).
     */
    public static double estimate(int samples, long hits, long agreeingPairs) {
        if (samples < 2) throw new IllegalArgumentException("the Brier estimate needs at least 2 samples");
        return 2.0 * hits / samples - agreeingPairs / (samples * (samples - 1) / 2.0);
    }

    /**
     * @param agreement the mean share of sample pairs agreeing on the first token with its standard error, or null
     *                  when none was given ({@link #addAgreement})
     */
    public record Result(long positions, double[] brier, double[] standardError, double brierLM,
                         double brierLMStandardError, double[] agreement) {
        public String format() {
            StringBuilder sb = new StringBuilder();
            for (int n = 0; n < MAX_N; n++) {
                sb.append(String.format("Brier-%d %.3g +- %.2g%n", n + 1, brier[n], standardError[n]));
            }
            // Three significant digits, not decimals: at small scale Brier-3 and Brier-4 are of order 1e-5.
            sb.append(String.format("BrierLM %.3g +- %.2g (x100; %,d positions)", brierLM, brierLMStandardError,
                    positions));
            if (agreement != null) {
                sb.append(String.format("%nsamples agreeing on the first token %.3g +- %.2g (pairs of samples)",
                        agreement[0], agreement[1]));
            }
            return sb.toString();
        }

        /**
         * These figures as metrics named {@code brier_lm}, {@code brier_lm_se}, {@code brier_N} and
         * {@code brier_N_se}, each name followed by {@code suffix} (e.g. "_aligned"; "" for none).
         */
        public java.util.Map<String, Double> metrics(String suffix) {
            var m = new java.util.LinkedHashMap<String, Double>();
            m.put("brier_lm" + suffix, brierLM);
            m.put("brier_lm_se" + suffix, brierLMStandardError);
            for (int n = 0; n < MAX_N; n++) {
                m.put("brier_" + (n + 1) + suffix, brier[n]);
                m.put("brier_" + (n + 1) + "_se" + suffix, standardError[n]);
            }
            return m;
        }
    }

    public Result result() {
        if (positions == 0) throw new IllegalStateException("no positions were evaluated");
        double[] mean = new double[MAX_N], se = new double[MAX_N];
        double[][] cov = new double[MAX_N][MAX_N];
        for (int i = 0; i < MAX_N; i++) mean[i] = sum[i] / positions;
        for (int i = 0; i < MAX_N; i++) {
            for (int j = 0; j < MAX_N; j++) {
                double c = (cross[i][j] - positions * mean[i] * mean[j]) / Math.max(1, positions - 1);
                cov[i][j] = c / positions; // covariance of the means
            }
            se[i] = Math.sqrt(Math.max(0, cov[i][i]));
        }
        double[] agreement = null;
        if (agreements > 0) {
            double m = agreementSum / agreements;
            double var = Math.max(0, agreementSquares / agreements - m * m) / Math.max(1, agreements - 1);
            agreement = new double[] {m, Math.sqrt(var)};
        }
        double product = 1;
        for (double m : mean) {
            if (!(m > 0)) return new Result(positions, mean, se, 0, 0, agreement);
            product *= m;
        }
        double lm = 100 * Math.pow(product, 1.0 / MAX_N);
        // d BrierLM / d B_i = BrierLM / (4 B_i)
        double var = 0;
        for (int i = 0; i < MAX_N; i++) {
            for (int j = 0; j < MAX_N; j++) var += cov[i][j] / (MAX_N * mean[i]) / (MAX_N * mean[j]);
        }
        return new Result(positions, mean, se, lm, lm * Math.sqrt(Math.max(0, var)), agreement);
    }
}
