package calm4j.cli;

import calm4j.app.AutoencoderRun;
import calm4j.app.CalmRun;
import calm4j.app.TokenLMRun;
import calm4j.app.TrainingJob;
import calm4j.data.CorpusPreparer;
import calm4j.calm.CalmConfig;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import calm4j.report.ComparisonReport;
import calm4j.report.Samples;
import calm4j.run.Plots;
import calm4j.train.DataParallel;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

/**
 * The README's main job, from nothing: fetch the default corpus, train its tokenizer, prepare it, train the chunk
 * autoencoder, a CALM on it and a token model with the same backbone, evaluate them, generate samples from both
 * and write the comparison report. Finished stages are reused on a second run; an interrupted stage resumes from
 * its last checkpoint. A stage that fails stops the demo with its exit status and names the stage.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "From nothing: fetch a corpus, train a tokenizer, a chunk autoencoder, a CALM and a token "
                + "model with the same backbone, evaluate both, generate samples and write the comparison report. "
                + "Stages already done are reused; an interrupted one resumes. --quick: the same stages on small "
                + "budgets, as a smoke run.")
final class DemoCommand implements Callable<Integer> {
    /**
     * Step budgets of one demo: the full one, and the smoke run of {@code --quick}. {@code trainEvalBatches} (null:
     * the preset's) and {@code lmEvalEvery} set the language models' in-training evaluations, which draw the
     * report's Brier-n curves (five to ten points each).
     */
    record Budget(long aeSteps, long lmSteps, long arSteps, int evalBatches, Integer trainEvalBatches,
                  int lmEvalEvery, int sampleTokens) {
        static final Budget FULL = new Budget(3000, 1000, 1000, 16, null, 100, 48);
        static final Budget QUICK = new Budget(300, 150, 150, 2, 2, 30, 32);
    }

    /** Warm-up steps per model from which the full demo estimates its duration. */
    static final int WARMUP_STEPS = 8;

    @Option(names = "--quick", description = "a first look: the same stages and report on small budgets (a smoke "
            + "run: the models barely start learning; it prints its time estimate first)")
    boolean quick;

    @Option(names = "--corpus", defaultValue = "sotu", description = "sotu or gutenberg (default: ${DEFAULT-VALUE})")
    String corpus;

    @Option(names = "--dir", description = "where everything goes (default: runs/demo, or runs/demo-quick with "
            + "--quick)")
    Path dir;

    @Option(names = "--ae-steps", description = "autoencoder training steps (default: 3000, --quick 300; 'calm ae "
            + "train' defaults to 12000)")
    Long aeSteps;

    @Option(names = "--lm-steps", description = "CALM training steps (default: 1000, --quick 150; 'calm lm train' "
            + "defaults to 1500)")
    Long lmSteps;

    @Option(names = "--ar-steps", description = "token model training steps (default: 1000, --quick 150)")
    Long arSteps;

    @Option(names = "--ae-config", description = "autoencoder config JSON (default: built-in)")
    Path aeConfig;

    @Option(names = "--lm-config", description = "CALM config JSON (default: built-in)")
    Path lmConfig;

    @Option(names = "--head", description = "the CALM's generative head, energy or flow (default: the 'calm' "
            + "preset's, the energy head refining the multi-token head's proposals, unless --lm-config names one; "
            + "see the README, 'Which "
            + "head, at which budget')")
    String head;

    @Mixin
    EngineOptions engine;

    /** What the samples continue. */
    static final String SAMPLE_PROMPT = "The state of the Union";

    /** A stage that failed: its name and the exit status it gave. */
    private static final class StageFailed extends RuntimeException {
        final int status;

        StageFailed(String stage, int status) {
            super(stage);
            this.status = status;
        }
    }

    @Override
    public Integer call() {
        Budget defaults = quick ? Budget.QUICK : Budget.FULL;
        Budget b = new Budget(aeSteps != null ? aeSteps : defaults.aeSteps(),
                lmSteps != null ? lmSteps : defaults.lmSteps(), arSteps != null ? arSteps : defaults.arSteps(),
                defaults.evalBatches(), defaults.trainEvalBatches(), defaults.lmEvalEvery(), defaults.sampleTokens());
        Path root = dir != null ? dir : Path.of(quick ? "runs/demo-quick" : "runs/demo");
        try {
            return run(b, root);
        } catch (StageFailed f) {
            System.err.println("calm demo: error: stage '" + f.getMessage() + "' failed (exit " + f.status
                    + "); fix what it says above and run the demo again: finished stages are reused");
            return f.status;
        }
    }

    private int run(Budget b, Path root) {
        engine.engine();
        DataParallel one = DataParallel.single(); // the demo runs in this one process
        Path data = root.resolve("data-" + corpus.toLowerCase());
        System.out.println("== 1/6 corpus: " + data);
        stage("corpus", () -> DataCommand.prepareBuiltin(corpus, data, null, 4096, null, engine.quiet));

        Path ae = root.resolve("ae"), lm = root.resolve("calm"), ar = root.resolve("token-lm");
        if (!Files.exists(ae)) estimate(b, root, data, one);

        System.out.println("== 2/6 chunk autoencoder: " + ae);
        if (train("autoencoder training", () -> AutoencoderRun.train(job(data, aeConfig, ae, b)
                .withMaxSteps(b.aeSteps()), one))) return 130;
        stage("autoencoder evaluation", () -> {
            AutoencoderRun run = AutoencoderRun.load(ae);
            AeCommand.Eval.print(run, data, run.evaluate(data, b.evalBatches()), false);
            run.tokenizer().close();
            return run;
        });

        System.out.println("== 3/6 CALM: " + lm);
        String chosen = head();
        if (train("CALM training", () -> CalmRun.train(ae, lmJob(calmJob(data, lm, b, chosen), b, b.lmSteps()),
                one))) return 130;
        stage("CALM evaluation", () -> {
            CalmRun run = CalmRun.load(lm);
            LmCommand.Eval.print(run, data, run.evaluate(data, b.evalBatches(), 8, null, null, engine.quiet));
            run.tokenizer().close();
            return run;
        });

        System.out.println("== 4/6 token model with the same backbone: " + ar);
        if (train("token model training", () -> TokenLMRun.train(lmJob(job(data, null, ar, b), b, b.arSteps()),
                4, one))) return 130;
        stage("token model evaluation", () -> {
            TokenLMRun run = TokenLMRun.load(ar);
            ArCommand.Eval.print(run, data, run.evaluate(data, b.evalBatches(), 8, engine.quiet));
            run.tokenizer().close();
            return run;
        });

        Path report = root.resolve("report");
        System.out.println("== 5/6 samples: " + report.resolve("samples.md"));
        stage("samples", () -> {
            System.out.println(Samples.write(List.of(lm, ar), SAMPLE_PROMPT, b.sampleTokens(), List.of(1.0, 0.5), 3,
                    report));
            return report;
        });

        System.out.println("== 6/6 comparison");
        stage("comparison report", () -> {
            CalmRun.SavedConfig trained = CalmRun.readConfig(lm);
            List<ComparisonReport.Row> rows = List.of(ComparisonReport.measure(lm), ComparisonReport.measure(ar));
            System.out.println(ComparisonReport.write(rows, report, note(b, trained, rows.get(0), rows.get(1))));
            return report;
        });
        System.out.println("done: " + report.resolve("report.md") + ", " + report.resolve("samples.md")
                + " (training plots in each run's plots/)");
        if (quick) {
            System.out.println("This was a smoke run: every stage works on this machine. 'calm demo' trains for "
                    + "longer (it prints its estimate first).");
        }
        return 0;
    }

    /**
     * The report's first paragraph: what kind of run this was, the CALM's recipe, and the two promises of the
     * method as measured here (quality at equal FLOPs, speed per token).
     */
    private String note(Budget b, CalmRun.SavedConfig saved, ComparisonReport.Row c, ComparisonReport.Row t) {
        CalmConfig calm = saved.model();
        String budgets = String.format("autoencoder %,d steps, CALM %,d steps, token model %,d steps", b.aeSteps(),
                b.lmSteps(), b.arSteps());
        String recipe = (calm.head().equals("flow")
                ? "the flow-matching head (" + calm.flowSteps() + " midpoint steps, two network evaluations each)"
                : calm.refinesProposals() ? "the energy head refining chunks proposed by the multi-token head (one "
                + "network evaluation per sample; docs/method.md §11, the head study's recipe: at 1,000 steps 85% of "
                + "the token model's Brier-1 at equal training FLOPs on sotu, docs/head-study/README.md)"
                : "the energy head (one network evaluation per sample)")
                + (calm.auxTokenWeight() > 0 && !calm.refinesProposals() ? String.format(" and the training-only "
                + "auxiliary token loss (aux_token_weight %s, %s head)", Plots.human(calm.auxTokenWeight()),
                calm.auxTokenHead()) : "");
        String measured = ComparisonReport.versus(c, t, saved.autoencoder().patchSize());
        if (quick) {
            return "**This is a smoke run** (`calm demo --quick`: " + budgets + "). It shows that every stage of "
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
    private void estimate(Budget b, Path root, Path data, DataParallel one) {
        Path scratch = root.resolve(".warmup");
        CorpusPreparer.deleteTree(scratch);
        System.out.println("== timing " + WARMUP_STEPS + " warm-up steps of each model to estimate the duration ...");
        try {
            TrainConfig aeCfg = job(data, aeConfig, null, b).train(AutoencoderRun.TRAIN);
            TrainConfig lmCfg = lmJob(job(data, lmConfig, null, b), b, b.lmSteps()).train(CalmRun.TRAIN);
            TrainConfig arCfg = lmJob(job(data, null, null, b), b, b.arSteps()).train(TokenLMRun.TRAIN);
            double aeSec = seconds(AutoencoderRun.train(warmup(data, aeConfig, scratch.resolve("ae")), one),
                    b.aeSteps(), aeCfg);
            TrainingJob lmWarmup = warmup(data, lmConfig, scratch.resolve("calm"));
            double lmSec = seconds(CalmRun.train(scratch.resolve("ae"), head() == null ? lmWarmup
                    : lmWarmup.withModelKey("head", head()), one), b.lmSteps(), lmCfg);
            double arSec = seconds(TokenLMRun.train(warmup(data, null, scratch.resolve("ar")), 4, one), b.arSteps(),
                    arCfg);
            double minutes = (aeSec + lmSec + arSec) / 60;
            System.out.printf("   this demo trains for about %.0f min on this machine (autoencoder %.0f min, CALM "
                    + "%.0f min, token model %.0f min), then evaluates, samples and reports for a few more.%n",
                    Math.max(1, minutes), aeSec / 60, lmSec / 60, arSec / 60);
            System.out.println("   At the end: each model's held-out Brier-1..4 and BrierLM, three samples from each "
                    + "model at temperatures 1 and 1/2, their generation speeds, and a report in "
                    + root.resolve("report/report.md") + ". Ctrl-C stops; the same command resumes.");
        } finally {
            CorpusPreparer.deleteTree(scratch);
        }
    }

    /** A warm-up run: a few steps, then an evaluation of one held-out batch. */
    private static TrainingJob warmup(Path data, Path config, Path out) {
        return new TrainingJob(data, out, config, true).withMaxSteps(WARMUP_STEPS).withTrainKey("eval_batches", 1);
    }

    /**
     * Seconds a run of {@code steps} takes, from a warm-up run's summary: its steps at their measured rate, and an
     * evaluation of eval_batches batches (the warm-up timed one) every eval_every steps.
     */
    private static double seconds(Trainer.Summary warmup, long steps, TrainConfig cfg) {
        double perStep = warmup.tokensSeen() / (double) warmup.step() / warmup.tokensPerSecond();
        double perEvalBatch = Math.max(0, warmup.seconds() - warmup.step() * perStep);
        return steps * perStep + Math.ceil((double) steps / cfg.evalEvery()) * cfg.evalBatches() * perEvalBatch;
    }

    /** The head --head asks for; null: the config file's, else the preset's. */
    private String head() {
        if (head != null && !head.equals("energy") && !head.equals("flow")) {
            throw new UserError("--head must be energy or flow");
        }
        return head;
    }

    /** The CALM stage's job: the head chosen, over the config file. */
    private TrainingJob calmJob(Path data, Path out, Budget b, String chosen) {
        TrainingJob job = job(data, lmConfig, out, b);
        return chosen == null ? job : job.withModelKey("head", chosen);
    }

    /** A training stage of the demo: its evaluations as the budget has them (its steps are set by the caller). */
    private TrainingJob job(Path data, Path config, Path out, Budget b) {
        TrainingJob job = new TrainingJob(data, out, config, engine.quiet);
        return b.trainEvalBatches() == null ? job : job.withTrainKey("eval_batches", b.trainEvalBatches());
    }

    /**
     * A language model's stage: {@code steps} steps, evaluated often enough to draw a curve, and checkpointed at
     * each evaluation (an interrupted demo loses at most one interval).
     */
    private static TrainingJob lmJob(TrainingJob job, Budget b, long steps) {
        return job.withMaxSteps(steps).withTrainKey("eval_every", b.lmEvalEvery())
                .withTrainKey("checkpoint_every", b.lmEvalEvery());
    }

    /** Runs a stage in this process; an error in it is reported with the stage's name. */
    private static <T> T stage(String stage, Supplier<T> body) {
        try {
            return body.get();
        } catch (UserError e) {
            throw new UserError("stage '" + stage + "' failed: " + e.getMessage());
        } catch (RuntimeException e) {
            if (LibtorchErrors.isLibtorch(e)) throw LibtorchErrors.translate("demo (" + stage + ")", e);
            throw e;
        }
    }

    /** Runs a training stage; true when it was interrupted (the same demo command resumes it). */
    private static boolean train(String name, Supplier<Trainer.Summary> body) {
        Trainer.Summary s = stage(name, body);
        System.out.printf("   step %d, %.0f s, %,.0f tokens/s%s%n", s.step(), s.seconds(), s.tokensPerSecond(),
                s.interrupted() ? " (interrupted: run the demo again to resume)" : "");
        return s.interrupted();
    }
}
