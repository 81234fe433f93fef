package calm4j.cli;

import calm4j.engine.Engine;
import calm4j.train.DataParallel;
import calm4j.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * The README's main job, from nothing: fetch the default corpus, train its tokenizer, prepare it, train the chunk
 * autoencoder, a CALM on it and a token model with the same backbone, evaluate them, generate samples from both
 * and write the comparison report. Finished stages are reused on a second run; an interrupted stage resumes from
 * its last checkpoint.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "From nothing: fetch a corpus, train a tokenizer, a chunk autoencoder, a CALM and a token "
                + "model with the same backbone, evaluate both, generate samples and write the comparison report. "
                + "Stages already done are reused; an interrupted one resumes.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--corpus", defaultValue = "sotu", description = "sotu or gutenberg (default: ${DEFAULT-VALUE})")
    String corpus;

    @Option(names = "--dir", defaultValue = "runs/demo", description = "where everything goes (default: "
            + "${DEFAULT-VALUE})")
    Path dir;

    @Option(names = "--ae-steps", defaultValue = "3000", description = "autoencoder training steps (default: "
            + "${DEFAULT-VALUE}; 'calm ae train' defaults to 12000)")
    long aeSteps;

    @Option(names = "--lm-steps", defaultValue = "1000", description = "CALM training steps (default: "
            + "${DEFAULT-VALUE}; 'calm lm train' defaults to 1500)")
    long lmSteps;

    @Option(names = "--ar-steps", defaultValue = "1000", description = "token model training steps (default: "
            + "${DEFAULT-VALUE})")
    long arSteps;

    @Option(names = "--ae-config", description = "autoencoder config JSON (default: built-in)")
    Path aeConfig;

    @Option(names = "--lm-config", description = "CALM config JSON (default: built-in)")
    Path lmConfig;

    @Mixin
    EngineOptions engine;

    @Override
    public Integer call() {
        Engine e = engine.engine();
        String threads = String.valueOf(e.threads());
        DataParallel one = DataParallel.single(); // the demo runs in this one process
        Path data = dir.resolve("data-" + corpus.toLowerCase());
        System.out.println("== 1/6 corpus: " + data);
        DataCommand.prepareBuiltin(corpus, data, null, 4096, null, engine.quiet);

        Path ae = dir.resolve("ae");
        System.out.println("== 2/6 chunk autoencoder: " + ae);
        if (train(() -> AeCommand.Train.train(options(data, aeConfig, ae, aeSteps), engine.quiet, one))) return 130;
        Calm.run("ae", "eval", "--ckpt", ae.toString(), "--data", data.toString(), "--threads", threads);

        Path lm = dir.resolve("calm");
        System.out.println("== 3/6 CALM: " + lm);
        if (train(() -> LmCommand.Train.train(ae, options(data, lmConfig, lm, lmSteps), engine.quiet, one))) return 130;
        Calm.run("lm", "eval", "--ckpt", lm.toString(), "--data", data.toString(), "--batches", "16", "--threads",
                threads);

        Path ar = dir.resolve("token-lm");
        System.out.println("== 4/6 token model with the same backbone: " + ar);
        if (train(() -> ArCommand.Train.train(options(data, null, ar, arSteps), 4, engine.quiet, one))) return 130;
        Calm.run("ar", "eval", "--ckpt", ar.toString(), "--data", data.toString(), "--batches", "16", "--threads",
                threads);

        System.out.println("== 5/6 samples");
        String prompt = "The state of the Union";
        for (String t : new String[] {"1", "0.5"}) {
            System.out.println("-- CALM, temperature " + t);
            Calm.run("generate", "--ckpt", lm.toString(), "--prompt", prompt, "--max-tokens", "48", "--temperature",
                    t, "--batch", "3", "--seed", "1", "--threads", threads);
        }
        System.out.println("-- token model, temperature 1");
        Calm.run("ar", "generate", "--ckpt", ar.toString(), "--prompt", prompt, "--max-tokens", "48", "--batch", "3",
                "--seed", "1", "--threads", threads);

        System.out.println("== 6/6 comparison");
        Path report = dir.resolve("report");
        Calm.run("compare", "--runs", lm.toString(), ar.toString(), "--out", report.toString(), "--threads", threads);
        System.out.println("done: " + report.resolve("report.md") + " (training plots in each run's plots/)");
        return 0;
    }

    private static TrainOptions options(Path data, Path config, Path out, long steps) {
        TrainOptions o = new TrainOptions();
        o.data = data;
        o.config = config;
        o.out = out;
        o.maxSteps = steps;
        return o;
    }

    /** Runs a training stage; true when it was interrupted (the same demo command resumes it). */
    private static boolean train(java.util.function.Supplier<Trainer.Summary> stage) {
        Trainer.Summary s = stage.get();
        System.out.printf("   step %d, %.0f s, %,.0f tokens/s%s%n", s.step(), s.seconds(), s.tokensPerSecond(),
                s.interrupted() ? " (interrupted: run the demo again to resume)" : "");
        return s.interrupted();
    }
}
