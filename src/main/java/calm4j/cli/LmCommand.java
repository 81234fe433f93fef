package calm4j.cli;

import calm4j.ae.AutoencoderConfig;
import calm4j.app.AutoencoderRun;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmEval;
import calm4j.calm.CalmModel;
import calm4j.app.CalmRun;
import calm4j.calm.CalmTask;
import calm4j.data.BlockBatches;
import calm4j.data.ConcatenatedBlocks;
import calm4j.data.Documents;
import calm4j.data.Manifest;
import calm4j.data.TokenStore;
import calm4j.engine.Engine;
import calm4j.engine.UserError;
import calm4j.io.StateDict;
import calm4j.nn.Layers;
import calm4j.engine.Configs;
import calm4j.run.RunFolder;
import calm4j.train.TrainConfig;
import calm4j.train.DataParallel;
import calm4j.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "lm", mixinStandardHelpOptions = true,
        description = "The CALM language model: next-vector prediction trained with the energy score.",
        subcommands = {LmCommand.Train.class, LmCommand.Eval.class})
final class LmCommand {

    /** Training defaults for a CALM on two CPU cores (AdamW 0.9/0.95, wd 0.1, clip 1.0, as the reference). */
    static final TrainConfig TRAIN = new TrainConfig(1500, 8, 1, 1e-3, 1e-4, 100, "cosine", 0.1, 0.9, 0.95, 1.0,
            150, 8, 150, 2, 10, 5, 1234);

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Train (or resume) a CALM on a prepared corpus, on top of a trained autoencoder (frozen).")
    static final class Train implements Callable<Integer> {
        @Option(names = "--ae", description = "the autoencoder run folder (a new CALM)")
        Path aeRun;

        @Option(names = "--init", description = "fine-tune: start from this CALM run's weights (an imported release "
                + "or a calm4j run) with a fresh optimizer and schedule; its autoencoder and tokenizer are used")
        Path init;

        @Mixin
        TrainOptions options;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            Path out = options.out;
            if ((aeRun == null) == (init == null)) {
                throw new UserError("give either --ae AE_RUN (a new CALM) or --init CALM_RUN (fine-tuning)");
            }
            Trainer.Summary s = options.runAsRank(engine, dist -> init != null
                    ? fineTune(init, options, engine.quiet, dist) : train(aeRun, options, engine.quiet, dist));
            if (s == null) return 0; // another rank reports
            CalmRun run = CalmRun.load(out);
            var cfg = run.model().config();
            var ae = run.model().autoencoder().config();
            long tokens = s.tokensSeen();
            System.out.printf("CALM run %s: step %d%s, %.0f s, %,.0f tokens/s; %,d trainable parameters; "
                            + "training FLOPs %.3g (%,d tokens x %.3g per token); inference %.3g FLOPs/token%n", out,
                    s.step(), s.interrupted() ? " (stopped early; run the same command to resume)" : "", s.seconds(),
                    s.tokensPerSecond(), Layers.parameterCount(run.model(), true), tokens
                            * cfg.trainingFlopsPerChunk(ae) / ae.patchSize(), tokens,
                    cfg.trainingFlopsPerChunk(ae) / ae.patchSize(), cfg.inferenceFlopsPerToken(ae));
            run.tokenizer().close();
            if (!s.lastEval().isEmpty()) System.out.println("validation: " + s.lastEval());
            return 0;
        }

