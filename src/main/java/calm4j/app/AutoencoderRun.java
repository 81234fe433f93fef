package calm4j.app;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.AutoencoderEval;
import calm4j.ae.AutoencoderTask;
import calm4j.ae.ChunkAutoencoder;
import calm4j.data.Manifest;
import calm4j.data.TokenStore;
import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.io.Npy;
import calm4j.io.StateDict;
import calm4j.loader.ChunkBatches;
import calm4j.nn.Layers;
import calm4j.run.Checkpoints;
import calm4j.run.RunFolder;
import calm4j.tokenize.Tokenizer;
import calm4j.train.DataParallel;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The chunk autoencoder as an application: train one on a prepared corpus (or fine-tune a trained one), load a
 * trained run from its folder, evaluate it. Commands, the demo and the tests go through here.
 */
public record AutoencoderRun(Path dir, ChunkAutoencoder model, Tokenizer tokenizer, long step) implements TrainedRun {
    public static final String KIND = "autoencoder";
    /** How an autoencoder is trained unless a config says otherwise (preset "autoencoder"). */
    public static final TrainConfig TRAIN = Presets.section("autoencoder", "train", TrainConfig.class);
    /** What a fine-tuned autoencoder must keep of its source; its training settings may change. */
    public static final List<String> ARCHITECTURE = List.of("vocab_size", "hidden_size", "intermediate_size",
            "encoder_layers", "decoder_layers", "patch_size", "latent_size", "pad_id", "mask_id", "eos_id");

    @Override
    public String kind() {
        return KIND;
    }

    public static AutoencoderRun load(Path dir) {
        JsonNode root = RunFolder.config(dir, KIND);
        AutoencoderConfig cfg = Configs.section(root, "model", AutoencoderConfig.DEFAULTS, AutoencoderConfig.class,
                dir.resolve(RunFolder.CONFIG).toString());
        Tokenizer tok = Tokenizer.load(dir.resolve(RunFolder.TOKENIZER));
        tok.requireVocabulary(cfg.vocabSize(), "autoencoder run " + dir);
        ChunkAutoencoder ae = new ChunkAutoencoder(cfg);
        Checkpoints.State state = Checkpoints.loadLatest(dir, ae);
        ae.eval();
        return new AutoencoderRun(dir, ae, tok, state.step());
    }

    /** Trains (or resumes) a new autoencoder; its vocabulary and special tokens come from the corpus's tokenizer. */
    public static Trainer.Summary train(TrainingJob job, DataParallel dist) {
        Configs.forbidKeys(job.root(), "model", List.of("vocab_size", "pad_id", "mask_id", "eos_id"),
                "the vocabulary and its special tokens come from the corpus's tokenizer", job.where());
        AutoencoderConfig model = job.model(AutoencoderConfig.DEFAULTS, AutoencoderConfig.class);
        TrainConfig train = job.train(TRAIN);
        Manifest m = Manifest.read(job.data());
        try (Tokenizer tok = Tokenizer.load(job.data().resolve(RunFolder.TOKENIZER))) {
            m.requireTokenizer(tok.sha256(), "the corpus's tokenizer.json");
            model = model.withVocabulary(tok.vocabSize(), tok.padId(), tok.maskId(), tok.eosId());
            job.openRun(KIND, Map.of("model", model), train, tok.path(), dist);
        }
        ChunkAutoencoder ae = new ChunkAutoencoder(model);
        Layers.place(ae, dist.device());
        return train(ae, train, job.data(), job.out(), job.quiet(), dist);
    }

    /** Fine-tunes {@code init}'s autoencoder on the job's corpus: its weights and tokenizer, a fresh optimizer. */
    public static Trainer.Summary fineTune(Path init, TrainingJob job, DataParallel dist) {
        AutoencoderRun src = load(init);
        AutoencoderConfig from = src.model().config();
        AutoencoderConfig model = job.model(from, AutoencoderConfig.class);
        Configs.requireUnchanged(from, model, ARCHITECTURE, init.toString(), job.where());
        TrainConfig train = job.train(TRAIN);
        Manifest.read(job.data()).requireTokenizer(src.tokenizer().sha256(), "autoencoder run " + init);
        job.openRun(KIND, Map.of("model", model, "init", Map.of("run", init.toAbsolutePath().normalize().toString(),
                "step", src.step())), train, src.tokenizer().path(), dist);
        src.tokenizer().close();
        ChunkAutoencoder ae = new ChunkAutoencoder(model);
        StateDict.load(ae, StateDict.of(src.model()), init.toString());
        Layers.place(ae, dist.device());
        return train(ae, train, job.data(), job.out(), job.quiet(), dist);
    }

    /** The training loop of an autoencoder already built: chunks of the corpus's train split, its val split held out. */
    public static Trainer.Summary train(ChunkAutoencoder ae, TrainConfig train, Path data, Path out, boolean quiet,
                                        DataParallel dist) {
        AutoencoderConfig model = ae.config();
        if (!quiet) {
            System.err.printf("autoencoder: %,d parameters, K=%d, l=%d, d=%d%n", Layers.parameterCount(ae, false),
                    model.patchSize(), model.latentSize(), model.hiddenSize());
        }
        TokenStore trainStore = TokenStore.open(data, "train"), valStore = TokenStore.open(data, "val");
        ChunkBatches trainBatches = ChunkBatches.forTraining(trainStore, model.patchSize(), train.batchSize(),
                model.padId(), train.seed(), dist.rank(), dist.world());
        ChunkBatches valBatches = ChunkBatches.forEvaluation(valStore, model.patchSize(),
                (int) Math.min(train.batchSize(), valStore.tokens() / model.patchSize()), model.padId());
        return new Trainer(train, out, new AutoencoderTask(ae, valBatches), trainBatches, quiet, dist).run();
    }

