package calm4j.nn;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.LinkedHashMap;
import java.util.Map;

/** Factories for libtorch layers with the initialisation calm4j uses everywhere: N(0, 0.02), zero biases (GPT-2). */
public final class Layers {
    public static final double INIT_STD = 0.02;

    private Layers() {}

    public static Linear linear(long in, long out, boolean bias) {
        return new Linear(in, out, bias);
    }

    public static EmbeddingImpl embedding(long vocab, long dim) {
        EmbeddingImpl e = new EmbeddingImpl(vocab, dim);
        try (var ng = new NoGradGuard()) {
            e.weight().normal_(0.0, INIT_STD, new GeneratorOptional());
        }
        return e;
    }

    /**
     * Whether {@code t} holds elements of {@code type}. Compares the code, not the constant: the ScalarType that
     * {@code scalar_type()} returns is a fresh object that is never {@code ==} to (or equal to) the enum's constant.
     */
    public static boolean isType(Tensor t, ScalarType type) {
        return t.scalar_type().value == type.value;
    }

    /** Options for a new tensor of {@code type} on the device of {@code like} (CPU or CUDA alike). */
    public static TensorOptions on(Tensor like, ScalarType type) {
        return new TensorOptions().device(new DeviceOptional(like.device()))
                .dtype(new ScalarTypeOptional(type));
    }

    /** Moves a module's parameters and buffers to {@code device} (nothing to do on the CPU). */
    public static void place(Module m, Device device) {
        if (!device.is_cpu()) m.to(device, false);
    }

    /** The device a module's parameters live on. */
    public static Device device(Module m) {
        return m.parameters(true).get(0).device();
    }

    /** The parameters of a module and its submodules by dotted name (handles sharing their storage). */
    public static Map<String, Tensor> namedParameters(Module m) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        var named = m.named_parameters(true);
        for (long i = 0; i < named.size(); i++) out.put(named.get(i).key().getString(), named.get(i).value());
        return out;
    }

    /** Trainable parameter count of a module. */
    public static long parameterCount(Module m, boolean trainableOnly) {
        long n = 0;
        var ps = m.parameters(true);
        for (long i = 0; i < ps.size(); i++) {
            Tensor p = ps.get(i);
            if (!trainableOnly || p.requires_grad()) n += p.numel();
        }
        return n;
    }

    /** Freezes every parameter of {@code m} (requires_grad false). */
    public static void freeze(Module m) {
        var ps = m.parameters(true);
        for (long i = 0; i < ps.size(); i++) ps.get(i).requires_grad_(false);
    }

}
