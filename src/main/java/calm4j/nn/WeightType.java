package calm4j.nn;

import calm4j.engine.UserError;

import java.util.Locale;

/**
 * How a model's weights are held for inference. Training always uses float32; a run on disk keeps the weights it was
 * trained or imported with, and a type other than float32 is made when the model is loaded.
 * <ul>
 *   <li>{@code fp32}: as trained;</li>
 *   <li>{@code bf16}: every tensor in bfloat16 (slower than fp32 on CPUs without native bf16; for GPUs);</li>
 *   <li>{@code fp16}: each linear layer's weight packed in half precision for fbgemm's fp16 GEMM (CPU), activations
 *       in fp32;</li>
 *   <li>{@code int8}: each linear layer's weight quantized to int8 per output row and packed for fbgemm (CPU); the
 *       activations are quantized on the fly (dynamic quantization) and the output is fp32.</li>
 * </ul>
 */
public enum WeightType {
    FP32, BF16, FP16, INT8;

    /** "fp32", "bf16", "fp16" or "int8" (case ignored), or a clear error. */
    public static WeightType parse(String name) {
        try {
            return valueOf(name.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UserError("the weight type must be fp32, bf16, fp16 or int8, got '" + name + "'");
        }
    }

    /** Whether linear layers are packed for fbgemm (the CPU-only types). */
    public boolean isPacked() {
        return this == FP16 || this == INT8;
    }

    /** How calm4j writes it: "fp32", ... */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return label();
    }
}
