package calm4j.calm;

import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.sum;

/**
 * The Brier score of the head's samples in token space (docs/method.md §12), a training-only loss that scores the
 * whole sampler on the next chunk's tokens, where the energy score scores it on latent vectors.
 *
 * <p>For N samples z_i of one position, the frozen decoder gives K softmaxes p_j(.|z_i). Their mixture
 * Q(x_1..x_n) = mean_i prod_{j<=n} p_j(x_j|z_i) is a distribution over the chunk's first n tokens, and its Brier score
 * against the true tokens y, {@code 2 Q(y) - sum_x Q(x)^2}, has the unbiased estimate
 * <pre>
 *   B_n = 2/N sum_i prod_{j<=n} p_j(y_j|z_i)  -  1/(N(N-1)) sum_{i != k} prod_{j<=n} &lt;p_j(.|z_i), p_j(.|z_k)&gt;
 * </pre>
 * (given two samples the sum over n-grams factorises into one inner product per position). The loss is
 * {@code -sum_{n=1..K} B_n}, averaged over positions: a proper score of the sampler's distribution, so it is lowest at
 * the data's distribution and, unlike a cross-entropy of decoded samples, does not pay the head to collapse onto the
 * likeliest chunk; it reaches Brier-2..K, which the energy score only sees through the latent geometry.
 */
public final class DecodedBrierScore {
    private DecodedBrierScore() {}

    /**
     * Per position, the estimates B_1..B_K, [P, K], of the samples' decoded {@code logits} [N, P, K, V] (N at least
     * 2) against the true tokens {@code truth} [P, K].
     */
    public static Tensor estimates(Tensor logits, Tensor truth) {
        long n = logits.size(0), p = logits.size(1), k = logits.size(2), v = logits.size(3);
        if (n < 2) throw new IllegalArgumentException("the collision term needs at least 2 samples, got " + n);
        Tensor logProbs = torch.log_softmax(logits, 3, new ScalarTypeOptional());                    // [N, P, K, V]
        Tensor y = truth.unsqueeze(0).unsqueeze(3).expand(new long[] {n, p, k, 1});
        Tensor hits = logProbs.gather(3, y).squeeze(3).cumsum(2).exp();                 // [N, P, K]: prod_{j<=n}
        Tensor fit = sum(hits, 0).mul(c(2.0 / n));                                      // [P, K]
        Tensor probs = logProbs.exp().permute(1, 2, 0, 3).reshape(p * k, n, v);         // [P*K, N, V]
        Tensor agree = torch.bmm(probs, probs.transpose(1, 2)).view(p, k, n, n).cumprod(1); // [P, K, N, N]
        Tensor self = agree.diagonal(0, 2, 3);                                          // [P, K, N]
        Tensor collision = sum(agree, 2, 3).sub(sum(self, 2)).div(c((double) (n * (n - 1)))); // [P, K]
        return fit.sub(collision);
    }

    /** The score: the sum over n = 1..K of B_n, averaged over positions (a scalar; the loss is its negative). */
    public static Tensor score(Tensor logits, Tensor truth) {
        return sum(estimates(logits, truth), 1).mean();
    }

    /**
     * Multiply-accumulates per position beyond the decoder's passes: the N x N inner products of every decoded
     * position's softmaxes.
     */
    static double macs(int samples, int k, int vocab) {
        return (double) samples * samples * k * vocab;
    }
}
