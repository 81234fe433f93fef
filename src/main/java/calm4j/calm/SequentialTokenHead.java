package calm4j.calm;

import calm4j.nn.Layers;
import calm4j.nn.Linear;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;

/**
 * Proposal tokens drawn in sequence (docs/method.md §11, {@code proposal_draw: "sequential"}): the low-rank head of
 * {@link LowRankTokenHead} with each position's code shifted by an embedding of the token drawn before it,
 * <pre>
 *   logits_1 = B (W_1 h) + b
 *   logits_k = B (W_k h + E_k[t_{k-1}]) + b      E_k: V -> r, k = 2..K
 * </pre>
 * so a proposed chunk's tokens follow one another (a bigram inside the chunk on top of the backbone's per-position
 * prediction) instead of each position's marginal. Trained by cross-entropy with the true previous token (teacher
 * forcing); drawn one position after the other. The embeddings are lookups: the cost is the low-rank head's. Not a
 * {@link ProposalTokens}: its positions have no logits apart from the tokens drawn before them.
 */
final class SequentialTokenHead extends Module {
    private final int k, rank, vocab, d;
    private final Linear codes, out;
    private final EmbeddingImpl previous; // [(K-1) * V, r]: E_k[t] at row (k-2) * V + t
    private final Tensor positionWeights, offsets;

    SequentialTokenHead(int d, int k, int vocab, int rank, double decay) {
        this.d = d;
        this.k = k;
        this.rank = rank;
        this.vocab = vocab;
        codes = register_module("codes", Layers.linear(d, (long) k * rank, false));
        out = register_module("out", Layers.linear(rank, vocab, true));
        previous = register_module("previous", Layers.embedding((long) (k - 1) * vocab, rank));
        try (NoGradGuard ng = new NoGradGuard()) {
            previous.weight().zero_(); // from zero: at first the positions are drawn independently, as rank r's
        }
        positionWeights = MultiTokenHead.positionWeights(k, decay);
        offsets = torch.arange(c(0), c((long) (k - 1) * vocab), c(vocab)); // [K-1]: (k-2) * V for k = 2..K
    }

    /**
     * Teacher-forced logits [P, K, V] for hidden states {@code h} [P, d] and the true chunks {@code truth} [P, K]:
     * position k given the true token k-1.
     */
    Tensor logits(Tensor h, Tensor truth) {
        long p = h.size(0);
        Tensor code = codes.forward(h).view(p, k, rank);                                         // [P, K, r]
        Tensor before = previous.forward(truth.narrow(1, 0, k - 1).add(offsets.to(truth.device(), torch.ScalarType.Long)));
        Tensor shift = torch.cat(new TensorVector(torch.zeros(new long[] {p, 1, rank}, Layers.on(code,
                code.scalar_type())), before.to(code.scalar_type())), 1);                       // [P, K, r]
        return out.forward(code.add(shift));                                                    // [P, K, V]
    }

    /**
     * Chunks [S, K] for hidden states {@code h} [S, d] (one row per chunk to draw), position after position, each
     * token by inverse CDF from the uniforms {@code u} [S, K]; {@code divisor} [S, 1] tempers each row's softmaxes
     * (null: T = 1).
     */
    Tensor draw(Tensor h, Tensor u, Tensor divisor) {
        try (NoGradGuard ng = new NoGradGuard()) {
            long s = h.size(0);
            Tensor code = codes.forward(h).view(s, k, rank);                                     // [S, K, r]
            TensorVector drawn = new TensorVector();
            Tensor before = null;                                                               // [S], long
            for (int j = 0; j < k; j++) {
                Tensor z = code.select(1, j);                                                   // [S, r]
                if (before != null) {
                    z = z.add(previous.forward(before.add(c((long) (j - 1) * vocab))).to(z.scalar_type()));
                }
                Tensor logits = out.forward(z);                                                 // [S, V]
                if (divisor != null) logits = logits.div(divisor);
                Tensor cdf = torch.softmax(logits, 1, new ScalarTypeOptional()).to(torch.ScalarType.Float)
                        .cumsum(1);                                                             // [S, V]
                Tensor total = cdf.narrow(1, vocab - 1, 1);                                     // [S, 1], ~1
                Tensor t = EnergyHead.Proposal.search(cdf, u.narrow(1, j, 1).to(cdf.device(), torch.ScalarType.Float).mul(total))
                        .clamp_max(c(vocab - 1));                                               // [S, 1]
                drawn.push_back(t);
                before = t.squeeze(1);
            }
            return torch.cat(drawn, 1).to(torch.ScalarType.Long);                              // [S, K]
        }
    }

    /** Mean cross-entropy of {@code targets} [P, K] under teacher-forced {@code logits} [P, K, V], positions weighted. */
    Tensor lossOfLogits(Tensor logits, Tensor targets) {
        return MultiTokenHead.weightedCrossEntropy(logits, targets, positionWeights);
    }

    /** Multiply-accumulates of a drawn chunk (the embedding lookups are free). */
    double macs() {
        return (double) k * ((double) d * rank + (double) rank * vocab);
    }

    void pack(WeightType type) {
        codes.pack(type);
        out.pack(type);
    }
}
