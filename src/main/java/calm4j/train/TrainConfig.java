package calm4j.train;

import calm4j.engine.Configs;
import calm4j.engine.UserError;

/**
 * How a model is trained; the same record for every model. Read from the {@code "train"} section of a run's config
 * JSON, over the model's preset ({@code calm4j.engine.Presets}: "autoencoder", "calm", "token-lm") for what the
 * file leaves out.
 *
 * @param batchSize      sequences (or chunks, for the autoencoder) per micro-batch
 * @param gradAccum      micro-batches per optimizer step
 * @param schedule       "constant" (after warmup) or "cosine" (down to minLr at maxSteps)
 * @param maxBadSteps    consecutive non-finite losses tolerated (each step is skipped) before training stops
 * @param keepCheckpoints how many of the newest checkpoints to keep
 */
public record TrainConfig(long maxSteps, int batchSize, int gradAccum, double lr, double minLr, long warmupSteps,
                          String schedule, double weightDecay, double beta1, double beta2, double gradClip,
                          long evalEvery, int evalBatches, long checkpointEvery, int keepCheckpoints,
                          long logEvery, int maxBadSteps, long seed) {

    public TrainConfig {
        require(maxSteps > 0, "max_steps must be positive");
        require(batchSize > 0, "batch_size must be positive");
        require(gradAccum > 0, "grad_accum must be positive");
        require(lr > 0, "lr must be positive");
        require(minLr >= 0 && minLr <= lr, "min_lr must lie in [0, lr]");
        require(warmupSteps >= 0, "warmup_steps must be >= 0");
        require(schedule.equals("constant") || schedule.equals("cosine"), "schedule must be constant or cosine");
        require(weightDecay >= 0, "weight_decay must be >= 0");
        require(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "beta1 and beta2 must lie in [0, 1)");
        require(gradClip >= 0, "grad_clip must be >= 0 (0 turns clipping off)");
        require(evalEvery > 0 && evalBatches > 0, "eval_every and eval_batches must be positive");
        require(checkpointEvery > 0 && keepCheckpoints > 0, "checkpoint_every and keep_checkpoints must be positive");
        require(logEvery > 0 && maxBadSteps > 0, "log_every and max_bad_steps must be positive");
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new UserError("train config: " + message);
    }

    /** Learning rate at {@code step}: linear warmup from lr/warmup, then constant or cosine decay to minLr. */
    public double lrAt(long step) {
        if (step < warmupSteps) return lr * (step + 1) / warmupSteps;
        if (schedule.equals("constant")) return lr;
        double progress = Math.min(1.0, (double) (step - warmupSteps) / Math.max(1, maxSteps - warmupSteps));
        return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * progress));
    }

    public TrainConfig withEvalBatches(int batches) {
        return new TrainConfig(maxSteps, batchSize, gradAccum, lr, minLr, warmupSteps, schedule, weightDecay, beta1,
                beta2, gradClip, evalEvery, batches, checkpointEvery, keepCheckpoints, logEvery, maxBadSteps, seed);
    }

    public TrainConfig withMaxSteps(long steps) {
        return new TrainConfig(steps, batchSize, gradAccum, lr, minLr, warmupSteps, schedule, weightDecay, beta1,
                beta2, gradClip, evalEvery, evalBatches, checkpointEvery, keepCheckpoints, logEvery, maxBadSteps, seed);
    }

    /** This config with the named keys changed: {@code with("KEY", value, ...)}, keys as in the JSON files. */
    public TrainConfig with(Object... keysAndValues) {
        return Configs.with(this, keysAndValues);
    }
}
