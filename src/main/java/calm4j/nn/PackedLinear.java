package calm4j.nn;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;

/**
 * An inference-only linear map {@code y = x W^T + b} whose weight is packed once for fbgemm, the CPU GEMM library
 * inside libtorch (its legacy dynamic-quantization entry points, which the bytedeco presets expose):
 * <ul>
 *   <li>int8: each output row r of W is scaled to [-1, 1] by its largest magnitude s_r, the result quantized to
 *       {@link #LEVELS} levels each side of zero and packed; the activation is quantized per call.
 *       {@code y = (x Q^T) * s + b}: per-row quantization, a quarter of fp32's memory traffic;</li>
 *   <li>fp16: W rounded to half precision and packed; fp32 activations and accumulation.</li>
 * </ul>
 * A decoding step multiplies a few rows by every weight matrix, which is memory-bound: fp32 GEMM also re-packs each
 * weight on every call. Packed once, a 1024 x 1024 layer took 48-60 us for one row in int8 and 86-102 in fp16 against
 * 850-1030 us as an fp32 linear here (docs/performance.md).
 */
public final class PackedLinear {
    /**
     * int8 weights use [-63, 63], 7 bits: CPUs without VNNI (AVX2, as the AMD EPYC CI machine) multiply activation
     * bytes (0..255) by weight bytes in pairs summed into 16 bits, which saturate past 32,767; with |q| <= 63 a pair
     * stays below 255 x 63 x 2 = 32,130. Full 8-bit weights moved the authors' fixture's hidden states by 0.73 (of
     * 3.1) on AVX2; 7 bits by the amount measured in docs/performance.md.
     */
    static final long LEVELS = 63;

    private final WeightType type;
    private final long in, out;
    private final Tensor packed, bias;
    // int8 only
    private final Tensor quantized, columnOffsets, rowScale, zeroBias;
    private final Scalar scale, zeroPoint;

    private PackedLinear(WeightType type, long in, long out, Tensor packed, Tensor bias, Tensor quantized,
                         Tensor columnOffsets, Tensor rowScale, Scalar scale, Scalar zeroPoint) {
        this.type = type;
        this.in = in;
        this.out = out;
        this.packed = keep(packed);
        this.bias = keep(bias);
        this.quantized = keep(quantized);
        this.columnOffsets = keep(columnOffsets);
        this.rowScale = keep(rowScale);
        this.scale = scale == null ? null : scale.retainReference();
        this.zeroPoint = zeroPoint == null ? null : zeroPoint.retainReference();
        this.zeroBias = type == WeightType.INT8 ? keep(torch.zeros(out)) : null;
    }

    /** Detaches a tensor made inside {@link #of}'s native-memory scope from it (null stays null). */
    private static Tensor keep(Tensor t) {
        return t == null ? null : t.retainReference();
    }

    /**
     * {@code weight} [out, in] and {@code bias} [out] (or null) packed as {@code type} (fp16 or int8). Every
     * temporary (the normalised and quantized copies) is freed before this returns: packing a release-size model
     * must not hold a second copy of it.
     */
    public static PackedLinear of(Tensor weight, Tensor bias, WeightType type) {
        if (!type.isPacked()) throw new IllegalArgumentException("only fp16 and int8 weights are packed: " + type);
        if (!weight.device().is_cpu()) {
            throw new calm4j.engine.UserError(type + " weights are packed for the CPU (fbgemm); on a GPU use bf16");
        }
        return calm4j.engine.Engine.step(() -> {
            try (NoGradGuard ng = new NoGradGuard()) {
                Tensor w = weight.detach().to(torch.ScalarType.Float).contiguous();
                Tensor b = bias == null ? null : bias.detach().to(torch.ScalarType.Float).contiguous().clone();
                long out = w.size(0), in = w.size(1);
                if (type == WeightType.FP16) {
                    return new PackedLinear(type, in, out, torch.fbgemm_pack_gemm_matrix_fp16(w), b, null, null,
                            null, null, null);
                }
                // Per-row scale: rows of very different magnitude (common in trained layers) keep their precision.
                Tensor s = rowAbsMax(w).clamp_min(c(1e-12)); // [out, 1]
                // Weights in [-LEVELS, LEVELS] with zero point 0: q = round(w / s * LEVELS).
                Tensor q = w.div(s).mul(c((double) LEVELS)).round().clamp_min(c(-LEVELS)).clamp_max(c(LEVELS))
                        .to(torch.ScalarType.Char);
                // fbgemm's zero-point correction: the sum of each output row's quantized weights.
                Tensor columnOffsets = q.sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional(
                        torch.ScalarType.Int));
                Tensor packed = torch.fbgemm_pack_quantized_matrix(q);
                // The int8 GEMM reads only the shape of its unpacked-weight argument: an [out, in] view of one zero
                // stands in for it, so the int8 copy is not kept beside the packed one.
                Tensor shape = torch.zeros(new long[] {1, 1},
                        new org.bytedeco.pytorch.TensorOptions(torch.ScalarType.Char)).expand(out, in);
                return new PackedLinear(type, in, out, packed, b, shape, columnOffsets, s.view(out),
                        c(1.0 / LEVELS), c(0L));
            }
        });
    }

    /**
     * The largest magnitude of each row of {@code w} [out, in], as [out, 1], in blocks of rows: a release's vocabulary
     * projection (128k x 2560) would otherwise need a second float copy of itself for abs().
     */
    public static Tensor rowAbsMax(Tensor w) {
        long rows = w.size(0), block = Math.max(1, (16L << 20) / Math.max(1, w.size(1)));
        org.bytedeco.pytorch.TensorVector parts = new org.bytedeco.pytorch.TensorVector();
        for (long at = 0; at < rows; at += block) {
            parts.push_back(w.narrow(0, at, Math.min(block, rows - at)).abs().amax(new long[] {1}, true));
        }
        return torch.cat(parts, 0);
    }

    /** {@code x} [..., in] -> [..., out]. */
    public Tensor forward(Tensor x) {
        long[] shape = x.sizes().vec().get();
        Tensor flat = x.reshape(-1, in).contiguous();
        Tensor y;
        if (type == WeightType.FP16) {
            y = torch.fbgemm_linear_fp16_weight_fp32_activation(flat, packed,
                    bias == null ? new TensorOptional() : new TensorOptional(bias));
        } else {
            y = torch.fbgemm_linear_int8_weight_fp32_activation(flat, quantized, packed, columnOffsets, scale,
                    zeroPoint, zeroBias);
            y = bias == null ? y.mul(rowScale) : torch.addcmul(bias, y, rowScale);
        }
        shape[shape.length - 1] = out;
        return y.view(shape);
    }

    public WeightType type() {
        return type;
    }

    /** Bytes the packed weight occupies (int8: 1 per element plus the row scales; fp16: 2 per element). */
    public long bytes() {
        return type == WeightType.INT8 ? in * out + 4 * out : 2 * in * out;
    }
}
