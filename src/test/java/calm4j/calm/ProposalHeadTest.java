package calm4j.calm;

import calm4j.ae.ChunkAutoencoder;
import calm4j.engine.Engine;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The energy head that refines chunks proposed by the multi-token head (docs/method.md §11). */
class ProposalHeadTest {
    static CalmModel model(boolean proposal) {
        return new CalmModel(CalmModelTest.calmConfig(8).with("head_proposal", proposal, "aux_token_weight", 1.0),
                new ChunkAutoencoder(CalmModelTest.aeConfig(CalmModelTest.K)));
    }

    @Test
    void theRefinementStartsAtZeroSoAFreshHeadsSamplesAreTheProposedLatents() {
        Engine.seed(3);
        CalmModel m = model(true);
        EnergyHead head = (EnergyHead) m.head();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor h = torch.randn(6, m.config().backbone().hiddenSize());
            Tensor z0 = head.proposal().encode(torch.randint(CalmModelTest.V, new long[] {6, CalmModelTest.K}));
            Tensor eps = head.noise(6, h);
            assertTrue(torch.equal(head.refine(h, z0, eps), z0), "G = 0 at first");
            calm4j.nn.Layers.namedParameters(head).forEach((name, p) -> p.normal_());
            assertFalse(torch.equal(head.refine(h, z0, eps), z0), "and trainable");
        }
    }

    @Test
    void proposedTokensFollowTheMultiTokenHeadsSoftmaxAtEachPosition() {
        Engine.seed(7);
        CalmModel m = model(true);
        EnergyHead head = (EnergyHead) m.head();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor h = torch.randn(1, m.config().backbone().hiddenSize()).mul(new org.bytedeco.pytorch.Scalar(30));
            Tensor logits = head.proposal().tokens.logits(h);                              // [1, K, V]
            Tensor probs = torch.softmax(logits, 2, new org.bytedeco.pytorch.ScalarTypeOptional()).select(0, 0);
            Tensor drawn = head.proposal().drawFrom(h, logits, 8000).select(1, 0);         // [8000, K]
            for (int k = 0; k < CalmModelTest.K; k++) {
                long top = probs.select(0, k).argmax().item_long();
                double p = probs.select(0, k).select(0, top).item_double();
                double freq = drawn.select(1, k).eq(new org.bytedeco.pytorch.Scalar(top)).to(torch.ScalarType.Float)
                        .mean().item_double();
                assertEquals(p, freq, 4 * Math.sqrt(p * (1 - p) / 8000) + 1e-3, "position " + k);
            }
        }
    }

    @Test
    void aTemperatureTempersEachPositionsProposalSoftmaxDownToItsArgmaxAtZero() {
        Engine.seed(9);
        CalmModel m = model(true);
        EnergyHead head = (EnergyHead) m.head();
        assertTrue(head.tempers(), "a head that refines proposals tempers them itself");
        assertFalse(((EnergyHead) model(false).head()).tempers(), "a plain head leaves T to the pool");
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor h = torch.randn(3, m.config().backbone().hiddenSize());
            Tensor top = head.proposal().tokens.logits(h).argmax(new org.bytedeco.pytorch.LongOptional(2), false);
            Generator[] gens = generators(0, 1, 2);
            int[] ones = {1, 1, 1};
            Tensor greedy = head.proposal().draw(h, ones, gens, new double[] {0, 0, 0});
            assertTrue(torch.equal(greedy, top), "T = 0: every position's most likely token");
            // T = 1/2 concentrates the draws: the top token of a position comes up more often than at T = 1.
            int n = 400;
            double[] atHalf = new double[2];
            for (int j = 0; j < 2; j++) {
                double temperature = j == 0 ? 1.0 : 0.5;
                long same = 0;
                for (int i = 0; i < n; i++) {
                    Tensor drawn = head.proposal().draw(h, ones, gens, new double[] {temperature, temperature,
                            temperature});
                    same += drawn.eq(top).sum().item_long();
                }
                atHalf[j] = same / (3.0 * CalmModelTest.K * n);
            }
            assertTrue(atHalf[1] > atHalf[0], "the most likely tokens are drawn more often at T = 1/2: "
                    + atHalf[1] + " against " + atHalf[0]);
        }
    }

    @Test
    void proposalsFollowTheMultiTokenHeadsDistributionRowByRowAndSeedBySeed() {
        Engine.seed(4);
        CalmModel m = model(true);
        m.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor h = torch.randn(2, m.config().backbone().hiddenSize());
            Tensor x = samplesAsAloneInABatch(m, h, 10);
            Tensor y = m.head().sample(h, new int[] {3, 4}, generators(10, 11));
            assertTrue(torch.equal(x, y), "the same generators give the same samples");
        }
    }

    @Test
    void aProposalHeadNeedsTheMultiTokenHeadToDrawFrom() {
        var e = assertThrows(calm4j.engine.UserError.class, () -> CalmModelTest.calmConfig(8).with("head_proposal",
                true, "aux_token_weight", 0.0));
        assertTrue(e.getMessage().contains("aux_token_weight"), e.getMessage());
    }

    @Test
    void positionWeightsFavourTheNearerTokensAndAverageToOne() {
        Engine.seed(5);
        MultiTokenHead equal = new MultiTokenHead("tied", 32, 4, 40, calm4j.nn.Layers.embedding(40, 32), 1.0);
        MultiTokenHead decayed = new MultiTokenHead("tied", 32, 4, 40, calm4j.nn.Layers.embedding(40, 32), 0.5);
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor h = torch.randn(6, 32);
            Tensor t = torch.randint(40, new long[] {6, 4});
            // with every position predicted equally badly, the weighted mean equals the plain mean
            double plain = equal.loss(h, t).item_double();
            assertTrue(plain > 0);
            Tensor logits = decayed.logits(h);
            Tensor lp = torch.log_softmax(logits, 2, new org.bytedeco.pytorch.ScalarTypeOptional());
            Tensor nll = lp.gather(2, t.unsqueeze(2)).squeeze(2).neg(); // [6, 4]
            double[] w = {1, 0.5, 0.25, 0.125};
            double sum = 1.875, expected = 0;
            for (int k = 0; k < 4; k++) expected += w[k] * 4 / sum * nll.select(1, k).mean().item_double();
            assertEquals(expected / 4, decayed.loss(h, t).item_double(), 1e-5);
        }
    }

    static CalmModel sequential() {
        return new CalmModel(CalmModelTest.calmConfig(8).with("head_proposal", true, "aux_token_weight", 1.0,
                "proposal_rank", 6, "proposal_draw", "sequential"), new ChunkAutoencoder(
                CalmModelTest.aeConfig(CalmModelTest.K)));
    }

    @Test
    void sequentialProposalsDrawEachTokenFromItsPositionsSoftmaxGivenTheTokenDrawnBeforeIt() {
        Engine.seed(12);
        CalmModel m = sequential();
        EnergyHead head = (EnergyHead) m.head();
        SequentialTokenHead tokens = head.proposal().sequential;
        int n = 20000, v = CalmModelTest.V;
        try (NoGradGuard ng = new NoGradGuard()) {
            // Sharp, previous-token-dependent softmaxes: the embeddings of the token before matter.
            calm4j.nn.Layers.namedParameters(tokens).forEach((name, p) -> p.normal_().mul_(
                    new org.bytedeco.pytorch.Scalar(2)));
            Tensor h = torch.randn(1, m.config().backbone().hiddenSize());
            Tensor drawn = head.proposal().drawFrom(h, null, n).select(1, 0);              // [n, K]
            for (int k = 1; k < CalmModelTest.K; k++) {
                // Among draws whose token k-1 is the commonest, token k follows the teacher-forced softmax given it.
                Tensor before = drawn.select(1, k - 1);
                long x = torch.bincount(before, new org.bytedeco.pytorch.TensorOptional(), v).argmax().item_long();
                Tensor given = drawn.index_select(0, torch.nonzero(before.eq(new org.bytedeco.pytorch.Scalar(x)))
                        .squeeze(1)).select(1, k);                                          // [m]
                long count = given.size(0);
                Tensor truth = torch.full(new long[] {1, CalmModelTest.K}, new org.bytedeco.pytorch.Scalar(x),
                        new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Long));
                Tensor probs = torch.softmax(tokens.logits(h, truth).select(1, k), 1,
                        new org.bytedeco.pytorch.ScalarTypeOptional()).select(0, 0);       // [V]
                long top = probs.argmax().item_long();
                double p = probs.select(0, top).item_double();
                double freq = given.eq(new org.bytedeco.pytorch.Scalar(top)).to(torch.ScalarType.Float).mean()
                        .item_double();
                assertEquals(p, freq, 4 * Math.sqrt(p * (1 - p) / count) + 1e-3, "position " + k + " given "
                        + x + " (" + count + " draws)");
            }
        }
    }

    @Test
    void sequentialProposalsDependOnlyOnEachRowsGeneratorAndAreLearnedWithTheTrueTokenBefore() {
        Engine.seed(13);
        CalmModel m = sequential();
        Tensor tokens = torch.randint(CalmModelTest.V, new long[] {2, 9 * CalmModelTest.K});
        CalmModel.Loss l = m.losses(tokens);
        l.total().backward();
        var params = calm4j.nn.Layers.namedParameters(m);
        assertTrue(params.get(CalmModel.PROPOSAL_MODULE + ".previous.weight").grad().abs().sum().item_double() > 0,
                "the embeddings of the token before learn from the cross-entropy");
        assertTrue(params.keySet().stream().filter(n -> n.startsWith(CalmModel.AUX_MODULE + "."))
                .allMatch(m::isTrainingOnly), "the multi-token head is training-only: proposals have their own");
        m.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            samplesAsAloneInABatch(m, torch.randn(2, m.config().backbone().hiddenSize()), 20);
        }
    }

    /** CPU generators seeded {@code seeds}, one a row. */
    static Generator[] generators(long... seeds) {
        Generator[] g = new Generator[seeds.length];
        for (int r = 0; r < seeds.length; r++) {
            g[r] = torch.make_generator_cpu();
            g[r].set_current_seed(seeds[r]);
        }
        return g;
    }

    /**
     * Samples {3, 4} for the two rows of {@code h}, rows seeded {@code seed} and {@code seed + 1}, after asserting
     * that the second row's samples equal those it draws alone from the same seed.
     */
    static Tensor samplesAsAloneInABatch(CalmModel m, Tensor h, long seed) {
        Tensor x = m.head().sample(h, new int[] {3, 4}, generators(seed, seed + 1));
        Tensor alone = m.head().sample(h.narrow(0, 1, 1), new int[] {4}, generators(seed + 1));
        // (a row alone takes matrix-vector products, a batch matrix products: equal up to rounding)
        assertTrue(alone.sub(x.narrow(0, 3, 4)).abs().max().item_double() < 1e-4,
                "a row's samples do not depend on the batch");
        return x;
    }

    @Test
    void sequentialProposalsNeedTheLowRankHead() {
        var e = assertThrows(calm4j.engine.UserError.class, () -> CalmModelTest.calmConfig(8).with("head_proposal",
                true, "aux_token_weight", 1.0, "proposal_draw", "sequential"));
        assertTrue(e.getMessage().contains("proposal_rank"), e.getMessage());
    }
}
