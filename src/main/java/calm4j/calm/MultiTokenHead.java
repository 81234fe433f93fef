package calm4j.calm;

import calm4j.nn.Layers;
import calm4j.nn.Linear;
import calm4j.nn.PackedLinear;
import calm4j.nn.RMSNorm;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * A training-only auxiliary loss for the CALM's backbone (docs/method.md §10): from hidden state i, logits of the K
 * tokens of chunk i+1, scored by cross-entropy against the true tokens. The energy score gives the backbone one
 * noisy scalar per position; this gives it K dense, exact targets (multi-token prediction). Generation never calls
 * it, and an export leaves it out: the CALM still predicts the next vector.
 *
 * <p>Two shapes ({@code aux_token_head}):
 * <pre>
 * tied:   u_k = RMSNorm(W_k h) for k = 1..K  (one Linear d -> K*d),  logits_k = u_k E^T   (E: the input embedding)
 * linear: logits = W h                        (one Linear d -> K*V)
 * </pre>
 * The tied shape adds K*d*d parameters and shares the vocabulary projection with the backbone's own embedding table,
 * as the token model ties its output layer; the linear one adds d*K*V (at V = 4096 and K = 4 more than the backbone).
 */
public final class MultiTokenHead extends Module implements ProposalTokens {
    private final String shape;
    private final double decay;             // weight of position k: decay^k (1: all alike)
    private final Tensor positionWeights;   // [K], mean 1
    private final int k, vocab, d;
    private final EmbeddingImpl embedding; // the backbone's token table, shared (tied shape only)
    private final Linear proj;
    private final RMSNorm norm;
    private PackedLinear tokens; // the tied projection packed for inference, or null

    MultiTokenHead(String shape, int d, int k, int vocab, EmbeddingImpl embedding, double decay) {
        this.decay = decay;
        this.positionWeights = positionWeights(k, decay);
        this.shape = shape;
        this.k = k;
        this.vocab = vocab;
        this.d = d;
        this.embedding = embedding;
        if (shape.equals("tied")) {
            proj = register_module("proj", Layers.linear(d, (long) k * d, false));
            norm = register_module("norm", new RMSNorm(d));
        } else {
            proj = register_module("proj", Layers.linear(d, (long) k * vocab, true));
            norm = null;
        }
    }

    /** Logits [P, K, V] of the next chunk's K tokens from hidden states [P, d]. */
    @Override
    public Tensor logits(Tensor h) {
        long p = h.size(0);
        if (norm == null) return proj.forward(h).view(p, k, vocab);
        Tensor u = norm.forward(proj.forward(h).view(p, k, d)); // [P, K, d]
        return tokens != null ? tokens.forward(u) : torch.linear(u, embedding.weight()); // [P, K, V]
    }

    /**
     * Packs the head for inference (evaluation reads it as a diagnostic): its projection, and for the tied shape the
     * projection onto the token table, before the backbone frees that table.
     */
    void pack(WeightType type) {
        proj.pack(type);
        if (norm != null && type.isPacked()) tokens = PackedLinear.of(embedding.weight(), null, type);
    }

    /** Mean cross-entropy of the next chunks' tokens {@code targets} [P, K] given hidden states [P, d]. */
    public Tensor loss(Tensor h, Tensor targets) {
        return lossOfLogits(logits(h), targets);
    }

    /** Mean cross-entropy of {@code targets} [P, K] under this head's {@code logits} [P, K, V]. */
    Tensor lossOfLogits(Tensor logits, Tensor targets) {
        if (decay == 1) return torch.cross_entropy(logits.view(-1, vocab), targets.reshape(-1));
        return weightedCrossEntropy(logits, targets, positionWeights);
    }

    /** Position k's weight decay^k, the K weights scaled to mean 1: [K]. */
    static Tensor positionWeights(int k, double decay) {
        double[] w = new double[k];
        double sum = 0;
        for (int i = 0; i < k; i++) sum += w[i] = Math.pow(decay, i);
        for (int i = 0; i < k; i++) w[i] *= k / sum;
        return Tensor.create(w).to(torch.ScalarType.Float);
    }

    /**
     * Mean cross-entropy of {@code targets} [P, K] under {@code logits} [P, K, V], position k weighted by
     * {@code weights} [K]: the nearer tokens, which every Brier-n needs, count more.
     */
    static Tensor weightedCrossEntropy(Tensor logits, Tensor targets, Tensor weights) {
        long k = logits.size(1);
        Tensor logProbs = torch.log_softmax(logits, 2, new org.bytedeco.pytorch.ScalarTypeOptional()); // [P, K, V]
        Tensor perToken = logProbs.gather(2, targets.reshape(-1, k).unsqueeze(2)).squeeze(2).neg();       // [P, K]
        return perToken.mul(weights.to(perToken.device(), torch.ScalarType.Float)).mean();
    }

    /** Multiply-accumulates per chunk position of one forward pass: tied, d -> K*d then each onto the table. */
    @Override
    public double macs() {
        double dk = (double) d * k;
        return shape.equals("tied") ? dk * d + dk * vocab : dk * vocab;
    }
}
