package calm4j.ae;

import calm4j.Fixtures;
import calm4j.app.AutoencoderRun;
import calm4j.data.TokenStore;
import calm4j.engine.Engine;
import calm4j.loader.ChunkBatches;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ChunkAutoencoderTest {
    static final int V = 50, K = 4, L = 8, D = 32;

    static AutoencoderConfig config() {
        return AutoencoderConfig.DEFAULTS.with("vocab_size", V, "hidden_size", D, "intermediate_size", 64,
                "patch_size", K, "latent_size", L, "pad_id", 1, "mask_id", 2, "eos_id", 0);
    }

    static float max(Tensor t) {
        return t.abs().max().item_float();
    }

    @Test
    void encodesChunksToMeanAndLogSigmaAndDecodesToLogits() {
        Engine.seed(1);
        ChunkAutoencoder ae = new ChunkAutoencoder(config());
        Tensor tokens = torch.randint(V, new long[] {5, K});
        ChunkAutoencoder.Posterior q = ae.encode(tokens);
        assertArrayEquals(new long[] {5, L}, q.mu().sizes().vec().get());
        assertArrayEquals(new long[] {5, L}, q.logSigma().sizes().vec().get());
        assertArrayEquals(new long[] {5, K, V}, ae.decode(q.mu()).sizes().vec().get());
        assertArrayEquals(new long[] {5, K}, ae.decodeTokens(q.mu()).sizes().vec().get());
    }

    /**
     * Latents [n, l] (standard normal times {@code scale}) whose every position's top logit leads the next by far more
     * than fp32 rounding, so that every matmul path, on any CPU, decodes them alike: a latent drawn within 1e-4 of a
     * tie is drawn again.
     */
    static Tensor clearLatents(ChunkAutoencoder ae, int n, int l, double scale) {
        Tensor z = torch.randn(n, l).mul(new Scalar(scale));
        for (int round = 0; round < 100; round++) {
            Tensor top2 = ae.decode(z).topk(2).get0(); // [n, K, 2]
            Tensor gap = top2.select(-1, 0).sub(top2.select(-1, 1));
            Tensor tie = gap.lt(top2.select(-1, 0).abs().mul(new Scalar(1e-4)).add(new Scalar(1e-6))).any(1); // [n]
            if (!tie.any().item_bool()) return z;
            z = torch.where(tie.unsqueeze(1), torch.randn(n, l).mul(new Scalar(scale)), z);
        }
        throw new AssertionError("could not draw latents away from ties");
    }

    @Test
    void decodedTokensAreTheArgmaxOfTheLogitsWhateverTheNumberOfChunks() {
        // one row (K = 1), a few and many rows take three projections: matrix-vector, E h^T, h E^T in slices
        Engine.seed(2);
        for (int k : new int[] {1, K}) {
            ChunkAutoencoder ae = new ChunkAutoencoder(config().with("patch_size", k));
            ae.eval();
            try (NoGradGuard ng = new NoGradGuard()) {
                for (int chunks : new int[] {1, 2, 8, 9, 300}) {
                    Tensor z = clearLatents(ae, chunks, L, 1.0);
                    Tensor expected = ae.decode(z).argmax(new LongOptional(-1), false);
                    assertTrue(expected.equal(ae.decodeTokens(z)), chunks + " chunks of " + k);
                }
            }
        }
    }

    @Test
    void decodingOnlyRepeatedChunksGivesEveryRepeatedChunkAndMarksTheRestAsSeenOnce() {
        // A vocabulary of 12 and short latents make chunks that share their first tokens but differ later, chunks
        // that repeat exactly, and chunks seen once: the three cases the position-by-position decode tells apart.
        Engine.seed(3);
        ChunkAutoencoder ae = new ChunkAutoencoder(config().with("vocab_size", 12, "latent_size", 4));
        ae.eval();
        int[] groups = {120, 1, 79, 100};
        boolean[] whole = {false, false, false, true};
        try (NoGradGuard ng = new NoGradGuard()) {
            // and equal latents, decoded once: rows 60-79 repeat rows 0-19, rows 150-199 repeat rows 0-49
            long[] rowOf = new long[300];
            for (int i = 0; i < 300; i++) rowOf[i] = i >= 60 && i < 80 ? i - 60 : i >= 150 && i < 200 ? i - 150 : i;
            Tensor z = clearLatents(ae, 300, 4, 3.0).index_select(0, Tensor.create(rowOf));
            long[][] all = new long[300][K];
            Tensor full = ae.decodeTokens(z).contiguous();
            for (int i = 0; i < 300; i++) full.select(0, i).data_ptr_long().get(all[i]);
            long[][] repeated = ae.decodeRepeated(z, groups, whole);
            int once = 0, twice = 0, sharedFirstOnly = 0;
            for (int g = 0, at = 0; g < groups.length; at += groups[g++]) {
                for (int i = at; i < at + groups[g]; i++) {
                    int count = 0, sameFirst = 0;
                    for (int j = at; j < at + groups[g]; j++) {
                        if (java.util.Arrays.equals(all[i], all[j])) count++;
                        if (all[i][0] == all[j][0]) sameFirst++;
                    }
                    if (count == 1 && sameFirst > 1 && !whole[g]) sharedFirstOnly++;
                    if (count > 1 || whole[g]) {
                        assertArrayEquals(all[i], repeated[i], "latent " + i + " of group " + g);
                    } else {
                        assertNull(repeated[i], "latent " + i + " is the only one of group " + g + " with its chunk");
                    }
                    if (!whole[g]) {
                        if (count > 1) twice++;
                        else once++;
                    }
                }
            }
            assertTrue(once > 20 && twice > 20 && sharedFirstOnly > 20, "every case occurs: " + once + " once ("
                    + sharedFirstOnly + " of them sharing their first token), " + twice + " repeated");
        }
    }

    @Test
    void parametersAreNamedAfterTheReference() {
        ChunkAutoencoder ae = new ChunkAutoencoder(config());
        var names = ae.named_parameters(true);
        List<String> all = new java.util.ArrayList<>();
        for (long i = 0; i < names.size(); i++) all.add(names.get(i).key().getString());
        for (String expected : List.of("encoder.embed_tokens.weight",
                "encoder.encoder_layers.0.mlp.gate_proj.weight", "encoder.encoder_layers.0.mlp.up_proj.weight",
                "encoder.encoder_layers.1.mlp.down_proj.weight", "encoder.encoder_layers.1.layernorm.weight",
                "encoder.squeeze_layer.weight", "encoder.norm.weight", "encoder.hidden_to_latent.weight",
                "decoder.latent_to_hidden.weight", "decoder.decoder_layers.0.mlp.gate_proj.weight",
                "decoder.decoder_layers.1.layernorm.weight", "decoder.expand_layer.weight", "decoder.norm.weight")) {
            assertTrue(all.contains(expected), expected + " in " + all);
        }
        assertTrue(all.stream().noneMatch(n -> n.startsWith("decoder") && n.contains("embed")),
                "the decoder's output layer is tied to the encoder's embedding");
    }

    @Test
    void theEncoderIsContextFree() {
        Engine.seed(2);
        ChunkAutoencoder ae = new ChunkAutoencoder(config());
        ae.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor one = torch.randint(V, new long[] {1, K});
            Tensor alone = ae.encode(one).mu();
            for (int batch : new int[] {2, 7, 33}) {
                Tensor others = torch.randint(V, new long[] {batch, K});
                Tensor mixed = torch.cat(new org.bytedeco.pytorch.TensorVector(others.narrow(0, 0, batch / 2),
                        one, others.narrow(0, batch / 2, batch - batch / 2)));
                Tensor inside = ae.encode(mixed).mu().narrow(0, batch / 2, 1);
                assertTrue(max(inside.sub(alone)) < 1e-5, "a chunk encodes the same in a batch of " + batch);
            }
        }
    }

    @Test
    void theKlFloorStopsGradientToDimensionsBelowIt() {
        Engine.seed(3);
        AutoencoderConfig c = config();
        ChunkAutoencoder ae = new ChunkAutoencoder(c);
        // mu = 0, log sigma = 0 gives KL = 0 in every dimension, below lambda = 0.5 ...
        Tensor mu = torch.zeros(4, L).requires_grad_(true);
        Tensor logSigma = torch.zeros(4, L).requires_grad_(true);
        Tensor kl = ae.clippedKl(new ChunkAutoencoder.Posterior(mu, logSigma).klPerDim());
        kl.backward();
        assertEquals(0.5 * L, kl.item_double(), 1e-6, "each dimension counts lambda");
        assertEquals(0f, max(mu.grad()), "no gradient flows below the floor");
        assertEquals(0f, max(logSigma.grad()));
        // ... while a dimension above the floor is pulled towards the prior.
        Tensor mu2 = torch.full(new long[] {4, L}, new Scalar(2.0)).requires_grad_(true);
        ae.clippedKl(new ChunkAutoencoder.Posterior(mu2, torch.zeros(4, L)).klPerDim()).backward();
        assertTrue(mu2.grad().min().item_float() > 0, "above the floor, KL pulls mu towards 0");
    }

    @Test
    void dropoutsAndSamplingAreOffInEvaluation() {
        Engine.seed(4);
        ChunkAutoencoder ae = new ChunkAutoencoder(config());
        Tensor tokens = torch.randint(V, new long[] {16, K});
        ae.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            double a = ae.loss(tokens).total().item_double();
            double b = ae.loss(tokens).total().item_double();
            assertEquals(a, b, 0.0, "evaluation is deterministic");
            ae.train(true);
            double c = ae.loss(tokens).total().item_double();
            double d = ae.loss(tokens).total().item_double();
            assertNotEquals(c, d, "training draws token drops, latent drops and z samples");
        }
    }

    @Test
    void modulesSurviveGarbageCollection() {
        // libtorch calls back into the Java object of every registered module (train/eval recurse through them);
        // a module kept only by C++ would be collected and crash the next call.
        ChunkAutoencoder ae = new ChunkAutoencoder(config());
        for (int i = 0; i < 3; i++) {
            System.gc();
            ae.eval();
            ae.train(true);
        }
        assertTrue(ae.is_training());
    }

    @Test
    void aSmallAutoencoderReconstructsASmallCorpusToAbove99Point5Percent(@TempDir Path dir) throws Exception {
        Path corpus = Fixtures.corpus(dir, 20, 4, 6);
        TokenStore train = TokenStore.open(corpus, "train");
        // Evaluate on the training chunks themselves: the claim is reconstruction, not generalisation.
        // Variational with KL clipping; the two dropouts are off here because at this size and step budget they
        // only slow convergence (they are for robustness, measured by 'calm ae eval' on real text).
        AutoencoderConfig c = AutoencoderConfig.DEFAULTS.with("vocab_size", train.manifest().vocabSize(),
                "hidden_size", 64, "intermediate_size", 128, "patch_size", K, "latent_size", 16, "token_drop", 0.0,
                "latent_drop", 0.0, "pad_id", 1, "mask_id", 2, "eos_id", 0);
        Engine.seed(7);
        ChunkAutoencoder ae = new ChunkAutoencoder(c);
        ChunkBatches batches = ChunkBatches.forTraining(train, K, 64, 1, 1, 0, 1);
        ChunkBatches eval = ChunkBatches.forEvaluation(train, K, 64, 1);
        TrainConfig tc = AutoencoderRun.TRAIN.with("max_steps", 600, "batch_size", 64, "lr", 3e-3,
                "warmup_steps", 50, "weight_decay", 0.0, "eval_every", 1000, "eval_batches", 1, "checkpoint_every",
                1000, "keep_checkpoints", 1, "log_every", 100, "seed", 7);
        new Trainer(tc, dir.resolve("run"), new AutoencoderTask(ae, eval), batches, true).run();
        AutoencoderEval.Result r = AutoencoderEval.evaluate(ae, eval, 0);
        // A rate, not exactly 1: which of ~1000 chunks a 600-step model misses depends on the CPU's kernels.
        calm4j.Margins.atLeast("autoencoder token accuracy", r.tokenAccuracy(), 0.995, "");
        assertEquals(c.latentSize(), r.activeDims(), "with KL clipping every dimension stays active");
    }
}