        /** The architecture: what a fine-tuned model must keep of its source (everything else may change). */
        static final List<String> ARCHITECTURE = List.of("hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "rope_theta", "noise_size", "num_mlp_layers");

        /**
         * Fine-tunes {@code init}'s CALM on {@code options.data}: its weights, autoencoder and tokenizer, with the
         * config file's "model" keys that leave the architecture alone (context_chunks, num_samples, ...) applied,
         * a fresh optimizer and the "train" section's schedule. The source is recorded in the run's config.
         */
        static Trainer.Summary fineTune(Path init, TrainOptions options, boolean quiet, DataParallel dist) {
            Path data = options.data, out = options.out;
            CalmRun src = CalmRun.load(init);
            CalmConfig from = src.model().config();
            CalmConfig model = options.model(from, CalmConfig.class);
            Configs.requireUnchanged(from, model, ARCHITECTURE, init.toString(), options.where());
            TrainConfig train = options.train(TRAIN);
            Manifest m = Manifest.read(data);
            m.requireTokenizer(src.tokenizer().sha256(), "CALM run " + init);
            AutoencoderConfig aeCfg = src.model().autoencoder().config();
            Map<String, Object> sections = new LinkedHashMap<>();
            sections.put("model", model);
            sections.put("autoencoder", aeCfg);
            sections.put("init", Map.of("run", init.toAbsolutePath().normalize().toString(), "step", src.step()));
            sections.put("prompt", src.prompt()); // documents begin as the source saw them begin
            if (dist.isWriter()) RunFolder.createOrResume(out, CalmRun.KIND, sections, train, src.tokenizer().path());
            src.tokenizer().close();
            dist.barrier();

            Engine.seed(train.seed());
            CalmModel calm = new CalmModel(model, src.model().autoencoder());
            StateDict.load(calm, StateDict.of(src.model()), init.toString()); // the source's weights; a resume
            Layers.place(calm, dist.device());                                  // then loads its own checkpoint
            return trainLoop(calm, model, aeCfg, train, options, quiet, dist);
        }

        static Trainer.Summary train(Path aeRun, TrainOptions options, boolean quiet, DataParallel dist) {
            Path data = options.data, out = options.out;
            CalmConfig model = options.model(CalmConfig.DEFAULTS, CalmConfig.class);
            TrainConfig train = options.train(TRAIN);
            AutoencoderRun ae = AutoencoderRun.load(aeRun);
            Manifest m = Manifest.read(data);
            m.requireTokenizer(ae.tokenizer().sha256(), "autoencoder run " + aeRun);
            AutoencoderConfig aeCfg = ae.model().config();
            if (m.vocabSize() != aeCfg.vocabSize()) {
                throw new UserError("the corpus has a vocabulary of " + m.vocabSize() + " tokens, the autoencoder "
                        + aeCfg.vocabSize() + ": prepare the corpus with the autoencoder's tokenizer");
            }
            Map<String, Object> sections = new LinkedHashMap<>();
            sections.put("model", model);
            sections.put("autoencoder", aeCfg);
            if (dist.isWriter()) RunFolder.createOrResume(out, CalmRun.KIND, sections, train, ae.tokenizer().path());
            ae.tokenizer().close();
            dist.barrier();

            Engine.seed(train.seed());
            CalmModel calm = new CalmModel(model, ae.model());
            Layers.place(calm, dist.device());
            return trainLoop(calm, model, aeCfg, train, options, quiet, dist);
        }

        private static Trainer.Summary trainLoop(CalmModel calm, CalmConfig model, AutoencoderConfig aeCfg,
                                                 TrainConfig train, TrainOptions options, boolean quiet,
                                                 DataParallel dist) {
            Path data = options.data, out = options.out;
            int k = aeCfg.patchSize();
            if (!quiet) {
                System.err.printf("CALM: %,d trainable parameters (+%,d frozen autoencoder), K=%d, context %d "
                                + "chunks (%d tokens)%n", Layers.parameterCount(calm, true),
                        Layers.parameterCount(calm.autoencoder(), false), k, model.contextChunks(),
                        model.contextChunks() * k);
            }
            BlockBatches trainData = new BlockBatches(TokenStore.open(data, "train"), k,
                    (model.contextChunks() + 1) * k, train.batchSize(), aeCfg.padId(), train.seed(), true, dist.rank(),
                    dist.world());
            BlockBatches valData = new BlockBatches(TokenStore.open(data, "val"), k,
                    (model.evalBlockChunks() + 1) * k, train.batchSize(), aeCfg.padId(), 0, false, 0, 1);
            return new Trainer(train, out, new CalmTask(calm, valData), trainData, quiet, dist).run();
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
                + "2 as in the spec; more estimate the same BrierLM with a smaller standard error)")
        Integer samples;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            CalmRun calm = CalmRun.load(run);
            if (protocol.equals("official")) return official(calm);
            if (!protocol.equals("calm4j")) throw new UserError("--protocol must be calm4j or official");
            Manifest.read(data).requireTokenizer(calm.tokenizer().sha256(), "CALM run " + run);
            CalmConfig c = calm.model().config();
            int chunks = blockChunks != null ? blockChunks : c.evalBlockChunks();
            int n = samples != null ? samples : c.evalSamples();
            if (n < 2) throw new UserError("--samples must be at least 2 (BrierLM's collision term needs pairs)");
            if (chunks < 1 || chunks > c.contextChunks()) {
                throw new UserError("--block-chunks must lie in [1, " + c.contextChunks() + "] (the model's context)");
            }
            int k = calm.model().patchSize();
            BlockBatches val = new BlockBatches(TokenStore.open(data, "val"), k, (chunks + 1) * k, batchSize,
                    calm.model().autoencoder().config().padId(), 0, false, 0, 1);
            CalmEval.Result r = CalmEval.evaluate(calm.model(), val, batches, n);
            System.out.printf("CALM %s (step %d) on %s val, evaluation blocks of %d chunks (%d tokens), K=%d, "
                    + "%d samples per position%n", run, calm.step(), data, chunks, r.blockTokens(), k, n);
            System.out.println(r.brier().format());
            System.out.printf("%s loss %.4f%n", calm.model().config().head().equals("flow") ? "flow-matching" : "energy",
                    r.energyLoss());
            return 0;
        }