    /** Reconstruction, robustness and KL on the corpus's val split, in batches of up to 1024 chunks (0: all). */
    public AutoencoderEval.Result evaluate(Path data, long batches) {
        Manifest.read(data).requireTokenizer(tokenizer.sha256(), "autoencoder run " + dir);
        AutoencoderConfig c = model.config();
        TokenStore val = TokenStore.open(data, "val");
        int batch = (int) Math.min(1024, val.tokens() / c.patchSize());
        return AutoencoderEval.evaluate(model, ChunkBatches.forEvaluation(val, c.patchSize(), batch, c.padId()),
                batches);
    }

    /**
     * A text's chunks and their posteriors: {@code tokens} [chunks*K] padded with PAD, {@code mu}, {@code sigma}
     * [chunks*l] row-major.
     */
    public record Encoding(long[] tokens, int chunks, int patchSize, int latentSize, float[] mu, float[] sigma) {
        /** The posterior means [chunks, l], the vectors a CALM predicts. */
        public Npy.Matrix means() {
            return new Npy.Matrix(chunks, latentSize, mu);
        }

        /** As JSON: patch_size, latent_size, the padded tokens, and mu and sigma as one row per chunk. */
        public ObjectNode json() {
            ObjectNode json = Configs.JSON.createObjectNode();
            json.put("patch_size", patchSize);
            json.put("latent_size", latentSize);
            ArrayNode ids = json.putArray("tokens");
            for (long id : tokens) ids.add(id);
            json.set("mu", rows(mu));
            json.set("sigma", rows(sigma));
            return json;
        }

        /** Writes it to {@code out}, a .npy file (the means [chunks, l]) or JSON, and says what was written. */
        public String writeTo(Path out) {
            if (out.toString().endsWith(".npy")) {
                Npy.write(out, means());
                return String.format("wrote %s: %d chunks x %d (posterior means)", out, chunks, latentSize);
            }
            try {
                Configs.JSON.writeValue(out.toFile(), json());
            } catch (java.io.IOException e) {
                throw new UserError("could not write " + out + ": " + e.getMessage());
            }
            return String.format("wrote %s: %d chunks x %d", out, chunks, latentSize);
        }

        private ArrayNode rows(float[] v) {
            ArrayNode a = Configs.JSON.createArrayNode();
            for (int r = 0; r < chunks; r++) {
                ArrayNode row = a.addArray();
                for (int c = 0; c < latentSize; c++) row.add(v[r * latentSize + c]);
            }
            return a;
        }
    }

    /**
     * Latent vectors from a file: a .npy matrix [chunks, l], or the "mu" rows of {@link Encoding#json()}'s JSON
     * (with {@code latentSize} columns when it has no rows).
     */
    public static Npy.Matrix readLatents(Path file, int latentSize) {
        if (file.toString().endsWith(".npy")) return Npy.read(file);
        JsonNode mu = Configs.readTree(file).get("mu");
        if (mu == null || !mu.isArray()) throw new UserError(file + " has no \"mu\" array of latent vectors");
        int rows = mu.size(), cols = rows == 0 ? latentSize : mu.get(0).size();
        float[] data = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            if (mu.get(r).size() != cols) {
                throw new UserError(file + ": row " + r + " of \"mu\" has " + mu.get(r).size() + " numbers, row 0 "
                        + "has " + cols);
            }
            for (int j = 0; j < cols; j++) data[r * cols + j] = (float) mu.get(r).get(j).asDouble();
        }
        return new Npy.Matrix(rows, cols, data);
    }

    /** Text -> tokens -> chunks of K (the last padded) -> the encoder's posterior of each chunk. */
    public Encoding encode(String text) {
        AutoencoderConfig c = model.config();
        int k = c.patchSize();
        int[] ids = tokenizer.encode(text);
        if (ids.length == 0) throw new UserError("the text is empty: there is no chunk to encode");
        int chunks = (ids.length + k - 1) / k;
        long[] padded = new long[chunks * k];
        Arrays.fill(padded, c.padId());
        for (int i = 0; i < ids.length; i++) padded[i] = ids[i];
        float[] mu = new float[chunks * c.latentSize()], sigma = new float[chunks * c.latentSize()];
        try (NoGradGuard ng = new NoGradGuard()) {
            ChunkAutoencoder.Posterior q = model.encode(Tensor.create(padded, chunks, k));
            q.mu().contiguous().data_ptr_float().get(mu);
            q.sigma().contiguous().data_ptr_float().get(sigma);
        }
        return new Encoding(padded, chunks, k, c.latentSize(), mu, sigma);
    }

    /** Latent vectors [rows, l] -> the argmax tokens of each -> text (PAD left out); no vectors give "". */
    public String decode(Npy.Matrix latents, String source) {
        AutoencoderConfig c = model.config();
        if (latents.cols() != c.latentSize()) {
            throw new UserError(source + " holds vectors of size " + latents.cols() + "; this autoencoder's latent "
                    + "size is " + c.latentSize());
        }
        if (latents.rows() == 0) return "";
        long[] ids = new long[latents.rows() * c.patchSize()];
        try (NoGradGuard ng = new NoGradGuard()) {
            model.decodeTokens(Tensor.create(latents.data(), latents.rows(), latents.cols())).contiguous()
                    .data_ptr_long().get(ids);
        }
        return tokenizer.decode(Arrays.stream(ids).filter(id -> id != c.padId()).mapToInt(id -> (int) id).toArray());
    }
}
