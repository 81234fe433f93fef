package calm4j.nn;

import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The SwiGLU MLP of Llama: {@code down(silu(gate(x)) * up(x))}, no biases. */
public final class SwiGLU extends Module {
    private final Linear gate;
    private final Linear up;
    private final Linear down;

    public SwiGLU(long dim, long hidden) {
        gate = register_module("gate_proj", Layers.linear(dim, hidden, false));
        up = register_module("up_proj", Layers.linear(dim, hidden, false));
        down = register_module("down_proj", Layers.linear(hidden, dim, false));
    }

    public Tensor forward(Tensor x) {
        return down.forward(torch.silu(gate.forward(x)).mul(up.forward(x)));
    }

    /** Packs the three weights for inference ({@link Linear#pack}). */
    public void pack(WeightType type) {
        gate.pack(type);
        up.pack(type);
        down.pack(type);
    }

    /** Multiply-accumulates per position: gate, up and down, each dim x hidden. */
    public static double macs(double dim, double hidden) {
        return 3 * dim * hidden;
    }
}
