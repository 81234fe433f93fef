package calm4j.cli;

import calm4j.app.CalmRun;
import calm4j.app.TrainingJob;
import calm4j.calm.CalmEval;
import calm4j.calm.FlowHead;
import calm4j.data.ConcatenatedBlocks;
import calm4j.engine.UserError;
import calm4j.nn.Layers;
import calm4j.train.Trainer;
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
            Path out = options.out;
            if (backboneFrom != null && init != null) {
                throw new UserError("--backbone-from starts a new CALM; --init fine-tunes one: give one of them");
            }
            if ((aeRun == null) == (init == null)) {
                throw new UserError("give either --ae AE_RUN (a new CALM) or --init CALM_RUN (fine-tuning)");
            }
            TrainingJob job = options.job(engine.quiet);
            Trainer.Summary s = options.runAsRank(engine, dist -> init != null
                    ? CalmRun.fineTune(init, job, dist) : CalmRun.train(aeRun, backboneFrom, job, dist));
            if (s == null) return 0; // another rank reports
            CalmRun run = CalmRun.load(out);
            var cfg = run.model().config();
            var ae = run.model().autoencoder().config();
            long tokens = s.tokensSeen();
            double perToken = cfg.trainingFlopsPerChunk(ae) / ae.patchSize();
            options.report("CALM", s, String.format("; %,d trainable parameters; training FLOPs %.3g (%,d tokens x "
                    + "%.3g per token); inference %.3g FLOPs/token", Layers.parameterCount(run.model(), true),
                    tokens * perToken, tokens, perToken, cfg.inferenceFlopsPerToken(ae)));
            run.tokenizer().close();
            return 0;
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
                + "(default: ${DEFAULT-VALUE}, as the authors')")
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

        @Option(names = "--temperature", defaultValue = "1", description = "score the sampler at this temperature "
                + "(< 1: each sample drawn from a pool of --pool by the T=1/n rule, as generation does; default: "
                + "${DEFAULT-VALUE}, the model's own distribution)")
        double temperature;

        @Option(names = "--pool", defaultValue = "200", description = "--temperature < 1: head samples per drawn chunk "
                + "(default: ${DEFAULT-VALUE})")
        int pool;

        @Mixin
        WeightOptions weights;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            CalmRun calm = CalmRun.load(run);
            calm.forInference(weights.type());
            if (flowSteps != null) {
                if (!(calm.model().head() instanceof FlowHead flow)) {
                    throw new UserError("--flow-steps is for a CALM with the flow head; " + run + " has the "
                            + calm.model().config().head() + " head");
                }
                flow.setSampleSteps(flowSteps);
            }
            if (protocol.equals("official")) return official(calm);
            if (!protocol.equals("calm4j")) throw new UserError("--protocol must be calm4j or official");
            if (temperature != 1) {
                int n = samples != null ? samples : 2;
                var r = calm.evaluateTempered(data, batches, batchSize, n, temperature, pool, engine.quiet);
                System.out.printf("CALM %s (step %d) on %s val, sampled at T=%s (pool %d, the T=1/n rule), %d samples "
                        + "per position%n", calm.dir(), calm.step(), data, temperature, pool, n);
                System.out.println(r.format());
                return 0;
            }
            print(calm, data, calm.evaluate(data, batches, batchSize, blockChunks, samples, engine.quiet));
            return 0;
        }

        static void print(CalmRun calm, Path data, CalmEval.Result r) {
            int k = calm.model().patchSize();
            // a block read from the corpus holds one chunk of context before the chunks it scores
            System.out.printf("CALM %s (step %d) on %s val, evaluation blocks of %d chunks (%d tokens), K=%d, "
                    + "%d samples per position%n", calm.dir(), calm.step(), data, r.blockTokens() / k - 1,
                    r.blockTokens(), k, r.samples());
            System.out.println(r.brier().format());
            System.out.printf("%s loss %.4f%n", calm.model().head().lossName(), r.energyLoss());
            if (r.auxBrier1() != null) {
                System.out.printf("backbone's Brier-1 (exact, the auxiliary token head) %.3g +- %.2g%n",
                        r.auxBrier1()[0], r.auxBrier1()[1]);
            }
        }

        /** The authors' protocol (docs/method.md §8), on raw documents. */
        private int official(CalmRun calm) {
            CalmRun.OfficialEvaluation e = calm.evaluateOfficial(data, batches, blockTokens, samples, engine.quiet);
            CalmEval.Result r = e.result();
            ConcatenatedBlocks.Result blocks = e.blocks();
            int k = calm.model().patchSize();
            System.out.printf("CALM %s (step %d), the authors' protocol on %s: %,d documents with BOS, %,d tokens, "
                            + "%,d blocks of %d tokens (%,d evaluated, %,d tokens of remainder dropped), K=%d, %d "
                            + "samples per position%n", run, calm.step(), data, blocks.documents(), blocks.tokens(),
                    blocks.blocks().size(), blockTokens, e.evaluated(), blocks.dropped(), k, r.samples());
            System.out.println(r.brier().format());
            System.out.printf("%s loss %.4f%n", calm.model().head().lossName(), r.energyLoss());
            return 0;
        }
    }
}
