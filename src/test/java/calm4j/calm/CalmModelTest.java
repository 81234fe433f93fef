package calm4j.calm;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.engine.Engine;
import calm4j.nn.KVCache;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

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
}
