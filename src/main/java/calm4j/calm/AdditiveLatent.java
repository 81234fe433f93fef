package calm4j.calm;

import calm4j.nn.Layers;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.sum;

/**
 * A proposed chunk's latent without the encoder (docs/method.md §11, {@code proposal_latent: "table"}): one learned
 * vector per position and token, summed,
 * <pre>
 *   z0 = b + sum_k T[k, t_k]          T: [K, V, l]
 * </pre>
 * fitted to the frozen encoder's posterior means of the true chunks by squared error. The autoencoder's latent space
 * is close to additive over a chunk's positions (the head study: chunks sharing j positions are nearer by about a
 * quarter of the squared distance per position), so the sum stands in for the encoder's pass over every proposal.
 */
final class AdditiveLatent extends Module {
    private final int k, vocab;
    private final EmbeddingImpl table;
    private final Tensor bias;

    AdditiveLatent(int k, int vocab, int latent) {
        this.k = k;
        this.vocab = vocab;
        table = register_module("table", Layers.embedding((long) k * vocab, latent));
        bias = new Tensor(register_parameter("bias", torch.zeros(latent)));
        try (NoGradGuard ng = new NoGradGuard()) {
            table.weight().zero_(); // fitted from zero: the first proposals are the mean latent
        }
    }

    /** z0 [S, l] of chunks [S, K]. */
    Tensor forward(Tensor chunks) {
        Tensor offsets = torch.arange(c((long) k), Layers.on(chunks, torch.ScalarType.Long)).mul(c((long) vocab));
        return sum(table.forward(chunks.add(offsets)), 1).add(bias); // [S, K, l] summed over K
    }

    /** Mean over chunks of ||z0(chunks) - mu||^2 for the encoder's posterior means {@code mu} [S, l]. */
    Tensor fitLoss(Tensor chunks, Tensor mu) {
        return sum(forward(chunks).sub(mu.detach()).square(), 1).mean();
    }
}
