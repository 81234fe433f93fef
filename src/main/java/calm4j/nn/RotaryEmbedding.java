package calm4j.nn;

import calm4j.engine.UserError;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.cat;

/**
 * Rotary position embeddings in Llama's half-rotation layout: the head dimension is split into halves (x1, x2) and
 * rotated as {@code x * cos + rotate_half(x) * sin} with {@code rotate_half(x) = [-x2, x1]}, frequencies
 * {@code theta^(-2i/headDim)}. The cos/sin tables are computed once for {@code maxPositions}.
 */
public final class RotaryEmbedding {
    private final Tensor cos; // [maxPositions, headDim]
    private final Tensor sin;
    private final long maxPositions;

    public RotaryEmbedding(long headDim, long maxPositions, double theta) {
        this.maxPositions = maxPositions;
        Tensor invFreq = torch.pow(c(theta), torch.arange(c(0), c(headDim), c(2))
                .to(torch.ScalarType.Float).div(c((double) headDim))).reciprocal(); // [headDim / 2]
        Tensor positions = torch.arange(c(maxPositions)).to(torch.ScalarType.Float);
        Tensor freqs = torch.outer(positions, invFreq);
        Tensor emb = cat(-1, freqs, freqs);
        this.cos = emb.cos();
        this.sin = emb.sin();
    }

    public long maxPositions() {
        return maxPositions;
    }

    /** Rotates {@code x} [batch, heads, length, headDim] whose first position is {@code offset}. */
    public Tensor apply(Tensor x, long offset) {
        long len = x.size(2);
        if (offset + len > maxPositions) {
            throw new UserError("position " + (offset + len) + " is beyond the model's context of "
                    + maxPositions);
        }
        Tensor c = cos.narrow(0, offset, len).to(x.device(), x.scalar_type());
        Tensor s = sin.narrow(0, offset, len).to(x.device(), x.scalar_type());
        TensorVector halves = x.chunk(2, -1);
        Tensor rotated = cat(-1, halves.get(1).neg(), halves.get(0));
        return x.mul(c).add(rotated.mul(s));
    }

    /**
     * Rotates {@code x} [batch, heads, length, headDim] whose row b's position j is {@code positions[b, j]} (rows of a
     * decoding batch each at their own length).
     */
    public Tensor apply(Tensor x, Tensor positions) {
        long b = x.size(0), len = x.size(2), d = x.size(3);
        if (positions.max().item_long() >= maxPositions) {
            throw new UserError("position " + (positions.max().item_long() + 1) + " is beyond the model's context of "
                    + maxPositions);
        }
        Tensor flat = positions.reshape(-1).to(cos.device(), torch.ScalarType.Long);
        Tensor c = cos.index_select(0, flat).view(b, 1, len, d).to(x.device(), x.scalar_type());
        Tensor s = sin.index_select(0, flat).view(b, 1, len, d).to(x.device(), x.scalar_type());
        TensorVector halves = x.chunk(2, -1);
        Tensor rotated = cat(-1, halves.get(1).neg(), halves.get(0));
        return x.mul(c).add(rotated.mul(s));
    }
}
