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
        return AutoencoderConfig.DEFAULTS.with("vocab_size", V, "hidden_size", 48, "intermediate_size", 96,
                "patch_size", k, "latent_size", 16, "token_drop", 0.0, "latent_drop", 0.0, "pad_id", PAD,
                "mask_id", MASK, "eos_id", EOS);
    }

    static CalmConfig calmConfig(int context) {
        return CalmConfig.DEFAULTS.with("head_proposal", false, "hidden_size", 64, "intermediate_size", 128, "num_hidden_layers", 2,
                "num_key_value_heads", 2, "context_chunks", context, "noise_size", 16, "num_mlp_layers", 2,
                "num_targets", 16, "eval_block_chunks", context, "proposal_rank", 0);
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
    void rowsThatJoinAndLeaveADecodingBatchAttendExactlyAsTheyWouldAlone() {
        Engine.seed(24);
        CalmModel m = new CalmModel(calmConfig(16), new ChunkAutoencoder(aeConfig(K)));
        m.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor a = torch.randint(V, new long[] {1, 9 * K}); // 3-chunk prompt, then 6 decoded chunks
            Tensor b = torch.randint(V, new long[] {1, 9 * K}); // 7-chunk prompt, joining after a's 2nd step
            Tensor c = torch.randint(V, new long[] {1, 9 * K}); // 2-chunk prompt, joining with b, leaving first
            Tensor fullA = m.hidden(a, null), fullB = m.hidden(b, null), fullC = m.hidden(c, null);

            KVCache batch = m.newCache();
            batch.reserve(3, 16); // room for the three rows' positions: nothing is copied as they grow
            m.hidden(a.narrow(1, 0, 3 * K), batch);
            for (int i = 3; i < 5; i++) { // a alone: chunks 3 and 4
                Tensor h = m.hidden(a.narrow(1, (long) i * K, K), batch);
                assertClose(fullA.select(1, i), h.select(1, 0), "a alone, chunk " + i);
            }
            // b and c are prefilled together, right-padded to 7 chunks, then join a's batch at their own lengths.
            KVCache joining = m.newCache();
            Tensor cPadded = torch.cat(new TensorVector(c.narrow(1, 0, 2 * K), b.narrow(1, 0, 5 * K)), 1);
            Tensor h0 = m.hidden(torch.cat(new TensorVector(b.narrow(1, 0, 7 * K), cPadded), 0), joining);
            joining.setLengths(new long[] {7, 2});
            assertClose(fullB.select(1, 6), h0.select(0, 0).select(0, 6), "b's prefill");
            assertClose(fullC.select(1, 1), h0.select(0, 1).select(0, 1), "c's prefill, padding after its end");
            long copiedBefore = batch.copiedPositions();
            batch.appendRows(joining);
            assertEquals(copiedBefore + 9, batch.copiedPositions(), "joining copies the joining rows' positions");
            assertArrayEquals(new long[] {5, 7, 2}, new long[] {batch.length(0), batch.length(1), batch.length(2)});
            for (int i = 0; i < 2; i++) { // all three: a's chunks 5, 6, b's 7, 8, c's 2, 3
                Tensor in = torch.cat(new TensorVector(a.narrow(1, (long) (5 + i) * K, K),
                        b.narrow(1, (long) (7 + i) * K, K), c.narrow(1, (long) (2 + i) * K, K)), 0);
                long copied = batch.copiedPositions();
                Tensor h = m.hidden(in, batch);
                assertEquals(copied, batch.copiedPositions(), "a decoding step copies no cached position");
                assertClose(fullA.select(1, 5 + i), h.select(0, 0).select(0, 0), "a in the batch, chunk " + (5 + i));
                assertClose(fullB.select(1, 7 + i), h.select(0, 1).select(0, 0), "b in the batch, chunk " + (7 + i));
                assertClose(fullC.select(1, 2 + i), h.select(0, 2).select(0, 0), "c in the batch, chunk " + (2 + i));
            }
            assertEquals(-1, batch.removeRow(2), "c leaves: it was the last row, nothing moves");
            assertEquals(1, batch.removeRow(0), "a leaves: b, the last row, takes its place");
            assertEquals(9, batch.length(0));
            Tensor h = m.hidden(b.narrow(1, 0, K), batch); // b's 10th chunk: any tokens, compared with a full pass
            Tensor bLonger = torch.cat(new TensorVector(b, b.narrow(1, 0, K)), 1);
            assertClose(m.hidden(bLonger, null).select(1, 9), h.select(1, 0), "b after the others left");
            batch.clear();
        }
    }

    static void assertClose(Tensor expected, Tensor actual, String what) {
        double diff = expected.reshape(-1).sub(actual.reshape(-1)).abs().max().item_double();
        assertTrue(diff <= 1e-5, what + ": max abs difference " + diff);
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

    @Test
    void theAuxiliaryTokenLossAddsTheCrossEntropyOfTheNextChunksTokensAtItsWeight() {
        for (String shape : new String[] {"tied", "linear"}) {
            Engine.seed(25);
            ChunkAutoencoder ae = new ChunkAutoencoder(aeConfig(K));
            CalmModel plain = new CalmModel(calmConfig(8).with("aux_token_weight", 0.0), ae);
            CalmModel aux = new CalmModel(calmConfig(8).with("aux_token_weight", 0.5, "aux_token_head", shape), ae);
            Tensor tokens = torch.randint(V, new long[] {2, 9 * K});
            Engine.seed(26);
            CalmModel.Loss l = aux.losses(tokens);
            assertEquals(l.head().item_double() + 0.5 * l.aux().item_double(), l.total().item_double(), 1e-5);
            // A fresh head's logits are near zero: its cross-entropy is near log V.
            assertEquals(Math.log(V), l.aux().item_double(), 0.1, shape);
            assertNull(plain.losses(tokens).aux(), "weight 0 turns it off");
            // The backbone gets the auxiliary gradient: its embedding table moves with the energy loss held apart.
            aux.zero_grad(true);
            l.aux().backward();
            double g = calm4j.nn.Layers.namedParameters(aux).get("transformer.embed_tokens.weight").grad().abs().sum()
                    .item_double();
            assertTrue(g > 0, shape + ": no gradient reached the backbone");
            // Training-only: its parameters are named so that exports and generation leave them out.
            assertTrue(calm4j.nn.Layers.namedParameters(aux).keySet().stream().anyMatch(aux::isTrainingOnly));
            assertFalse(calm4j.nn.Layers.namedParameters(plain).keySet().stream()
                    .anyMatch(plain::isTrainingOnly));
            CalmModel proposing = new CalmModel(calmConfig(8).with("aux_token_weight", 0.5, "aux_token_head", shape,
                    "head_proposal", true), ae);
            assertFalse(calm4j.nn.Layers.namedParameters(proposing).keySet().stream()
                    .anyMatch(proposing::isTrainingOnly), "a proposal head's multi-token head is part of the model");
        }
    }

    /** Elements of a module's matrices (its linear layers' weights): one multiply-accumulate each per input row. */
    static double linearWeights(org.bytedeco.pytorch.Module m) {
        return calm4j.nn.Layers.namedParameters(m).values().stream().filter(p -> p.dim() == 2)
                .mapToDouble(Tensor::numel).sum();
    }

    @Test
    void eachHeadReportsItsOwnLinearWeightsAsItsMultiplyAccumulates() {
        Engine.cpu();
        int d = 64, latent = 16;
        GenerativeHead energy = new HeadConfig.Energy(16, 2, 4, 8, 1.0, false).build(d, latent, null);
        assertEquals(linearWeights(energy), energy.samplingMacs(), 1e-9, "one sample: every matrix once");
        assertEquals(d * d + 4 * (energy.samplingMacs() - d * d), energy.trainingMacsPerPosition(), 1e-9,
                "N = 4 samples share the hidden state's embedding");
        GenerativeHead flow = new HeadConfig.Flow(2, 1, 3).build(d, latent, null);
        assertEquals(linearWeights(flow), flow.trainingMacsPerPosition(), 1e-9, "one target: one velocity evaluation");
        assertEquals(d * d + 2 * 3 * (linearWeights(flow) - d * d), flow.samplingMacs(), 1e-9,
                "3 midpoint steps of two evaluations each");
    }

    @Test
    void theAuxiliaryHeadsFlopsAreCountedInTrainingButNotInInference() {
        ChunkAutoencoder ae = new ChunkAutoencoder(aeConfig(K));
        CalmModel off = new CalmModel(calmConfig(8).with("aux_token_weight", 0.0), ae);
        CalmModel on = new CalmModel(off.config().with("aux_token_weight", 1.0), ae);
        double d = 64;
        assertEquals(6 * (d * K * d + K * d * V), on.trainingFlopsPerChunk() - off.trainingFlopsPerChunk(), 1e-3);
        assertEquals(off.inferenceFlopsPerToken(), on.inferenceFlopsPerToken());
    }
}
