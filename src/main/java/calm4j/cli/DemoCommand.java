package calm4j.cli;

import calm4j.engine.Engine;
import calm4j.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * The README's main job, from nothing: fetch the default corpus, train its tokenizer, prepare it, train the chunk
 * autoencoder and evaluate it. Finished stages are reused on a second run.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "From nothing: fetch a corpus, train a tokenizer and a chunk autoencoder, evaluate it. "
                + "Stages already done are reused.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--corpus", defaultValue = "sotu", description = "sotu or gutenberg (default: ${DEFAULT-VALUE})")
    String corpus;

    @Option(names = "--dir", defaultValue = "runs/demo", description = "where everything goes (default: "
            + "${DEFAULT-VALUE})")
    Path dir;

    @Option(names = "--ae-steps", description = "autoencoder training steps (default: the config's)")
    Long aeSteps;

    @Option(names = "--ae-config", description = "autoencoder config JSON (default: built-in)")
    Path aeConfig;

    @Mixin
    EngineOptions engine;

    @Override
    public Integer call() {
        Engine e = engine.engine();
        Path data = dir.resolve("data-" + corpus.toLowerCase());
        System.out.println("== 1/3 corpus: " + data);
        DataCommand.prepareBuiltin(corpus, data, null, 4096, null, engine.quiet);
        Path ae = dir.resolve("ae");
        System.out.println("== 2/3 chunk autoencoder: " + ae);
        TrainOptions options = new TrainOptions();
        options.data = data;
        options.config = aeConfig;
        options.out = ae;
        options.maxSteps = aeSteps;
        Trainer.Summary s = AeCommand.Train.train(options, engine.quiet);
        if (s.interrupted()) return 130;
        System.out.println("== 3/3 evaluation");
        return Calm.run("ae", "eval", "--ckpt", ae.toString(), "--data", data.toString(), "--threads",
                String.valueOf(e.threads()));
    }
}
