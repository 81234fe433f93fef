package calm4j.bench;

import calm4j.engine.Engine;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;

/**
 * How calm4j times things: warm up until the JIT has compiled the loop on the pinned core, then take the median of
 * several timed runs and keep their spread. One run of a short path varies by 30% on a shared machine; a decision
 * between two implementations needs an in-process A/B, and a figure for a report the median with its spread.
 */
public final class Timing {
    private Timing() {}

    /** Seconds per run: the median of the timed runs, and the fastest and slowest of them. */
    public record Seconds(double median, double min, double max, int runs) {
        /** The spread as a fraction of the median: (max - min) / median. */
        public double spread() {
            return (max - min) / median;
        }
    }

    /**
     * Runs {@code run} until a second and a half has passed (at least once): the JIT compiles the generation loop on
     * the pinned core during the first runs (batch 1 here: 18.6, 10.4, then 6-9 ms per step from the third run on).
     */
    public static void warmUp(Runnable run) {
        long until = System.nanoTime() + 1_500_000_000L;
        do run.run(); while (System.nanoTime() < until);
    }

    /** {@code repeats} timed calls of {@code run}. */
    public static Seconds time(int repeats, Runnable run) {
        double[] seconds = new double[repeats];
        for (int i = 0; i < repeats; i++) {
            long t0 = System.nanoTime();
            run.run();
            seconds[i] = (System.nanoTime() - t0) / 1e9;
        }
        double[] sorted = seconds.clone();
        Arrays.sort(sorted);
        int m = sorted.length / 2;
        double median = sorted.length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
        return new Seconds(median, sorted[0], sorted[sorted.length - 1], repeats);
    }

    /**
     * Seconds per call of {@code step} over {@code steps} calls after three warm-up calls (as the PyTorch-eager
     * reference measures training steps: the JIT compiles on the same core during the first calls).
     */
    public static Seconds perStep(Runnable step, int steps) {
        for (int i = 0; i < 3; i++) step.run();
        return time(steps, step);
    }

    /** fp32 GFLOP/s of a 2048x2048 matmul: the yardstick model FLOP/s are compared with in the same run. */
    public static double matmulGflops() {
        int n = 2048;
        Tensor a = torch.randn(n, n), b = torch.randn(n, n);
        Runnable product = () -> Engine.step(() -> {
            a.matmul(b);
        });
        // The median of 10, as the eager reference, after products for a second and a half: just after start-up the
        // JIT compiles on the same core, and the mean of 5 after one warm-up read 10-20% low.
        warmUp(product);
        return 2.0 * n * n * n / time(10, product).median() / 1e9;
    }
}
