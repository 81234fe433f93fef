package calm4j.calm;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.AutoencoderTask;
import calm4j.ae.ChunkAutoencoder;
import calm4j.data.BlockBatches;
import calm4j.data.ChunkBatches;
import calm4j.data.SyntheticCorpus;
import calm4j.data.TokenStore;
import calm4j.engine.Engine;
import calm4j.eval.BrierLM;
import calm4j.nn.KVCache;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class CalmModelTest {
    static final int V = 40, K = 4, EOS = 0, PAD = 1, MASK = 2;

    static AutoencoderConfig aeConfig(int k) {
        return new AutoencoderConfig(V, 48, 96, 2, 2, k, 16, true, 0, 0, 0.5, 1e-3, PAD, MASK, EOS);
    }

    static CalmConfig calmConfig(int context) {
        return new CalmConfig(64, 128, 2, 4, 2, 10000.0, context, 16, 2, 8, 16, 1.0, context);
    }

    @Test
    void incrementalDecodingWithTheKvCacheEqualsAFullForwardPass() {
        Engine.seed(21);
        CalmModel m = new CalmModel(calmConfig(16), new ChunkAutoencoder(aeConfig(K)));
        m.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor tokens = torch.randint(V, new long[] {3, 10 * K});
            Tensor full = m.hidden(tokens, null); // [3, 10, d]
            KVCache cache = m.newCache();
            List<Tensor> parts = new ArrayList<>();
            parts.add(m.hidden(tokens.narrow(1, 0, 4 * K), cache));        // prefill 4 chunks
            parts.add(m.hidden(tokens.narrow(1, 4 * K, 3 * K), cache));    // 3 more at once
            for (int c = 7; c < 10; c++) parts.add(m.hidden(tokens.narrow(1, (long) c * K, K), cache)); // one by one
            Tensor incremental = torch.cat(new TensorVector(parts.toArray(new Tensor[0])), 1);
            double diff = incremental.sub(full).abs().max().item_double();
            assertTrue(diff <= 1e-5, "max abs difference " + diff);
            assertEquals(10, cache.length());
        }
    }

    @Test
    void theAutoencoderIsFrozenAndItsWeightsAreNotOptimised() {
        Engine.seed(22);
        ChunkAutoencoder ae = new ChunkAutoencoder(aeConfig(K));
        CalmModel m = new CalmModel(calmConfig(8), ae);
        var ps = ae.parameters(true);
        for (long i = 0; i < ps.size(); i++) assertFalse(ps.get(i).requires_grad());
        Tensor before = ae.embedding().clone();
        m.loss(torch.randint(V, new long[] {2, 9 * K})).backward();
        assertTrue(ae.embedding().grad().defined() == false || ae.embedding().grad().abs().max().item_float() == 0);
        assertTrue(before.equal(ae.embedding()));
    }

    @Test
    void theHeadStartsAtZeroAndDrawsTheNSamplesInOneBatchedPass() {
        Engine.seed(23);
        CalmModel m = new CalmModel(calmConfig(8), new ChunkAutoencoder(aeConfig(K)));
        Tensor z = m.head().sample(torch.randn(5, 64), 8);
        assertArrayEquals(new long[] {8, 5, 16}, z.sizes().vec().get());
        assertEquals(0f, z.abs().max().item_float(), "the output layer is zero-initialised");
    }

    /**
     * Documents that walk a fixed cycle of chunks: each chunk determines the next. Only the chunk after a document's
     * end (a random start) and the end itself are unpredictable: 2 positions in 200.
     */
    static List<int[]> cycleDocuments(int docs, int chunksPerDoc, int k, long seed) {
        Random r = new Random(99); // the language itself is fixed
        int cycle = 12;
        int[][] chunks = new int[cycle][k];
        for (int[] c : chunks) for (int j = 0; j < k; j++) c[j] = 3 + r.nextInt(V - 3);
        Random starts = new Random(seed);
        List<int[]> out = new ArrayList<>();
        for (int d = 0; d < docs; d++) {
            int at = starts.nextInt(cycle);
            int[] doc = new int[chunksPerDoc * k];
            for (int c = 0; c < chunksPerDoc; c++) System.arraycopy(chunks[(at + c) % cycle], 0, doc, c * k, k);
            out.add(doc);
        }
        return out;
    }

    @Test
    void aLanguageWhoseNextChunkFollowsFromTheLastIsLearnedToBrier1AboveNinetyFivePercent(@TempDir Path dir)
            throws Exception {
        Path corpus = SyntheticCorpus.write(dir.resolve("corpus"), V, EOS, PAD, MASK,
                cycleDocuments(20, 200, K, 1), cycleDocuments(3, 200, K, 2));
        TokenStore train = TokenStore.open(corpus, "train"), val = TokenStore.open(corpus, "val");
        Engine.seed(24);
        ChunkAutoencoder ae = new ChunkAutoencoder(aeConfig(K));
        new Trainer(new TrainConfig(300, 64, 1, 3e-3, 1e-4, 20, "cosine", 0, 0.9, 0.95, 1, 1000, 1, 1000, 1, 100, 5,
                1), dir.resolve("ae"), new AutoencoderTask(ae, new ChunkBatches(val, K, 64, PAD, 0, false, 0, 1)),
                new ChunkBatches(train, K, 64, PAD, 1, true, 0, 1), true, true).run();

        CalmConfig cc = calmConfig(16);
        CalmModel calm = new CalmModel(cc, ae);
        BlockBatches valBlocks = new BlockBatches(val, K, 17 * K, 8, PAD, 0, false, 0, 1);
        new Trainer(new TrainConfig(800, 8, 1, 3e-3, 1e-4, 30, "cosine", 0.1, 0.9, 0.95, 1, 1000, 1, 1000, 1, 100, 5,
                2), dir.resolve("calm"), new CalmTask(calm, valBlocks),
                new BlockBatches(train, K, 17 * K, 8, PAD, 3, true, 0, 1), true, true).run();

        BrierLM.Result r = CalmEval.evaluate(calm, valBlocks, 100).brier();
        assertTrue(r.brier()[0] >= 0.95, "Brier-1 " + r.brier()[0] + "\n" + r.format());
        assertTrue(r.brierLM() > 90, r.format());
    }
}
