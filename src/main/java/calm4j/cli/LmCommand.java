package calm4j.cli;

import calm4j.app.CalmRun;
import calm4j.engine.UserError;
import calm4j.generate.GenerationOptions;
import calm4j.generate.Sampling;
import calm4j.report.Summaries;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "lm", mixinStandardHelpOptions = true,
        description = "The CALM language model: next-vector prediction trained with the energy score.",
        subcommands = {LmCommand.Train.class, LmCommand.Eval.class})
final class LmCommand {

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Train (or resume) a CALM on a prepared corpus, on top of a trained autoencoder (frozen).")
    static final class Train implements Callable<Integer> {
        @Option(names = "--ae", description = "the autoencoder run folder (a new CALM)")
        Path aeRun;

        @Option(names = "--init", description = "fine-tune: start from this CALM run's weights (an imported release "
                + "or a calm4j run) with a fresh optimizer and schedule; its autoencoder and tokenizer are used")
        Path init;

        @Option(names = "--backbone-from", description = "a new CALM: warm-start its backbone from this token model "
                + "run (calm ar train) with the same backbone shape and tokenizer; its FLOPs are recorded")
        Path backboneFrom;

        @Mixin
        TrainOptions options;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            if (backboneFrom != null && init != null) {
                throw new UserError("--backbone-from starts a new CALM; --init fine-tunes one: give one of them");
            }
            if ((aeRun == null) == (init == null)) {
                throw new UserError("give either --ae AE_RUN (a new CALM) or --init CALM_RUN (fine-tuning)");
            }
            return options.run(engine, "CALM", (job, dist) -> init != null
                    ? CalmRun.fineTune(init, job, dist) : CalmRun.train(aeRun, backboneFrom, job, dist));
        }
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "BrierLM (x100) of a CALM on held-out data, with Brier-1..4 and standard errors.")
    static final class Eval implements Callable<Integer> {
        @Option(names = "--ckpt", required = true, description = "a CALM run folder")
        Path run;

        @Option(names = "--data", required = true, description = "a prepared corpus (its val split is used); with "
                + "--protocol official, a text file (.jsonl/.json such as wikitext_document_level-test.json, .txt, "
                + ".gz) or a folder of them")
        Path data;

        @Option(names = "--protocol", defaultValue = "calm4j", description = "calm4j (blocks from the prepared "
                + "corpus, the default) or official (the authors' evaluation: each document with BOS in front, "
                + "concatenated, cut into blocks of --block-tokens, remainder dropped, batch 1)")
        String protocol;

        @Option(names = "--block-tokens", defaultValue = "1024", description = "--protocol official: tokens per block "
                + "(the authors' number)")
        int blockTokens;

        @Option(names = "--batches", defaultValue = "1000000", description = "at most this many batches of blocks")
        long batches;

        @Option(names = "--batch-size", defaultValue = "8", description = "blocks per batch")
        int batchSize;

        @Option(names = "--block-chunks", description = "chunks per evaluation block (default: the config's "
                + "eval_block_chunks; BrierLM depends on it)")
        Integer blockChunks;

        @Option(names = "--samples", description = "head samples per position (default: the config's eval_samples, "
                + "2 as in the paper; more estimate the same BrierLM with a smaller standard error)")
        Integer samples;

        @Option(names = "--flow-steps", description = "flow head: midpoint steps per sample (default: the config's "
                + "flow_steps)")
        Integer flowSteps;

        @Option(names = "--decode", description = "argmax or sample: how sampled latents become tokens (default: the "
                + "config's; sample draws each token from the decoder's softmax, docs/method.md §12)")
        String decode;

        @Option(names = "--teacher", description = "a CALM with a distilled student: score the proposal-refining "
                + "teacher head instead of the student (docs/method.md §13)")
        boolean teacher;

        @Option(names = "--temperature", defaultValue = "1", description = "score the sampler at this temperature (< "
                + "1: each sample drawn from a pool of --pool by the T=1/n rule, as generation does, the model's own "
                + "distribution)")
        double temperature;

        @Option(names = "--pool", defaultValue = "200", description = "--temperature < 1: head samples per drawn "
                + "chunk")
        int pool;

        @Mixin
        WeightOptions weights;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            CalmRun calm = CalmRun.load(run, new CalmRun.Sampler(flowSteps, decode, teacher));
            calm.forInference(weights.type());
            var generation = new GenerationOptions(pool, false, GenerationOptions.DEFAULT.maxDraws());
            System.out.println(Summaries.calmScored(calm, data, new Summaries.CalmScoring(protocol, batches,
                    batchSize, blockChunks, samples, blockTokens, Sampling.at(temperature), generation), engine.quiet));
            return 0;
        }
    }
}
