package calm4j.train;

import calm4j.engine.Engine;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.Memory;
import calm4j.engine.Progress;
import calm4j.engine.UserError;
import calm4j.loader.Batches;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import calm4j.run.Checkpoints;
import calm4j.run.MetricsLog;
import calm4j.run.Plots;
import calm4j.run.RunLock;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.OptimizerParamGroup;
import org.bytedeco.pytorch.OptimizerParamGroupVector;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static calm4j.nn.Tensors.c;

/**
 * The one training loop every calm4j model uses: AdamW with decay and no-decay groups, warmup then a constant or
 * cosine rate, gradient accumulation and clipping, periodic evaluation, skipping of non-finite steps, atomic
 * checkpoints, exact resume, metrics in JSONL, a progress bar and plots.
 *
 * <p>Exact resume rests on three things: the checkpoint stores model and optimizer state and the loader's position;
 * libtorch's generator is re-seeded at every step from (seed, step), so dropout and sampling noise do not depend on
 * what ran before; and metrics logged after the checkpoint are dropped, because the resumed run logs them again.
 *
 * <p>Ctrl-C (SIGINT/SIGTERM) asks the loop to stop after the current step and write a checkpoint first.
 */
public final class Trainer {
    /** What a finished (or interrupted) run reports. */
    public record Summary(long step, boolean interrupted, double lastLoss, Map<String, Double> lastEval,
                          double seconds, double tokensPerSecond, long tokensSeen, double commMillisPerStep,
                          double lastEvalSeconds, int ranks, Trainable.Cost cost) {}

    private final TrainConfig cfg;
    private final Path runDir;
    private final Trainable model;
    private final Batches data;
    private final boolean quiet;
    private final DataParallel dist;
    private final boolean writer;

    /** A single-process run. */
    public Trainer(TrainConfig cfg, Path runDir, Trainable model, Batches data, boolean quiet) {
        this(cfg, runDir, model, data, quiet, DataParallel.single());
    }

    /**
     * One rank of a data-parallel run: {@code data} must be this rank's shard. Gradients are averaged across ranks
     * every step; rank 0 alone evaluates and writes checkpoints, metrics, plots and the progress bar.
     */
    public Trainer(TrainConfig cfg, Path runDir, Trainable model, Batches data, boolean quiet, DataParallel dist) {
        this.cfg = cfg;
        this.runDir = runDir;
        this.model = model;
        this.data = data;
        this.quiet = quiet || !dist.isWriter();
        this.dist = dist;
        this.writer = dist.isWriter();
    }

    public Summary run() {
        return run(cfg.maxSteps());
    }

    /**
     * Trains until step {@code stopAt} (at most max_steps), then checkpoints and returns, exactly as an interrupt
     * would; the schedule still follows max_steps, so a later {@link #run()} continues the same run.
     */
    public Summary run(long stopAt) {
        return LibtorchErrors.guard("training", () -> train(Math.min(stopAt, cfg.maxSteps())));
    }

    private Summary train(long stopAt) {
        try (RunLock lock = writer ? RunLock.acquire(runDir) : null) { // one writer per run folder
            return trainLocked(stopAt);
        }
    }

    /** What changes as a session trains: position, counters, timings and the metrics window being averaged. */
    private static final class State {
        long step, tokensSeen;
        double priorSeconds;                // training time of earlier sessions of this run (from the checkpoint)
        final long startNanos = System.nanoTime();
        long stepNanos;                     // time in training steps only (not evaluation or checkpoints)
        long sessionTokens, sessionSteps;
        double commSeconds;
        int badInARow;
        double lastLoss = Double.NaN;
        Map<String, Double> lastEval = Map.of();
        double lastEvalSeconds;             // how long the last evaluation took
        final Map<String, Double> window = new LinkedHashMap<>(); // sums since the last log line
        int windowSteps;

        double seconds() {
            return (System.nanoTime() - startNanos) / 1e9;
        }

        double tokensPerSecond(int world) {
            return sessionTokens * world / Math.max(stepNanos / 1e9, 1e-9);
        }
    }

