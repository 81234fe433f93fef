package calm4j.demo;

import calm4j.ae.AutoencoderConfig;
import calm4j.app.AutoencoderRun;
import calm4j.app.CalmRun;
import calm4j.app.TokenLMRun;
import calm4j.app.TrainingJob;
import calm4j.calm.CalmConfig;
import calm4j.data.BuiltinCorpus;
import calm4j.engine.Folders;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import calm4j.report.ComparisonReport;
import calm4j.report.Samples;
import calm4j.report.Summaries;
import calm4j.run.Plots;
import calm4j.train.DataParallel;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Supplier;

/**
 * The README's main job, from nothing: fetch a built-in corpus, train its tokenizer, prepare it, train the chunk
 * autoencoder, a CALM on it and a token model with the same backbone, evaluate them, generate samples from both and
 * write the comparison report. Finished stages are reused on a second run; an interrupted stage resumes from its
 * last checkpoint; a stage that fails is named in the error.
 */
public final class Demo {
    /**
     * Step budgets of one demo: the full one, and the smoke run ({@link #QUICK}). {@code trainEvalBatches} (null:
     * the preset's) and {@code lmEvalEvery} set the language models' in-training evaluations, which draw the
     * report's Brier-n curves (five to ten points each).
     */
    public record Budget(long aeSteps, long lmSteps, long arSteps, int evalBatches, Integer trainEvalBatches,
                         int lmEvalEvery, int sampleTokens) {
        public static final Budget FULL = new Budget(3000, 1000, 1000, 16, null, 100, 48);
        public static final Budget QUICK = new Budget(300, 150, 150, 2, 2, 30, 32);

        /** These budgets with other step counts (null: keep this budget's). */
        public Budget withSteps(Long ae, Long lm, Long ar) {
            return new Budget(ae != null ? ae : aeSteps, lm != null ? lm : lmSteps, ar != null ? ar : arSteps,
                    evalBatches, trainEvalBatches, lmEvalEvery, sampleTokens);
        }
    }

    /**
     * What to run: the corpus ({@code sotu} or {@code gutenberg}), the folder everything goes to, the budgets,
     * config files for the autoencoder and the CALM (null: the presets), and the CALM's head (null: the config's).
     */
    public record Settings(String corpus, Path root, Budget budget, boolean quick, Path aeConfig, Path lmConfig,
                           String head, boolean quiet) {
        public Settings {
            if (head != null && !head.equals("energy") && !head.equals("flow")) {
                throw UserError.badValue("head", "must be energy or flow, got " + head);
            }
        }
    }

    /** Warm-up steps per model from which the full demo estimates its duration. */
    static final int WARMUP_STEPS = 8;

    /** What the samples continue. */
    static final String SAMPLE_PROMPT = "The state of the Union";

    private final Settings s;
    private final Budget b;
    private final PrintStream out;
    private final DataParallel one = DataParallel.single(); // the demo runs in this one process

    public Demo(Settings settings, PrintStream out) {
        this.s = settings;
        this.b = settings.budget();
        this.out = out;
    }

    /** Runs every stage not yet done; returns 0, or 130 when a training stage was interrupted (it resumes). */
    public int run() {
        Path data = s.root().resolve("data-" + s.corpus().toLowerCase());
        out.println("== 1/6 corpus: " + data);
        stage("corpus", () -> BuiltinCorpus.prepare(s.corpus(), data, null, BuiltinCorpus.DEFAULT_VOCAB_SIZE, null,
                s.quiet(), out::println));

        Path ae = s.root().resolve("ae"), lm = s.root().resolve("calm"), ar = s.root().resolve("token-lm");
        if (!Files.exists(ae)) estimate(data);

        out.println("== 2/6 chunk autoencoder: " + ae);
        if (train("autoencoder training", () -> AutoencoderRun.train(job(data, s.aeConfig(), ae)
                .withMaxSteps(b.aeSteps()), one))) return 130;
        stage("autoencoder evaluation", () -> {
            try (AutoencoderRun run = AutoencoderRun.load(ae)) {
                out.println(Summaries.autoencoder(run, data, run.evaluate(data, b.evalBatches()), false));
                return ae;
            }
        });

        out.println("== 3/6 CALM: " + lm);
        if (train("CALM training", () -> CalmRun.train(ae, lmJob(withHead(job(data, s.lmConfig(), lm)), b.lmSteps()),
                one))) return 130;
        stage("CALM evaluation", () -> {
            try (CalmRun run = CalmRun.load(lm)) {
                out.println(Summaries.calm(run, data, run.evaluate(data, b.evalBatches(), 8, null, null, s.quiet())));
                return lm;
            }
        });

        out.println("== 4/6 token model with the same backbone: " + ar);
        int k = CalmRun.readConfig(lm).autoencoder().patchSize(); // padded to the CALM's chunks, as it is scored
        if (train("token model training", () -> TokenLMRun.train(lmJob(job(data, null, ar), b.arSteps()), k, one))) {
            return 130;
        }
        stage("token model evaluation", () -> {
            try (TokenLMRun run = TokenLMRun.load(ar)) {
                out.println(Summaries.tokenModel(run, data, run.evaluate(data, b.evalBatches(), 8, s.quiet())));
                return lm;
            }
        });

        Path report = s.root().resolve("report");
        out.println("== 5/6 samples: " + report.resolve("samples.md"));
        stage("samples", () -> {
            out.println(Samples.write(List.of(lm, ar), SAMPLE_PROMPT, b.sampleTokens(), List.of(1.0, 0.5), 3, report));
            return report;
        });

        out.println("== 6/6 comparison");
        stage("comparison report", () -> {
            CalmRun.SavedConfig trained = CalmRun.readConfig(lm);
            List<ComparisonReport.Row> rows = List.of(ComparisonReport.measure(lm), ComparisonReport.measure(ar));
            out.println(ComparisonReport.write(rows, report, note(trained, rows.get(0), rows.get(1))));
            return report;
        });
        out.println("done: " + report.resolve("report.md") + ", " + report.resolve("samples.md")
                + " (training plots in each run's plots/)");
        if (s.quick()) {
            out.println("This was a smoke run: every stage works on this machine. 'calm demo' trains for longer (it "
                    + "prints its estimate first).");
        }
        return 0;
    }

