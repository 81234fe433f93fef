package calm4j.nn;

import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/** RMSNorm with a learned gain: {@code x / sqrt(mean(x^2) + eps) * weight} (eps 1e-6, as the reference). */
public final class RMSNorm extends Module {
    public static final double EPS = 1e-6;
    private final Tensor weight;
    private final long dim;

    public RMSNorm(long dim) {
        this.dim = dim;
        this.weight = new Tensor(register_parameter("weight", torch.ones(dim)));
    }

    public Tensor forward(Tensor x) {
        return torch.rms_norm(x, new long[] {dim}, new TensorOptional(weight), new DoubleOptional(EPS));
    }
}