    private Summary trainLocked(long stopAt) {
        try {
            Files.createDirectories(runDir);
        } catch (IOException e) {
            throw new UserError("cannot create run folder " + runDir + ": " + e.getMessage());
        }
        Module module = model.module();
        // On a GPU the forward passes run under bf16 autocast (matmuls in bf16, reductions and the loss in fp32);
        // parameters, gradients and the optimizer stay fp32. On the CPU everything is fp32.
        boolean autocast = Layers.device(module).is_cuda();
        AdamW optimizer = optimizer(module);
        Checkpoints checkpoints = new Checkpoints(runDir, cfg.keepCheckpoints());
        MetricsLog metrics = new MetricsLog(runDir);
        State st = new State();
        resume(st, checkpoints, metrics, module, optimizer);
        if (st.step >= cfg.maxSteps()) {
            if (!quiet) System.err.printf("run %s already reached max_steps=%d%n", runDir, cfg.maxSteps());
            return new Summary(st.step, false, Double.NaN, Map.of(), st.priorSeconds, 0, st.tokensSeen, 0, 0,
                    dist.world(), model.cost());
        }
        dist.broadcastParameters(module); // every rank starts from rank 0's weights (fresh or resumed)

        StopSignal stop = StopSignal.install();
        boolean stopping = false;
        module.train(true);
        try (Progress bar = Progress.start("train", cfg.maxSteps(), st.step, "steps", quiet)) {
            while (st.step < stopAt && !stopping) {
                double lr = setLearningRate(optimizer, st.step);
                long stepStart = System.nanoTime();
                Map<String, Double> stepMetrics = new LinkedHashMap<>();
                double microLoss = accumulateGradients(st, stepMetrics, autocast);
                // Every rank leaves with the mean gradient and loss, and stops at the same step if any rank was
                // asked to (Ctrl-C on one rank, or on the launcher, which signals all of them).
                double[] agreed = Engine.step(() -> dist.averageGradients(module, microLoss, stop.requested()));
                double loss = agreed[0];
                stopping = agreed[1] > 0 || stop.requested() && !dist.isDistributed();
                double commThisStep = dist.takeCommSeconds();
                st.commSeconds += commThisStep;
                st.sessionSteps++;
                st.step++;
                st.tokensSeen += data.tokensPerBatch() * cfg.gradAccum() * dist.world();
                if (skipNonFinite(st, loss, optimizer)) continue;

                double gnorm = clipAndStep(module, optimizer);
                st.stepNanos += System.nanoTime() - stepStart;
                st.lastLoss = loss;
                double tps = st.tokensPerSecond(dist.world());
                bar.stepTo(st.step);
                bar.message(String.format(" loss %.4f, %,.0f tok/s", loss, tps));

                Map<String, Double> row = new LinkedHashMap<>(); // the loop's metrics first, then the model's
                row.put("loss", loss);
                row.put("grad_norm", gnorm);
                if (dist.isDistributed()) row.put("comm_ms", commThisStep * 1000);
                stepMetrics.forEach((k, v) -> row.put(k, v / cfg.gradAccum()));
                log(st, row, lr, tps, metrics);
                if (writer && (st.step % cfg.evalEvery() == 0 || st.step == cfg.maxSteps())) {
                    long evalStart = System.nanoTime();
                    st.lastEval = evaluate(module);
                    st.lastEvalSeconds = (System.nanoTime() - evalStart) / 1e9;
                    metrics.append(st.step, "val", st.lastEval);
                    if (!quiet) System.err.printf("%nstep %d: val %s%n", st.step, format(st.lastEval));
                }
                if (writer && (st.step % cfg.checkpointEvery() == 0 || st.step == stopAt || stopping
                        || stop.requested())) {
                    checkpoints.save(new Checkpoints.State(st.step, data.state(), st.tokensSeen,
                            st.priorSeconds + st.seconds(), Map.of()), module, optimizer);
                }
            }
        } finally {
            stop.done();
        }
        if (writer && Files.exists(runDir.resolve(MetricsLog.FILE))) Plots.write(runDir);
        return new Summary(st.step, st.step < cfg.maxSteps(), st.lastLoss, st.lastEval,
                st.priorSeconds + st.seconds(), st.tokensPerSecond(dist.world()), st.tokensSeen,
                1000 * st.commSeconds / Math.max(st.sessionSteps, 1), st.lastEvalSeconds, dist.world(),
                model.cost());
    }

