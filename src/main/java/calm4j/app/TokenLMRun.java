package calm4j.app;

import calm4j.ar.TokenLM;
import calm4j.ar.TokenLMConfig;
import calm4j.ar.TokenLMTask;
import calm4j.data.Manifest;
import calm4j.data.TokenStore;
import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.Progress;
import calm4j.engine.UserError;
import calm4j.generate.GenerationOptions;
import calm4j.generate.Sampling;
import calm4j.generate.TokenGenerator;
import calm4j.loader.BlockBatches;
import calm4j.nn.Layers;
import calm4j.run.Checkpoints;
import calm4j.run.RunFolder;
import calm4j.tokenize.Tokenizer;
import calm4j.train.DataParallel;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The token baseline as an application: train one on a prepared corpus, load a run, evaluate it. Its data is padded
 * to multiples of the K of the CALM it is compared with, so both see the same token stream.
 */
public record TokenLMRun(Path dir, TokenLM model, Tokenizer tokenizer, int patchSize, int padId, long step)
        implements LanguageModel {
    public static final String KIND = "token-lm";
    /** How a token baseline is trained unless a config says otherwise (preset "token-lm"). */
    public static final TrainConfig TRAIN = Presets.section("token-lm", "train", TrainConfig.class);

    /** The data layout a token baseline was trained on: vocabulary, and the chunk size documents were padded to. */
    public record DataLayout(int vocabSize, int patchSize, int padId) {}

    public static TokenLMRun load(Path dir) {
        JsonNode root = RunFolder.config(dir, KIND);
        TokenLMConfig cfg = Configs.section(root, "model", TokenLMConfig.DEFAULTS, TokenLMConfig.class,
                dir.resolve(RunFolder.CONFIG).toString());
        JsonNode data = root.path("data");
        Tokenizer tok = Tokenizer.load(dir.resolve(RunFolder.TOKENIZER));
        int vocab = data.path("vocab_size").asInt(tok.vocabSize());
        tok.requireVocabulary(vocab, "token model run " + dir);
        TokenLM model = new TokenLM(cfg, vocab);
        Checkpoints.State state = Checkpoints.loadLatest(dir, model);
        model.eval();
        return new TokenLMRun(dir, model, tok, data.path("patch_size").asInt(4), data.path("pad_id").asInt(),
                state.step());
    }

    /** A generator that starts every prompt after the boundary the model was trained with. */
    public TokenGenerator generator() {
        return new TokenGenerator(model, tokenizer.eosId(), padId, patchSize);
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
        return 1;
    }

    @Override
    public int maxPromptTokens() {
        return generator().maxPromptTokens();
    }

    @Override
    public int maxNewTokens(int promptTokens) {
        return generator().maxNewTokens(promptTokens);
    }

    /** A token model samples from its logits, so every {@link Sampling} it can be given is served. */
    @Override
    public void checkSampling(Sampling sampling, GenerationOptions options) {}

    @Override
    public TokenGenerator.Session newSession(GenerationOptions options, boolean stopAtEos) {
        return generator().stopAtEos(stopAtEos).prefillSlice(options.prefillSlice()).session();
    }

    @Override
    public long parameterCount() {
        return Layers.parameterCount(model, true);
    }

    @Override
    public double trainingFlopsPerToken() {
        return model.config().trainingFlopsPerToken(model.vocabSize());
    }

    @Override
    public double inferenceFlopsPerToken() {
        return model.config().inferenceFlopsPerToken(model.vocabSize());
    }

    @Override
    public java.util.Map<String, Double> inferenceFlopsByPart() {
        var parts = new java.util.LinkedHashMap<String, Double>();
        double output = 2.0 * model.config().backbone().hiddenSize() * model.vocabSize(); // the tied output layer
        parts.put("backbone", inferenceFlopsPerToken() - output);
        parts.put("output layer", output);
        return parts;
    }

    /** Trains (or resumes) a token baseline on the job's corpus, documents padded to multiples of {@code k}. */
    public static Trainer.Summary train(TrainingJob job, int k, DataParallel dist) {
        TokenLMConfig model = job.model(TokenLMConfig.DEFAULTS, TokenLMConfig.class);
        TrainConfig train = job.train(TRAIN);
        Manifest m = Manifest.read(job.data());
        if (model.contextTokens() % k != 0 || model.evalBlockTokens() % k != 0) {
            throw new UserError("context_tokens and eval_block_tokens must be multiples of the chunk size K = " + k);
        }
        int pad = m.padId() >= 0 ? m.padId() : m.eosId();
        try (Tokenizer tok = Tokenizer.load(job.data().resolve(RunFolder.TOKENIZER))) {
            m.requireTokenizer(tok.sha256(), "the corpus's tokenizer.json");
            Map<String, Object> sections = new LinkedHashMap<>();
            sections.put("model", model);
            sections.put("data", new DataLayout(m.vocabSize(), k, pad));
            job.openRun(KIND, sections, train, tok.path(), dist);
        }
        TokenLM lm = new TokenLM(model, m.vocabSize());
        Layers.place(lm, dist.device());
        return train(lm, train, job.data(), job.out(), k, pad, job.quiet(), dist);
    }

    /** The training loop of a token baseline already built: blocks of context_tokens + k tokens. */
    public static Trainer.Summary train(TokenLM lm, TrainConfig train, Path data, Path out, int k, int pad,
                                        boolean quiet, DataParallel dist) {
        TokenLMConfig model = lm.config();
        if (!quiet) {
            System.err.printf("token LM: %,d parameters, context %d tokens%n", Layers.parameterCount(lm, true),
                    model.contextTokens());
        }
        BlockBatches trainData = BlockBatches.forTraining(TokenStore.open(data, "train"), k,
                model.contextTokens() + k, train.batchSize(), pad, train.seed(), dist.rank(), dist.world());
        BlockBatches valData = BlockBatches.forEvaluation(TokenStore.open(data, "val"), k,
                model.evalBlockTokens() + k, train.batchSize(), pad);
        return new Trainer(train, out, new TokenLMTask(lm, valData, k), trainData, quiet, dist).run();
    }

    /**
     * Held-out cross-entropy and BrierLM on the corpus's val split, at every position and at chunk-aligned ones; a
     * progress bar unless {@code quiet}.
     */
    public TokenLMTask.Result evaluate(Path data, long batches, int batchSize, boolean quiet) {
        Manifest.read(data).requireTokenizer(tokenizer.sha256(), "token LM run " + dir);
        int block = model.config().evalBlockTokens();
        BlockBatches val = BlockBatches.forEvaluation(TokenStore.open(data, "val"), patchSize, block + patchSize,
                batchSize, padId);
        try (Progress bar = Progress.start("evaluating", Math.min(batches, val.batchesPerEpoch()), 0, "batches",
                quiet)) {
            return TokenLMTask.evaluate(model, val, batches, patchSize, bar);
        }
    }
}
