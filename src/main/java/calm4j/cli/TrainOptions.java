package calm4j.cli;

import calm4j.app.TrainingJob;
import calm4j.report.Summaries;
import calm4j.train.DataParallel;
import calm4j.train.Trainer;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.function.BiFunction;

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
     * Trains in this process, as one rank of a data-parallel job or alone, what {@code train} builds from this command
     * line's job; the rank that reports prints where the run got to. The exit status.
     */
    int run(EngineOptions engine, String what, BiFunction<TrainingJob, DataParallel, Trainer.Summary> train) {
        TrainingJob job = job(engine.quiet);
        Trainer.Summary s = DataParallel.runAsRank(System.getenv(), engine.engine().device(),
                (long) (distTimeout * 1000), (long) (bucketMb * 1e6), dist -> train.apply(job, dist));
        if (s != null) System.out.println(Summaries.trained(what, out, s)); // null: another rank reports
        return 0;
    }

    /** What this command line asks to train. */
    private TrainingJob job(boolean quiet) {
        TrainingJob job = new TrainingJob(data, out, config, quiet);
        return maxSteps != null ? job.withMaxSteps(maxSteps) : job;
    }
}