    /** Continues from the newest checkpoint if there is one: weights, optimizer, loader position and counters. */
    private void resume(State st, Checkpoints checkpoints, MetricsLog metrics, Module module, AdamW optimizer) {
        Optional<Path> latest = checkpoints.latest();
        if (latest.isEmpty()) return;
        Checkpoints.State s = Checkpoints.load(latest.get(), module, optimizer);
        st.step = s.step();
        st.tokensSeen = s.tokensSeen();
        st.priorSeconds = s.trainSeconds();
        data.restore(s.loader());
        if (writer) metrics.truncateAfter(st.step);
        if (!quiet) System.err.printf("resuming from %s (step %d)%n", latest.get(), st.step);
    }

    /** Sets the schedule's rate for {@code step} and seeds this step's randomness; returns the rate. */
    private double setLearningRate(AdamW optimizer, long step) {
        double lr = cfg.lrAt(step);
        for (OptimizerParamGroup g : groups(optimizer)) g.options().set_lr(lr);
        // Ranks draw different noise (their own stream per step); a single process keeps (seed, step).
        Engine.seed(Engine.stepSeed(cfg.seed(), step) + 0x9E3779B97F4A7C15L * dist.rank());
        return lr;
    }

    /** Forward and backward over grad_accum micro-batches; returns this rank's loss (the mean of the micro-batches). */
    private double accumulateGradients(State st, Map<String, Double> stepMetrics, boolean autocast) {
        double loss = 0;
        Scalar microBatches = c((double) cfg.gradAccum());
        for (int micro = 0; micro < cfg.gradAccum(); micro++) {
            TokenBatch batch = data.next();
            loss += Engine.step(() -> {
                Tensor l = forward(() -> model.loss(batch, stepMetrics), autocast).div(microBatches);
                l.backward();
                return l.item_double();
            });
            st.sessionTokens += data.tokensPerBatch();
        }
        return loss;
    }

    /** A non-finite loss: its update is dropped; too many in a row stop training. Returns true if skipped. */
    private boolean skipNonFinite(State st, double loss, AdamW optimizer) {
        if (Double.isFinite(loss)) {
            st.badInARow = 0;
            return false;
        }
        dist.zeroGradients(optimizer);
        st.badInARow++;
        System.err.printf("warning: step %d: loss is %s; the update was skipped (%d in a row)%n", st.step, loss,
                st.badInARow);
        if (st.badInARow >= cfg.maxBadSteps()) {
            throw new UserError("training stopped: " + st.badInARow + " non-finite losses in a row at step "
                    + st.step + ". Lower lr, or check the data; resume from the last checkpoint with the same "
                    + "command.");
        }
        return true;
    }

    /** Clips the gradient norm (if grad_clip > 0), steps the optimizer, clears gradients; returns the norm. */
    private double clipAndStep(Module module, AdamW optimizer) {
        double gnorm = Engine.step(() -> cfg.gradClip() > 0
                ? torch.clip_grad_norm_(module.parameters(), cfg.gradClip())
                : Double.NaN);
        Engine.step(() -> {
            optimizer.step();
        });
        dist.zeroGradients(optimizer);
        return gnorm;
    }

    /** Adds the step's metrics to the window; every log_every steps writes their means as a "train" line. */
    private void log(State st, Map<String, Double> stepMetrics, double lr, double tps, MetricsLog metrics) {
        stepMetrics.forEach((k, v) -> st.window.merge(k, v, Double::sum));
        st.windowSteps++;
        if (st.step % cfg.logEvery() != 0 && st.step != cfg.maxSteps()) return;
        Map<String, Double> row = new LinkedHashMap<>();
        for (var e : st.window.entrySet()) row.put(e.getKey(), e.getValue() / st.windowSteps);
        row.put("lr", lr);
        row.put("tokens", (double) st.tokensSeen);
        row.put("tokens_per_s", tps);
        row.put("resident_gb", Memory.residentGb()); // flat over a run: no memory grows with steps
        if (writer) metrics.append(st.step, "train", row);
        st.window.clear();
        st.windowSteps = 0;
    }

