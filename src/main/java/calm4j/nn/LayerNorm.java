package calm4j.nn;

import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/** LayerNorm with gain and bias over the last dimension (eps 1e-6, as the reference's energy head and input proj). */
public final class LayerNorm extends Module {
    public static final double EPS = 1e-6;
    private final Tensor weight;
    private final Tensor bias;
    private final long dim;

    public LayerNorm(long dim) {
        this.dim = dim;
        this.weight = new Tensor(register_parameter("weight", torch.ones(dim)));
        this.bias = new Tensor(register_parameter("bias", torch.zeros(dim)));
    }

    public Tensor forward(Tensor x) {
        return torch.layer_norm(x, new long[] {dim}, new TensorOptional(weight), new TensorOptional(bias), EPS, false);
    }
}
