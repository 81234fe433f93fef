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
    private final Tensor invFreq; // [headDim / 2]

    public RotaryEmbedding(long headDim, long maxPositions, double theta) {
        this.maxPositions = maxPositions;
        this.invFreq = torch.pow(c(theta), torch.arange(c(0), c(headDim), c(2))
                .to(torch.ScalarType.Float).div(c((double) headDim))).reciprocal();
        Tensor positions = torch.arange(c(maxPositions)).to(torch.ScalarType.Float);
        Tensor freqs = torch.outer(positions, this.invFreq);
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
     * Moves already rotated vectors {@code x} [batch, heads, length, headDim] by {@code delta} positions (which may be
     * negative): rotations compose, R(p + delta) = R(delta) R(p), so a cached key can change its position without its
     * pre-rotation value. Used when a decoding batch's rows are re-aligned.
     */
    public Tensor shift(Tensor x, long delta) {
        if (delta == 0) return x;
        Tensor angles = invFreq.mul(c((double) delta));
        Tensor emb = cat(-1, angles, angles).to(x.device(), x.scalar_type());
        TensorVector halves = x.chunk(2, -1);
        Tensor rotated = cat(-1, halves.get(1).neg(), halves.get(0));
        return x.mul(emb.cos()).add(rotated.mul(emb.sin()));
    }
}
