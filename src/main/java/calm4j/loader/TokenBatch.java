package calm4j.loader;

import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** A batch of token ids, {@code rows} sequences of {@code cols} tokens, row-major. */
public record TokenBatch(long[] ids, int rows, int cols) {
    /** The ids as an int64 tensor of shape [rows, cols] (a copy, on the CPU). */
    public Tensor tensor() {
        return Tensor.create(ids, rows, cols);
    }

    /** The ids as an int64 tensor [rows, cols] on {@code device}. */
    public Tensor tensor(Device device) {
        Tensor t = tensor();
        return device.is_cpu() ? t : t.to(device, ScalarType.Long);
    }

    public long tokens() {
        return (long) rows * cols;
    }
}
