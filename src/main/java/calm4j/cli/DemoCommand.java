package calm4j.cli;

import calm4j.demo.Demo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code calm demo}: the options of {@link Demo}, the README's main job. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "From nothing: fetch a corpus, train a tokenizer, a chunk autoencoder, a CALM and a token "
                + "model with the same backbone, evaluate both, generate samples and write the comparison report. "
                + "Stages already done are reused; an interrupted one resumes. --quick: the same stages on small "
                + "budgets, as a smoke run.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--quick", description = "a first look: the same stages and report on small budgets (a smoke "
            + "run: the models barely start learning; it prints its time estimate first)")
    boolean quick;

    @Option(names = "--corpus", defaultValue = "sotu", description = "sotu or gutenberg")
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
            + "preset's, the energy head refining proposals of a low-rank token head, unless --lm-config names one; "
            + "see the README, 'What to expect from a CALM at this scale')")
    String head;

    @Mixin
    EngineOptions engine;

    @Override
    public Integer call() {
        engine.engine();
        Demo.Budget budget = (quick ? Demo.Budget.QUICK : Demo.Budget.FULL).withSteps(aeSteps, lmSteps, arSteps);
        Path root = dir != null ? dir : Path.of(quick ? "runs/demo-quick" : "runs/demo");
        return new Demo(new Demo.Settings(corpus, root, budget, quick, aeConfig, lmConfig, head, engine.quiet),
                System.out).run();
    }
}
