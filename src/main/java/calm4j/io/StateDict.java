package calm4j.io;

import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import org.bytedeco.pytorch.ByteVector;
import org.bytedeco.pytorch.GenericDict;
import org.bytedeco.pytorch.GenericDictIterator;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.file.Files;
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
        Map<String, Tensor> out = new LinkedHashMap<>();
        var named = m.named_parameters(true);
        for (long i = 0; i < named.size(); i++) out.put(named.get(i).key().getString(), named.get(i).value());
        return out;
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
        return unused;
    }

    /** The tensors of a {@code model.safetensors} or a PyTorch {@code pytorch_model.bin} (zip, via libtorch). */
    public static Map<String, Tensor> readFile(Path file) {
        if (file.getFileName().toString().endsWith(".safetensors")) return SafeTensors.read(file);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
        IValue root = LibtorchErrors.guard("reading " + file, () -> torch.pickle_load(new ByteVector(bytes)));
        if (!root.isGenericDict()) {
            throw new UserError(file + " does not hold a state dict (a dict of name -> tensor)");
        }
        GenericDict dict = root.toGenericDict();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (GenericDictIterator it = dict.begin(); !it.equals(dict.end()); it = it.increment()) {
            IValue k = it.access().key(), v = it.access().value();
            if (!k.isString() || !v.isTensor()) continue;
            Tensor t = v.toTensor();
            out.put(k.toStringRef().getString(), t.is_floating_point() ? t.to(torch.ScalarType.Float) : t);
        }
        return out;
    }
}