    /**
     * The report's first paragraph: what kind of run this was, the CALM's recipe, and the two promises of the
     * method as measured here (quality at equal FLOPs, speed per token).
     */
    private String note(CalmRun.SavedConfig saved, ComparisonReport.Row c, ComparisonReport.Row t) {
        CalmConfig calm = saved.model();
        String budgets = String.format("autoencoder %,d steps, CALM %,d steps, token model %,d steps", b.aeSteps(),
                b.lmSteps(), b.arSteps());
        String recipe = (calm.head().equals("flow")
                ? "the flow-matching head (" + calm.flowSteps() + " midpoint steps, two network evaluations each)"
                : calm.refinesProposals() ? "the energy head refining chunks proposed by "
                + (calm.proposalRank() > 0 ? "a rank-" + calm.proposalRank() + " token head" : "the multi-token head")
                + " (one network evaluation per sample; docs/method.md §11, the head study's recipe: at equal "
                + "training FLOPs on sotu 71% +- 8% of the token model's Brier-1 with half its inference FLOPs per "
                + "token, docs/head-study/README.md)"
                : "the energy head (one network evaluation per sample)")
                + (calm.auxTokenWeight() > 0 && !calm.refinesProposals() ? String.format(" and the training-only "
                + "auxiliary token loss (aux_token_weight %s, %s head)", Plots.human(calm.auxTokenWeight()),
                calm.auxTokenHead()) : "");
        String measured = ComparisonReport.versus(c, t, saved.autoencoder().patchSize());
        if (s.quick()) {
            return "**This is a smoke run** (the quick demo: " + budgets + "). It shows that every stage of "
                    + "the pipeline works on this machine, not what the models can learn: at these budgets both have "
                    + "barely started, so Brier scores near 0 and samples that read as word salad are expected. "
                    + "`calm demo` trains for longer. The CALM was trained with " + recipe + ". " + measured;
        }
        return "Trained by `calm demo` (" + budgets + "); the CALM with " + recipe + ". " + measured + " Brier-n is "
                + "the chance that two samples of the next n tokens agree with the truth, corrected for agreeing "
                + "with each other; BrierLM (x100), their geometric mean, stays 0 until Brier-1..4 are all positive, "
                + "so at a budget two CPU cores train in an hour the curves below are the figures to read. A CALM "
                + "learns more slowly than a token model of the same backbone at this scale (README, 'What to "
                + "expect from a CALM at this scale').";
    }