        /** The authors' protocol (spec: their evaluation run), on raw documents. */
        private int official(CalmRun calm) {
            int bos = calm.prompt().bosId() >= 0 ? calm.prompt().bosId() : calm.tokenizer().bosIdOrMinusOne();
            if (bos < 0) {
                throw new UserError("--protocol official puts the tokenizer's BOS before every document, and neither "
                        + "run " + run + " nor its tokenizer names one");
            }
            int k = calm.model().patchSize();
            if (blockTokens % k != 0 || blockTokens / k > calm.model().contextChunks()) {
                throw new UserError("--block-tokens must be a multiple of K=" + k + " and at most the context, "
                        + calm.model().contextChunks() * k + " tokens");
            }
            int n = samples != null ? samples : calm.model().config().evalSamples();
            ConcatenatedBlocks.Result blocks = ConcatenatedBlocks.of(Documents.of(List.of(data),
                    w -> System.err.println("warning: " + w.file() + ": " + w.message())), calm.tokenizer(), bos,
                    blockTokens);
            List<calm4j.data.TokenBatch> used = blocks.blocks().subList(0, (int) Math.min(batches,
                    blocks.blocks().size()));
            CalmEval.Result r = CalmEval.evaluate(calm.model(), used, n, blockTokens);
            System.out.printf("CALM %s (step %d), the authors' protocol on %s: %,d documents with BOS, %,d tokens, "
                            + "%,d blocks of %d tokens (%,d evaluated, %,d tokens of remainder dropped), K=%d, %d "
                            + "samples per position%n", run, calm.step(), data, blocks.documents(), blocks.tokens(),
                    blocks.blocks().size(), blockTokens, used.size(), blocks.dropped(), k, n);
            System.out.println(r.brier().format());
            System.out.printf("%s loss %.4f%n", calm.model().config().head().equals("flow") ? "flow-matching" : "energy",
                    r.energyLoss());
            return 0;
        }
    }
}
