package calm4j.calm;

import calm4j.nn.Layers;
import calm4j.nn.Linear;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

/**
 * Proposal tokens at a fraction of the multi-token head's cost (docs/method.md §11, {@code proposal_rank}): the
 * hidden state projected to a rank-r code per position, and one shared r -> V projection,
 * <pre>
 *   logits_k = B (W_k h) + b        W_k: d -> r (one Linear d -> K*r),  B: r -> V
 * </pre>
 * K (d r + r V) multiply-accumulates a position against the tied head's K (d d + d V): at d = 256, r = 32 and
 * V = 4,096 an eighth. Trained by its own cross-entropy on the true next chunk (position k weighted as the
 * multi-token head weighs it), so the backbone's dense signal still comes from the tied head.
 */
final class LowRankTokenHead extends Module implements ProposalTokens {
    private final int k, rank, vocab, d;
    private final Linear codes, out;
    private final Tensor positionWeights;

    LowRankTokenHead(int d, int k, int vocab, int rank, double decay) {
        this.d = d;
        this.k = k;
        this.rank = rank;
        this.vocab = vocab;
        codes = register_module("codes", Layers.linear(d, (long) k * rank, false));
        out = register_module("out", Layers.linear(rank, vocab, true));
        this.positionWeights = MultiTokenHead.positionWeights(k, decay);
    }

    @Override
    public Tensor logits(Tensor h) {
        return out.forward(codes.forward(h).view(h.size(0), k, rank)); // [P, K, V]
    }

    /** Mean cross-entropy of {@code targets} [P, K] under {@code logits} [P, K, V], positions weighted. */
    Tensor lossOfLogits(Tensor logits, Tensor targets) {
        return MultiTokenHead.weightedCrossEntropy(logits, targets, positionWeights);
    }

    @Override
    public double macs() {
        return (double) k * ((double) d * rank + (double) rank * vocab);
    }

    void pack(WeightType type) {
        codes.pack(type);
        out.pack(type);
    }
}
