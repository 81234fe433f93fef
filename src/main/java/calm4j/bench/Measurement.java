package calm4j.bench;

import calm4j.engine.Configs;
import calm4j.engine.Memory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One measured setting: a path ({@code calm_train}, {@code calm_generate}, ...) with the weight type, batch and
 * temperature it ran at, its throughput and time per step (medians) with their spread over the timed runs, model FLOPs
 * per token where counted (NaN otherwise), and resident memory right after.
 *
 * @param temperature NaN for training paths; 0 for greedy token-model decoding
 */
public record Measurement(String path, String dtype, int batch, double temperature, double tokensPerS,
                          double msPerStep, double spread, double flopsPerToken, double residentGb) {

    static Measurement of(String path, String dtype, int batch, double temperature, double tokens,
                          Timing.Seconds run, int steps, double flopsPerToken) {
        return new Measurement(path, dtype, batch, temperature, tokens / run.median(), 1000 * run.median() / steps,
                run.spread(), flopsPerToken, Memory.residentGb());
    }

    /** The header of {@link #row}'s table. */
    public static final String HEADER =
            "path                           dtype  tokens/s   ms/step  spread     MFU  resident GB";

    /** A table row under {@link #HEADER}; spread is (slowest - fastest) / 2 / median. */
    public String row(double matmulGflops) {
        double mfu = mfu(matmulGflops);
        String setting = Double.isNaN(temperature) ? "" : temperature == 0 ? " greedy"
                : " T=" + (temperature == 0.5 ? "1/2" : temperature == 1 ? "1" : String.format("%.3g", temperature));
        return String.format("%-30s %-5s %9.0f %9.1f  +-%3.0f%% %7s %9.2f", path + " b" + batch + setting, dtype,
                tokensPerS, msPerStep, 50 * spread, Double.isNaN(mfu) ? "-" : String.format("%.1f%%", 100 * mfu),
                residentGb);
    }

    /** A training path in two lines: throughput, and model FLOP/s against the same-run matmul. */
    public String trainingSummary(double matmulGflops) {
        double model = flopsPerToken * tokensPerS / 1e9;
        return String.format("  training: %,.0f tokens/s (%.1f ms/step, spread +-%.0f%%)%n  model: %.2f GFLOP/s = "
                + "%.1f%% of a 2048^3 fp32 matmul (%.1f GFLOP/s, same run)", tokensPerS, msPerStep, 50 * spread,
                model, 100 * model / matmulGflops, matmulGflops);
    }

    /** Model FLOP/s over {@code matmulGflops} (NaN when this path's FLOPs are not counted). */
    public double mfu(double matmulGflops) {
        return flopsPerToken * tokensPerS / 1e9 / matmulGflops;
    }

    /** One JSON object: path, dtype, batch, temperature, tokens_per_s, ms_per_step, spread, mfu, resident_gb. */
    public ObjectNode json(double matmulGflops) {
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("path", path);
        o.put("dtype", dtype);
        o.put("batch", batch);
        if (!Double.isNaN(temperature)) o.put("temperature", temperature);
        o.put("tokens_per_s", tokensPerS);
        o.put("ms_per_step", msPerStep);
        o.put("spread", spread);
        double mfu = mfu(matmulGflops);
        if (!Double.isNaN(mfu)) o.put("mfu", mfu);
        if (!Double.isNaN(matmulGflops)) o.put("matmul_gflops", matmulGflops);
        o.put("resident_gb", residentGb);
        return o;
    }
}
