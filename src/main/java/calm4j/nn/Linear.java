package calm4j.nn;

import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/**
 * {@code y = x W^T + b}, W [out, in] initialised N(0, 0.02) and b zero (GPT-2's), under the parameter names
 * {@code weight} and {@code bias} (libtorch's and Hugging Face's). For inference the weight can be packed as fp16
 * or int8 ({@link #pack}); one row of fp32 input without autograd is a matrix-vector product (a GEMM would first
 * re-pack all of W for it).
 */
public final class Linear extends Module {
    private final Tensor weight, bias;
    private PackedLinear packed; // null: fp32

    public Linear(long in, long out, boolean withBias) {
        // Copies: register_parameter returns a reference into a vector that moves (docs: pytorch-java.md).
        weight = new Tensor(register_parameter("weight", torch.empty(out, in)));
        bias = withBias ? new Tensor(register_parameter("bias", torch.zeros(out))) : null;
        try (NoGradGuard ng = new NoGradGuard()) {
            // libtorch's own Linear first draws a Kaiming-uniform weight and bias; drawing them too (then replacing
            // them) keeps the random stream, so a seeded model is the one earlier calm4j versions built.
            double bound = 1 / Math.sqrt(in);
            weight.uniform_(-bound, bound, new GeneratorOptional());
            if (withBias) bias.uniform_(-bound, bound, new GeneratorOptional());
            weight.normal_(0.0, Layers.INIT_STD, new GeneratorOptional());
            if (withBias) bias.zero_();
        }
    }

    public Tensor weight() {
        return weight;
    }

    /** The bias, or null. */
    public Tensor bias() {
        return bias;
    }

    public Tensor forward(Tensor x) {
        return packed != null ? packed.forward(x) : apply(x, weight, bias);
    }

    /**
     * {@code x W^T + b} for any weight {@code w} [out, in] (a view of a larger one too) and bias (or null): one row of
     * input without autograd, on the CPU, is a matrix-vector product; anything else libtorch's linear.
     */
    public static Tensor apply(Tensor x, Tensor w, Tensor b) {
        if (x.numel() == w.size(1) && x.device().is_cpu() && !x.requires_grad()) { // one row: [.., 1, in]
            Tensor v = x.reshape(-1);
            Tensor y = b == null ? torch.mv(w, v) : torch.addmv(b, w, v);
            long[] shape = x.sizes().vec().get();
            shape[shape.length - 1] = w.size(0);
            return y.view(shape);
        }
        return torch.linear(x, w, b == null ? new TensorOptional() : new TensorOptional(b));
    }

    /**
     * Packs the weight as {@code type} for inference (fp16 or int8; fp32 and bf16 leave it as it is) and frees the
     * float weight (the parameter becomes empty): the packed copy is all that runs, so a packed model is for
     * inference only, never saved or trained. The run on disk is unchanged.
     */
    public void pack(WeightType type) {
        if (!type.isPacked()) return;
        packed = PackedLinear.of(weight, bias, type);
        release(weight);
    }

    /** Frees a parameter's storage (it becomes empty) once a packed copy has replaced it. */
    public static void release(Tensor parameter) {
        try (NoGradGuard ng = new NoGradGuard()) {
            parameter.set_();
        }
    }

    /** Whether {@link #pack} packed this layer. */
    public boolean isPacked() {
        return packed != null;
    }
}
