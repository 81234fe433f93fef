package calm4j.io;

import calm4j.engine.UserError;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A module's parameters by their dotted names, to and from files in the formats the field uses. */
public final class StateDict {
    private StateDict() {}

    /** The parameters of {@code m} by name (shared storage, not copies). */
    public static Map<String, Tensor> of(Module m) {
        return Layers.namedParameters(m);
    }

    /**
     * Copies {@code tensors} into the parameters of {@code m} with the same names. A missing tensor or a shape
     * mismatch is an error naming the tensor and both shapes. Returns the names in the file that the module does
     * not have.
     */
    public static List<String> load(Module m, Map<String, Tensor> tensors, String source) {
        Map<String, Tensor> params = of(m);
        for (var e : params.entrySet()) {
            Tensor t = tensors.get(e.getKey());
            if (t == null) {
                throw new UserError(source + " has no tensor " + e.getKey() + " (expected shape "
                        + Arrays.toString(e.getValue().sizes().vec().get()) + ")");
            }
            long[] want = e.getValue().sizes().vec().get(), got = t.sizes().vec().get();
            if (!Arrays.equals(want, got)) {
                throw new UserError(source + ": tensor " + e.getKey() + " has shape " + Arrays.toString(got)
                        + ", expected " + Arrays.toString(want) + " (does config.json match the weights?)");
            }
        }
        try (NoGradGuard ng = new NoGradGuard()) {
            for (var e : params.entrySet()) e.getValue().copy_(tensors.get(e.getKey()).to(e.getValue().scalar_type()));
        }
        List<String> unused = new ArrayList<>(tensors.keySet());
        unused.removeAll(Set.copyOf(params.keySet()));
        unused.removeIf(name -> isCheckedAlias(name, tensors, params, source));
        return unused;
    }

    /**
     * The name of the parameter that the authors' classes store a second time under {@code name}, or null: the
     * decoder's output weight is the encoder's embedding (tied logits), and {@code generative_head} is the same
     * module as {@code mlp_generator}.
     */
    static String aliasOf(String name) {
        if (name.endsWith("decoder.lm_head_weight")) {
            return name.substring(0, name.length() - "decoder.lm_head_weight".length()) + "encoder.embed_tokens.weight";
        }
        if (name.startsWith("generative_head.")) return "mlp_generator." + name.substring("generative_head.".length());
        return null;
    }

    /** Whether {@code name} is such a second copy, equal to its parameter; a copy that differs is an error. */
    private static boolean isCheckedAlias(String name, Map<String, Tensor> tensors, Map<String, Tensor> params,
                                          String source) {
        String of = aliasOf(name);
        if (of == null || !params.containsKey(of)) return false;
        Tensor copy = tensors.get(name), original = tensors.get(of);
        if (!Arrays.equals(copy.sizes().vec().get(), original.sizes().vec().get())
                || !torch.equal(copy.to(original.scalar_type()), original)) {
            throw new UserError(source + ": tensor " + name + " should be the same tensor as " + of
                    + " (the authors' classes store it under both names) but differs: the file is inconsistent");
        }
        return true;
    }

    /**
     * The tensors of a {@code model.safetensors} or a PyTorch {@code pytorch_model.bin}, floating-point ones as
     * float32. Both readers check every tensor's extent against the bytes present before reading it (a file that
     * lies is refused, never read past), and both read files of any size.
     */
    public static Map<String, Tensor> readFile(Path file) {
        if (file.getFileName().toString().endsWith(".safetensors")) return SafeTensors.read(file);
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (TorchArchive archive = TorchArchive.open(file)) {
            archive.readStateDict().forEach((name, t) ->
                    out.put(name, t.is_floating_point() ? t.to(torch.ScalarType.Float) : t));
        }
        return out;
    }
}
