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
