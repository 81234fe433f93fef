package calm4j.nn;

import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** The SwiGLU MLP of Llama: {@code down(silu(gate(x)) * up(x))}, no biases. */
public final class SwiGLU extends Module {
    private final LinearImpl gate;
    private final LinearImpl up;
    private final LinearImpl down;

    public SwiGLU(long dim, long hidden) {
        gate = register_module("gate_proj", Layers.linear(dim, hidden, false));
        up = register_module("up_proj", Layers.linear(dim, hidden, false));
        down = register_module("down_proj", Layers.linear(hidden, dim, false));
    }

    public Tensor forward(Tensor x) {
        return down.forward(torch.silu(gate.forward(x)).mul(up.forward(x)));
    }

    /** Multiply-adds per position (for FLOP counts). */
    public static long macs(long dim, long hidden) {
        return 3 * dim * hidden;
    }

}
