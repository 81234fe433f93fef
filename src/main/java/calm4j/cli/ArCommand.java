package calm4j.cli;

import calm4j.app.TokenLMRun;
import calm4j.report.Summaries;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "ar", mixinStandardHelpOptions = true,
        description = "The token-level baseline: the same backbone, one token per step, cross-entropy.",
        subcommands = {ArCommand.Train.class, ArCommand.Eval.class, ArCommand.Generate.class})
final class ArCommand {
    @Command(name = "train", mixinStandardHelpOptions = true, description = "Train (or resume) a token baseline.")
    static final class Train implements Callable<Integer> {
        @Option(names = "--patch-size", defaultValue = "4", description = "pad documents to multiples of this K, as "
                + "the CALM it is compared with")
        int k;

        @Mixin
        TrainOptions options;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            return options.run(engine, "token LM", (job, dist) -> TokenLMRun.train(job, k, dist));
        }
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Held-out cross-entropy and BrierLM, at every position and at chunk-aligned positions.")
    static final class Eval implements Callable<Integer> {
        @Option(names = "--ckpt", required = true, description = "a token LM run folder")
        Path run;

        @Option(names = "--data", required = true, description = "a prepared corpus (its val split is used)")
        Path data;

        @Option(names = "--batches", defaultValue = "1000000")
        long batches;

        @Option(names = "--batch-size", defaultValue = "8")
        int batchSize;

        @Mixin
        EngineOptions engine;

        @Mixin
        WeightOptions weights;

        @Override
        public Integer call() {
            engine.engine();
            TokenLMRun r = TokenLMRun.load(run);
            r.forInference(weights.type());
            System.out.println(Summaries.tokenModel(r, data, r.evaluate(data, batches, batchSize, engine.quiet)));
            return 0;
        }
    }

    @Command(name = "generate", description = "The same as 'calm generate', which takes either kind of run.")
    static final class Generate extends GenerateCommand {}
}
