package calm4j.nn;

import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * Short forms of the libtorch calls whose JavaCPP spelling would hide the formula around them: with them the
 * autoencoder's KL term {@code 0.5 (mu^2 + sigma^2 - 1 - 2 log sigma)} reads
 * {@code mu.square().add(sigmaSquared).sub(c(1.0)).sub(twoLogSigma).mul(c(0.5))}, and the energy score's
 * {@code sum_{n,m} ||x_n - y_m||^alpha} reads {@code sum(distance(squaredDistances(x, y)), 1, 2)}.
 */
public final class Tensors {
    private Tensors() {}

    /** A constant operand, as a Python float in a PyTorch expression: {@code x.mul(c(0.5))} is {@code x * 0.5}. */
    public static Scalar c(double value) {
        return new Scalar(value);
    }

    /** An integral constant, as a Python int: for integer tensors (token ids, counts) and their fills. */
    public static Scalar c(long value) {
        return new Scalar(value);
    }

    /** {@code parts} joined along {@code dim}: {@code torch.cat([a, b, ...], dim)}. */
    public static Tensor cat(long dim, Tensor... parts) {
        return torch.cat(new TensorVector(parts), dim);
    }

    /** The sum over {@code dims}, which are dropped: {@code x.sum(dims)}. */
    public static Tensor sum(Tensor x, long... dims) {
        return x.sum(dims, false, new ScalarTypeOptional());
    }

    /** The sum over {@code dims}, each kept with size 1: {@code x.sum(dims, keepdim=True)}. */
    public static Tensor sumKeep(Tensor x, long... dims) {
        return x.sum(dims, true, new ScalarTypeOptional());
    }
}