    /** Runs {@code forward} under CUDA bf16 autocast when asked; the backward pass runs outside it, as in PyTorch. */
    static Tensor forward(Supplier<Tensor> forward, boolean autocast) {
        if (!autocast) return forward.get();
        torch.set_autocast_dtype(torch.DeviceType.CUDA, torch.ScalarType.BFloat16);
        torch.set_autocast_enabled(torch.DeviceType.CUDA, true);
        try {
            return forward.get().to(torch.ScalarType.Float);
        } finally {
            torch.set_autocast_enabled(torch.DeviceType.CUDA, false);
            torch.clear_cache(); // at::autocast::clear_cache: drop the bf16 weight copies of this step
        }
    }

    private Map<String, Double> evaluate(Module module) {
        module.eval();
        try {
            return Engine.step(() -> {
                try (NoGradGuard ng = new NoGradGuard()) {
                    return model.evaluate(cfg.evalBatches());
                }
            });
        } finally {
            module.train(true);
        }
    }

    /** Metrics on one line as people read them: standard errors left out, small values to 3 digits. */
    public static String format(Map<String, Double> m) {
        StringBuilder sb = new StringBuilder();
        m.forEach((k, v) -> {
            if (k.contains("_se")) return; // standard errors stay in metrics.jsonl: the line stays readable
            sb.append(sb.length() == 0 ? "" : ", ").append(k).append('=').append(String.format(
                    Math.abs(v) >= 100 || v == Math.rint(v) ? "%.0f" : Math.abs(v) >= 0.01 ? "%.4f" : "%.3g", v));
        });
        return sb.toString();
    }

    /** AdamW over the trainable parameters: matrices decay, vectors (norm gains, biases) do not (as nanoGPT). */
    private AdamW optimizer(Module module) {
        TensorVector decay = new TensorVector();
        TensorVector noDecay = new TensorVector();
        var named = module.named_parameters(true);
        for (long i = 0; i < named.size(); i++) {
            Tensor p = named.get(i).value();
            if (!p.requires_grad()) continue; // frozen parts (CALM's autoencoder) are not optimised
            (p.dim() >= 2 ? decay : noDecay).push_back(p);
        }
        if (decay.size() + noDecay.size() == 0) throw new UserError("the model has no trainable parameters");
        AdamW opt = new AdamW(decay, adamw(cfg.weightDecay()));
        opt.add_param_group(new OptimizerParamGroup(noDecay, adamw(0.0)));
        return opt;
    }

    private AdamWOptions adamw(double weightDecay) {
        AdamWOptions o = new AdamWOptions(cfg.lr());
        o.betas().put(0, cfg.beta1()).put(1, cfg.beta2());
        o.weight_decay().put(weightDecay);
        return o;
    }

    private static List<OptimizerParamGroup> groups(AdamW optimizer) {
        OptimizerParamGroupVector v = optimizer.param_groups();
        List<OptimizerParamGroup> out = new ArrayList<>();
        for (long i = 0; i < v.size(); i++) out.add(v.get(i));
        return out;
    }

    /** Turns SIGINT/SIGTERM into a request to checkpoint and stop, and holds the JVM until that is done. */
    static final class StopSignal {
        private volatile boolean requested;
        private final CountDownLatch finished = new CountDownLatch(1);
        private Thread hook;

        static StopSignal install() {
            StopSignal s = new StopSignal();
            s.hook = new Thread(() -> {
                s.requested = true;
                System.err.println("\nstopping: writing a checkpoint after the current step (resume with the same "
                        + "command)...");
                try {
                    s.finished.await(120, TimeUnit.SECONDS);
                } catch (InterruptedException ignored) {
                    Thread.currentThread().interrupt();
                }
            }, "calm4j-stop");
            Runtime.getRuntime().addShutdownHook(s.hook);
            return s;
        }

        boolean requested() {
            return requested;
        }

        void done() {
            finished.countDown();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running: it was waiting for exactly this countDown
            }
        }
    }
}
