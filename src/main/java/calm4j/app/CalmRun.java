package calm4j.app;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmEval;
import calm4j.calm.CalmModel;
import calm4j.calm.CalmTask;
import calm4j.calm.PromptConvention;
import calm4j.data.Documents;
import calm4j.data.Manifest;
import calm4j.data.TokenStore;
import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.Progress;
import calm4j.engine.UserError;
import calm4j.generate.CalmGenerator;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.Sampling;
import calm4j.io.StateDict;
import calm4j.loader.BlockBatches;
import calm4j.loader.ConcatenatedBlocks;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import calm4j.nn.TransformerConfig;
import calm4j.run.Checkpoints;
import calm4j.run.RunFolder;
import calm4j.tokenize.Tokenizer;
import calm4j.train.DataParallel;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The CALM as an application: train one on top of a trained autoencoder (frozen), fine-tune a trained one, load a
 * run from its folder, evaluate it. The checkpoint holds the frozen autoencoder too ({@code ae_model.*}), and
 * config.json its config ({@code "autoencoder"}), so a CALM run is self-contained.
 */
public record CalmRun(Path dir, CalmModel model, Tokenizer tokenizer, long step, PromptConvention prompt)
        implements LanguageModel {
    public static final String KIND = "calm";
    /** How a CALM is trained unless a config says otherwise (preset "calm"). */
    public static final TrainConfig TRAIN = Presets.section("calm", "train", TrainConfig.class);
    /** The architecture: what a fine-tuned model must keep of its source (everything else may change). */
    public static final List<String> ARCHITECTURE = java.util.stream.Stream.concat(
            TransformerConfig.KEYS.stream(), java.util.stream.Stream.of("noise_size", "num_mlp_layers")).toList();

    /** A run's model and autoencoder configs as written, read without loading any weights. */
    public record SavedConfig(CalmConfig model, AutoencoderConfig autoencoder) {}

    public static SavedConfig readConfig(Path dir) {
        JsonNode root = RunFolder.config(dir, KIND);
        String where = dir.resolve(RunFolder.CONFIG).toString();
        return new SavedConfig(CalmConfig.saved(root.path("model"), where), Configs.section(root, "autoencoder",
                AutoencoderConfig.DEFAULTS, AutoencoderConfig.class, where));
    }

    public static CalmRun load(Path dir) {
        return load(dir, Sampler.CONFIG);
    }

    /**
     * How a loaded CALM samples, where it may differ from its config: settings of the sampler, not weights.
     *
     * @param flowSteps the flow head's midpoint steps (null: the config's flow_steps)
     * @param decode    "argmax" or "sample" (null: the config's decode)
     * @param teacher   with a distilled student, sample from the proposal-refining teacher instead (the student's
     *                  weights are then not read)
     */
    public record Sampler(Integer flowSteps, String decode, boolean teacher) {
        public static final Sampler CONFIG = new Sampler(null, null, false);
    }

    /** The run in {@code dir}, sampling as {@code sampler} says. */
    public static CalmRun load(Path dir, Sampler sampler) {
        Integer flowSteps = sampler.flowSteps();
        String decode = sampler.decode();
        JsonNode root = RunFolder.config(dir, KIND);
        String where = dir.resolve(RunFolder.CONFIG).toString();
        SavedConfig saved = readConfig(dir);
        CalmConfig cfg = saved.model();
        if (decode != null) cfg = cfg.with("decode", decode);
        if (sampler.teacher()) {
            if (!cfg.distills()) {
                throw UserError.badValue("teacher", "is for a CALM with a distilled student head; " + dir + " has none");
            }
            cfg = cfg.with("distill_weight", 0.0);
        }
        if (flowSteps != null) {
            if (!cfg.head().equals("flow")) {
                throw UserError.badValue("flow_steps", "is for a CALM with the flow head; " + dir + " has the "
                        + cfg.head() + " head");
            }
            cfg = cfg.with("flow_steps", flowSteps);
        }
        AutoencoderConfig ae = saved.autoencoder();
        Tokenizer tok = Tokenizer.load(dir.resolve(RunFolder.TOKENIZER));
        tok.requireVocabulary(ae.vocabSize(), "CALM run " + dir);
        CalmModel model = new CalmModel(cfg, new ChunkAutoencoder(ae));
        Checkpoints.State state = Checkpoints.loadLatest(dir, model);
        model.eval();
        PromptConvention prompt = Configs.section(root, "prompt", PromptConvention.CALM4J, PromptConvention.class,
                where);
        return new CalmRun(dir, model, tok, state.step(), prompt);
    }

    /** The tokens before every prompt of this model (see {@link PromptConvention}). */
    public int[] promptPrefix() {
        var ae = model.autoencoder().config();
        return prompt.prefix(model.patchSize(), ae.eosId(), ae.padId());
    }

    /** A generator for this run's model and prompt convention. */
    public CalmGenerator generator(GenerationOptions options) {
        var ae = model.autoencoder().config();
        return new CalmGenerator(model, ae.eosId(), ae.padId(), options).withPrefix(promptPrefix());
    }

    /**
     * Generates a continuation of each prompt (sequence i with seed {@code seed + i}) and reports, as JSON, the
     * model, the temperature and timing, and each sequence's text, token ids, chunk boundaries and finish reason.
     */
    @Override
    public ObjectNode generateJson(List<String> prompts, int maxTokens, Sampling sampling,
                                   GenerationOptions options, long seed) {
        List<GenerationRequest> requests = new ArrayList<>();
        for (String p : prompts) {
            requests.add(new GenerationRequest(tokenizer.encode(p), maxTokens, sampling, seed + requests.size()));
        }
        long t0 = System.nanoTime();
        List<CalmGenerator.Output> outs = generator(options).generate(requests, null);
        double seconds = (System.nanoTime() - t0) / 1e9;
        ObjectNode root = Configs.JSON.createObjectNode();
        root.put("model", dir.toString());
        root.put("patch_size", model.patchSize());
        root.put("temperature", sampling.temperature());
        root.put("seconds", seconds);
        root.put("tokens_per_second", outs.stream().mapToLong(o -> o.tokens().length).sum() / seconds);
        ArrayNode arr = root.putArray("outputs");
        for (int i = 0; i < outs.size(); i++) {
            arr.addObject().put("prompt", prompts.get(i)).put("seed", requests.get(i).seed())
                    .setAll(outs.get(i).json(tokenizer));
        }
        return root;
    }

    @Override
    public void forInference(calm4j.nn.WeightType type) {
        model.forInference(type);
    }

    @Override
    public String kind() {
        return KIND;
    }

    @Override
    public int tokensPerStep() {
        return model.patchSize();
    }

    @Override
    public int maxPromptTokens() {
        return generator(GenerationOptions.DEFAULT).maxPromptTokens();
    }

    @Override
    public int maxNewTokens(int promptTokens) {
        return generator(GenerationOptions.DEFAULT).maxNewTokens(promptTokens);
    }

    @Override
    public void checkSampling(Sampling sampling, GenerationOptions options) {
        generator(options).checkSampling(sampling);
    }

    @Override
    public CalmGenerator.Session newSession(GenerationOptions options, boolean stopAtEos) {
        return generator(options).stopAtEos(stopAtEos).session();
    }

    @Override
    public long parameterCount() {
        return Layers.parameterCount(model, true);
    }

    @Override
    public double trainingFlopsPerToken() {
        return model.trainingFlopsPerChunk() / model.patchSize();
    }

    @Override
    public double inferenceFlopsPerToken() {
        return model.inferenceFlopsPerToken();
    }

    @Override
    public java.util.Map<String, Double> inferenceFlopsByPart() {
        var parts = new java.util.LinkedHashMap<String, Double>();
        model.inferenceMacs().forEach((part, macs) -> parts.put(part, 2 * macs / model.patchSize()));
        return parts;
    }

    /**
     * The defaults a job's model keys go over: the preset, or, when the job resumes a run, that run's config as it
     * was written (so a run from before a preset change resumes as it began).
     */
    private static CalmConfig resumedDefaults(TrainingJob job) {
        Path saved = job.out().resolve(RunFolder.CONFIG);
        if (!Files.isRegularFile(saved) || new Checkpoints(job.out(), 1).latest().isEmpty()) return CalmConfig.DEFAULTS;
        JsonNode root = Configs.readTree(saved);
        if (!root.path("kind").asText().equals(KIND)) return CalmConfig.DEFAULTS; // refused by createOrResume
        return CalmConfig.saved(root.path("model"), saved.toString());
    }

    /** Trains (or resumes) a new CALM on the job's corpus, on top of the autoencoder run {@code aeRun}. */
    public static Trainer.Summary train(Path aeRun, TrainingJob job, DataParallel dist) {
        return train(aeRun, null, job, dist);
    }

    /**
     * As {@link #train(Path, TrainingJob, DataParallel)}, the backbone warm-started from the token model run
     * {@code backboneFrom} (null: from scratch): its Transformer (token table, layers, final norm) is copied into
     * the CALM's before the first step. The shapes must agree (hidden_size, intermediate_size, layers, heads, the
     * vocabulary); the source and the training FLOPs it spent are recorded in config.json ("backbone_from"), so
     * that a comparison at equal FLOPs can count them.
     */
    public static Trainer.Summary train(Path aeRun, Path backboneFrom, TrainingJob job, DataParallel dist) {
        CalmConfig model = job.model(resumedDefaults(job), CalmConfig.class);
        TrainConfig train = job.train(TRAIN);
        AutoencoderRun ae = AutoencoderRun.load(aeRun);
        Manifest m = Manifest.read(job.data());
        m.requireTokenizer(ae.tokenizer().sha256(), "autoencoder run " + aeRun);
        AutoencoderConfig aeCfg = ae.model().config();
        if (m.vocabSize() != aeCfg.vocabSize()) {
            throw new UserError("the corpus has a vocabulary of " + m.vocabSize() + " tokens, the autoencoder "
                    + aeCfg.vocabSize() + ": prepare the corpus with the autoencoder's tokenizer");
        }
        Map<String, Object> sections = new LinkedHashMap<>();
        sections.put("model", model);
        sections.put("autoencoder", aeCfg);
        TokenLMRun source = null;
        if (backboneFrom != null) {
            source = TokenLMRun.load(backboneFrom);
            if (!source.model().config().backbone().equals(model.backbone())) {
                throw new UserError("token model run " + backboneFrom + " has the backbone "
                        + source.model().config().backbone() + ", the CALM " + model.backbone() + ": a backbone warm "
                        + "start needs the same " + TransformerConfig.KEYS);
            }
            if (!source.tokenizer().sha256().equals(ae.tokenizer().sha256())) {
                throw new UserError("token model run " + backboneFrom + " was trained with another tokenizer than "
                        + "autoencoder run " + aeRun + ": a backbone warm start needs the same token table");
            }
            long seen = Checkpoints.verify(Checkpoints.latestOf(backboneFrom)).tokensSeen();
            double flops = source.trainingFlopsPerToken() * seen;
            sections.put("backbone_from", Map.of("run", backboneFrom.toAbsolutePath().normalize().toString(),
                    "step", source.step(), "training_flops", flops));
        }
        boolean fresh = new Checkpoints(job.out(), 1).latest().isEmpty();
        job.openRun(KIND, sections, train, ae.tokenizer().path(), dist);
        ae.tokenizer().close();
        CalmModel calm = new CalmModel(model, ae.model());
        if (source != null) {
            if (fresh) copyBackbone(source, calm, backboneFrom);
            source.tokenizer().close();
        }
        Layers.place(calm, dist.device());
        return train(calm, train, job.data(), job.out(), job.quiet(), dist);
    }

    /**
     * The token model's Transformer weights into the CALM's (every {@code transformer.*} tensor; the backbones' shapes
     * and tokenizers were compared before, and the state dict checks each tensor's shape again).
     */
    private static void copyBackbone(TokenLMRun source, CalmModel calm, Path from) {
        Map<String, Tensor> weights = new LinkedHashMap<>(StateDict.of(calm));
        int copied = 0;
        for (var e : StateDict.of(source.model()).entrySet()) {
            if (!e.getKey().startsWith("transformer.")) continue;
            weights.put(e.getKey(), e.getValue());
            copied++;
        }
        StateDict.load(calm, weights, "token model run " + from);
        System.err.printf("backbone: %d tensors from token model run %s (step %d)%n", copied, from, source.step());
    }

    /**
     * Fine-tunes {@code init}'s CALM on the job's corpus: its weights, autoencoder and tokenizer, with the config's
     * "model" keys that leave the architecture alone (context_chunks, num_samples, ...) applied, a fresh optimizer
     * and the "train" section's schedule. The source is recorded in the run's config.
     */
    public static Trainer.Summary fineTune(Path init, TrainingJob job, DataParallel dist) {
        CalmRun src = load(init);
        CalmConfig from = src.model().config();
        CalmConfig model = job.model(from, CalmConfig.class);
        Configs.requireUnchanged(from, model, ARCHITECTURE, init.toString(), job.where());
        TrainConfig train = job.train(TRAIN);
        Manifest.read(job.data()).requireTokenizer(src.tokenizer().sha256(), "CALM run " + init);
        Map<String, Object> sections = new LinkedHashMap<>();
        sections.put("model", model);
        sections.put("autoencoder", src.model().autoencoder().config());
        sections.put("init", Map.of("run", init.toAbsolutePath().normalize().toString(), "step", src.step()));
        sections.put("prompt", src.prompt()); // documents begin as the source saw them begin
        job.openRun(KIND, sections, train, src.tokenizer().path(), dist);
        src.tokenizer().close();
        CalmModel calm = new CalmModel(model, src.model().autoencoder());
        Map<String, Tensor> weights = new LinkedHashMap<>(StateDict.of(src.model()));
        weights.keySet().removeIf(src.model()::isTrainingOnly);         // a training-only head starts afresh, if any
        StateDict.of(calm).forEach((name, t) -> {
            if (calm.isTrainingOnly(name) || !weights.containsKey(name)) weights.put(name, t);
        });
        StateDict.load(calm, weights, init.toString());                 // the source's weights; a resume
        Layers.place(calm, dist.device());                                  // then loads its own checkpoint
        return train(calm, train, job.data(), job.out(), job.quiet(), dist);
    }

    /**
     * The training loop of a CALM already built: blocks of context_chunks + 1 chunks of the corpus's train split
     * (the first chunk is context only), blocks of eval_block_chunks + 1 of its val split for evaluations.
     */
    public static Trainer.Summary train(CalmModel calm, TrainConfig train, Path data, Path out, boolean quiet,
                                        DataParallel dist) {
        CalmConfig model = calm.config();
        int k = calm.patchSize(), pad = calm.autoencoder().config().padId();
        if (!quiet) {
            System.err.printf("CALM: %,d trainable parameters (+%,d frozen autoencoder), K=%d, context %d chunks "
                            + "(%d tokens)%n", Layers.parameterCount(calm, true),
                    Layers.parameterCount(calm.autoencoder(), false), k, model.contextChunks(),
                    model.contextChunks() * k);
        }
        BlockBatches trainData = BlockBatches.forTraining(TokenStore.open(data, "train"), k,
                (model.contextChunks() + 1) * k, train.batchSize(), pad, train.seed(), dist.rank(), dist.world());
        BlockBatches valData = BlockBatches.forEvaluation(TokenStore.open(data, "val"), k,
                (model.evalBlockChunks() + 1) * k, train.batchSize(), pad);
        return new Trainer(train, out, new CalmTask(calm, valData), trainData, quiet, dist).run();
    }

    /**
     * BrierLM on the corpus's val split, blocks of {@code blockChunks} chunks (null: the config's eval_block_chunks)
     * with {@code samples} head samples per position (null: the config's eval_samples); a progress bar unless
     * {@code quiet}.
     */
    public CalmEval.Result evaluate(Path data, long batches, int batchSize, Integer blockChunks, Integer samples,
                                    boolean quiet) {
        Manifest.read(data).requireTokenizer(tokenizer.sha256(), "CALM run " + dir);
        CalmConfig c = model.config();
        int chunks = blockChunks != null ? blockChunks : c.evalBlockChunks();
        int n = samples != null ? samples : c.evalSamples();
        if (n < 2) throw UserError.badValue("samples", "must be at least 2 (BrierLM's collision term needs pairs)");
        if (chunks < 1 || chunks > c.contextChunks()) {
            throw UserError.badValue("block_chunks", "must lie in [1, " + c.contextChunks() + "] (the model's context)");
        }
        int k = model.patchSize();
        BlockBatches val = BlockBatches.forEvaluation(TokenStore.open(data, "val"), k, (chunks + 1) * k, batchSize,
                model.autoencoder().config().padId());
        List<TokenBatch> blocks = CalmEval.blocks(val, batches);
        try (Progress bar = Progress.start("evaluating", blocks.size(), 0, "batches", quiet)) {
            return CalmEval.evaluate(model, blocks, n, val.blockTokens(), bar);
        }
    }

    /**
     * BrierLM of this CALM's sampler at {@code sampling}'s temperature (< 1): each of {@code samples} chunks per
     * position drawn as generation with {@code options} draws it (a pool of head samples, the T = 1/n rule).
     */
    public calm4j.eval.BrierLM.Result evaluateTempered(Path data, long batches, int batchSize, int samples,
                                                       Sampling sampling, GenerationOptions options, boolean quiet) {
        Manifest.read(data).requireTokenizer(tokenizer.sha256(), "CALM run " + dir);
        int k = model.patchSize();
        BlockBatches val = BlockBatches.forEvaluation(TokenStore.open(data, "val"), k,
                (model.config().evalBlockChunks() + 1) * k, batchSize, model.autoencoder().config().padId());
        List<TokenBatch> blocks = CalmEval.blocks(val, batches);
        try (Progress bar = Progress.start("evaluating", blocks.size(), 0, "batches", quiet)) {
            return calm4j.generate.TemperedEval.evaluate(model, blocks, samples, sampling, options, bar);
        }
    }

    /** What the authors' evaluation protocol read and scored. */
    public record OfficialEvaluation(CalmEval.Result result, ConcatenatedBlocks.Result blocks, int evaluated) {}

    /**
     * The authors' protocol on raw documents: each with BOS in front, concatenated, cut into blocks of
     * {@code blockTokens}, the remainder dropped, at most {@code batches} blocks scored one at a time.
     */
    public OfficialEvaluation evaluateOfficial(Path documents, long batches, int blockTokens, Integer samples,
                                               boolean quiet) {
        int bos = prompt.bosId() >= 0 ? prompt.bosId() : tokenizer.bosIdOrMinusOne();
        if (bos < 0) {
            throw new UserError("the official evaluation protocol puts the tokenizer's BOS before every document, and "
                    + "neither run " + dir + " nor its tokenizer names one");
        }
        int k = model.patchSize();
        if (blockTokens % k != 0 || blockTokens / k > model.contextChunks()) {
            throw UserError.badValue("block_tokens", "must be a multiple of K=" + k + " and at most the context, "
                    + model.contextChunks() * k + " tokens");
        }
        int n = samples != null ? samples : model.config().evalSamples();
        ConcatenatedBlocks.Result blocks = ConcatenatedBlocks.of(Documents.of(List.of(documents),
                w -> System.err.println("warning: " + w.file() + ": " + w.message())), tokenizer, bos, blockTokens);
        List<TokenBatch> used = blocks.blocks().subList(0, (int) Math.min(batches, blocks.blocks().size()));
        try (Progress bar = Progress.start("evaluating", used.size(), 0, "blocks", quiet)) {
            return new OfficialEvaluation(CalmEval.evaluate(model, used, n, blockTokens, bar), blocks, used.size());
        }
    }
}