    /**
     * Prints how long the full demo will take here: a few training steps of each model (with an evaluation, as
     * training runs them) timed in a scratch folder, scaled to the demo's budgets.
     */
    private void estimate(Path data) {
        Path scratch = s.root().resolve(".warmup");
        Folders.deleteQuietly(scratch);
        out.println("== timing " + WARMUP_STEPS + " warm-up steps of each model to estimate the duration ...");
        try {
            TrainConfig aeCfg = job(data, s.aeConfig(), null).train(AutoencoderRun.TRAIN);
            TrainConfig lmCfg = lmJob(job(data, s.lmConfig(), null), b.lmSteps()).train(CalmRun.TRAIN);
            TrainConfig arCfg = lmJob(job(data, null, null), b.arSteps()).train(TokenLMRun.TRAIN);
            int k = job(data, s.aeConfig(), null).model(AutoencoderConfig.DEFAULTS, AutoencoderConfig.class)
                    .patchSize();
            int last = b.evalBatches(); // each stage ends with an evaluation of this many batches
            double aeSec = seconds(AutoencoderRun.train(warmup(data, s.aeConfig(), scratch.resolve("ae")), one),
                    b.aeSteps(), aeCfg, last);
            double lmSec = seconds(CalmRun.train(scratch.resolve("ae"), withHead(warmup(data, s.lmConfig(),
                    scratch.resolve("calm"))), one), b.lmSteps(), lmCfg, last);
            double arSec = seconds(TokenLMRun.train(warmup(data, null, scratch.resolve("ar")), k, one),
                    b.arSteps(), arCfg, last);
            out.printf("   this demo takes about %s on this machine: the autoencoder %s, the CALM %s and the token "
                    + "model %s (training and evaluations), then a few seconds for samples and the report.%n",
                    duration(aeSec + lmSec + arSec), duration(aeSec), duration(lmSec), duration(arSec));
            out.println("   At the end: each model's held-out Brier-1..4 and BrierLM, three samples from each model "
                    + "at temperatures 1 and 1/2, their generation speeds, and a report in "
                    + s.root().resolve("report/report.md") + ". Ctrl-C stops; the same command resumes.");
        } finally {
            Folders.deleteQuietly(scratch);
        }
    }

    /**
     * A warm-up run: a few steps with an evaluation of one held-out batch halfway and at the end (the first pays for
     * what libtorch and the JVM set up once; the second is what the run's evaluations cost).
     */
    private static TrainingJob warmup(Path data, Path config, Path out) {
        return new TrainingJob(data, out, config, true).withMaxSteps(WARMUP_STEPS).withTrainKey("eval_batches", 1)
                .withTrainKey("eval_every", WARMUP_STEPS / 2);
    }

    /**
     * Seconds a stage of {@code steps} takes, from a warm-up run's summary: its steps at their measured rate, an
     * evaluation of eval_batches batches (the warm-up's last timed one, of one batch) every eval_every steps, and
     * the stage's closing evaluation of {@code finalBatches} batches.
     */
    static double seconds(Trainer.Summary warmup, long steps, TrainConfig cfg, int finalBatches) {
        double perStep = warmup.tokensSeen() / (double) warmup.step() / warmup.tokensPerSecond();
        double evaluations = Math.ceil((double) steps / cfg.evalEvery()) * cfg.evalBatches() + finalBatches;
        return steps * perStep + evaluations * warmup.lastEvalSeconds();
    }

    /** A duration for people: "40 s", "6.5 min", "47 min". */
    static String duration(double seconds) {
        if (seconds < 90) return String.format(java.util.Locale.ROOT, "%.0f s", seconds);
        double minutes = seconds / 60;
        return minutes < 10 ? String.format(java.util.Locale.ROOT, "%.1f min", minutes)
                : String.format(java.util.Locale.ROOT, "%.0f min", minutes);
    }

    /** A CALM's job with the head chosen, over the config file's. */
    private TrainingJob withHead(TrainingJob job) {
        return s.head() == null ? job : job.withModelKey("head", s.head());
    }

    /** A training stage of the demo: its evaluations as the budget has them (its steps are set by the caller). */
    private TrainingJob job(Path data, Path config, Path out) {
        TrainingJob job = new TrainingJob(data, out, config, s.quiet());
        return b.trainEvalBatches() == null ? job : job.withTrainKey("eval_batches", b.trainEvalBatches());
    }

    /**
     * A language model's stage: {@code steps} steps, evaluated often enough to draw a curve, and checkpointed at
     * each evaluation (an interrupted demo loses at most one interval).
     */
    private TrainingJob lmJob(TrainingJob job, long steps) {
        return job.withMaxSteps(steps).withTrainKey("eval_every", b.lmEvalEvery())
                .withTrainKey("checkpoint_every", b.lmEvalEvery());
    }

    /** Runs a stage in this process; an error in it is reported with the stage's name. */
    private static <T> T stage(String stage, Supplier<T> body) {
        try {
            return body.get();
        } catch (UserError e) {
            throw new UserError("stage '" + stage + "' failed: " + e.getMessage() + " (fix it and run the demo "
                    + "again: finished stages are reused)", e);
        } catch (RuntimeException e) {
            if (LibtorchErrors.isLibtorch(e)) throw LibtorchErrors.translate("demo (" + stage + ")", e);
            throw e;
        }
    }

    /** Runs a training stage; true when it was interrupted (the same demo command resumes it). */
    private boolean train(String name, Supplier<Trainer.Summary> body) {
        Trainer.Summary r = stage(name, body);
        out.printf("   step %d, %.0f s, %,.0f tokens/s%s%n", r.step(), r.seconds(), r.tokensPerSecond(),
                r.interrupted() ? " (interrupted: run the demo again to resume)" : "");
        return r.interrupted();
    }
}
