package calm4j.cli;

import calm4j.app.LanguageModel;
import calm4j.app.TrainingJob;
import calm4j.report.Summaries;
import calm4j.train.DataParallel;
import calm4j.train.Trainer;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.function.Function;

/** The options every {@code train} command shares, and how its config file is read. */
final class TrainOptions {
    @Option(names = "--data", required = true, description = "a prepared corpus folder")
    Path data;

    @Option(names = "--config", description = "a JSON file with \"model\" and \"train\" sections (default: built-in "
            + "defaults; keys left out take the defaults)")
    Path config;

    @Option(names = "--out", required = true, description = "the run folder (resumed if it exists)")
    Path out;

    @Option(names = "--max-steps", description = "override train.max_steps")
    Long maxSteps;

    @Option(names = "--dist-timeout", defaultValue = "300", description = "data-parallel runs: seconds a rank waits "
            + "for the others (rendezvous, gradient averaging) before failing; must exceed an evaluation's duration, "
            + "which rank 0 runs alone")
    double distTimeout;

    @Option(names = "--bucket-mb", defaultValue = "25", description = "data-parallel runs: size of a flat gradient "
            + "bucket in MB")
    double bucketMb;

    /**
     * Runs {@code train} in this process: one rank of a data-parallel job when started with torchrun's variables, or
     * alone. Returns the summary on the process that reports (rank 0), null on the others.
     */
    Trainer.Summary runAsRank(EngineOptions engine, Function<DataParallel, Trainer.Summary> train) {
        try (DataParallel dist = DataParallel.fromEnvironment(System.getenv(), engine.engine().device(),
                (long) (distTimeout * 1000), (long) (bucketMb * 1e6))) {
            Trainer.Summary s = train.apply(dist);
            if (!dist.isWriter()) return null;
            if (dist.isDistributed()) {
                System.out.printf("data-parallel over %d ranks: %.1f ms per step averaging gradients%n",
                        dist.world(), s.commMillisPerStep());
            }
            return s;
        }
    }

    /**
     * The lines every train command ends with: where the run got to, at what speed, and its last evaluation; with
     * {@code languageModel}, also the trained model's size and FLOPs (read back from the run folder).
     */
    void report(String what, Trainer.Summary s, boolean languageModel) {
        if (!languageModel) {
            System.out.println(Summaries.trained(what, out, s, null));
            return;
        }
        try (LanguageModel lm = LanguageModel.load(out)) {
            System.out.println(Summaries.trained(what, out, s, lm));
        }
    }

    /** What this command line asks to train. */
    TrainingJob job(boolean quiet) {
        TrainingJob job = new TrainingJob(data, out, config, quiet);
        return maxSteps != null ? job.withMaxSteps(maxSteps) : job;
    }
}
