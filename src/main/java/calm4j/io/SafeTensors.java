package calm4j.io;

import calm4j.engine.UserError;
import calm4j.nn.Layers;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
 * byte range, then the raw little-endian data. Reading maps the file and converts each tensor to float32 (int64
 * stays int64); F32, F16, BF16 and I64 are understood. Writing produces F32 (and I64) tensors in name order.
 */
public final class SafeTensors {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SafeTensors() {}

    /** Element size and libtorch type of the dtypes calm4j reads. */
    private static int width(String dtype) {
        return switch (dtype) {
            case "F32" -> 4;
            case "F16", "BF16" -> 2;
            case "I64" -> 8;
            default -> -1;
        };
    }

    /** All tensors of {@code file}, by name, in file order: float32 (from F32, F16, BF16) or int64. */
    public static Map<String, Tensor> read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw corrupt(file, "it has " + size + " bytes, fewer than the 8-byte header length");
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, 0, size);
            map.order(ByteOrder.LITTLE_ENDIAN);
            long headerLen = map.getLong(0);
            if (headerLen <= 0 || 8 + headerLen > size) {
                throw corrupt(file, "its header length " + headerLen + " does not fit in " + size + " bytes");
            }
            byte[] headerBytes = new byte[(int) headerLen];
            map.get(8, headerBytes);
            JsonNode header;
            try {
                header = JSON.readTree(new String(headerBytes, StandardCharsets.UTF_8).trim());
            } catch (IOException e) {
                throw corrupt(file, "its header is not JSON");
            }
            long dataStart = 8 + headerLen;
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (var it = header.fields(); it.hasNext(); ) {
                var e = it.next();
                if (e.getKey().equals("__metadata__")) continue;
                out.put(e.getKey(), tensor(file, e.getKey(), e.getValue(), map, dataStart, size));
            }
            return out;
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
    }

    private static Tensor tensor(Path file, String name, JsonNode info, MappedByteBuffer map, long dataStart,
                                 long fileSize) {
        String dtype = info.path("dtype").asText();
        int w = width(dtype);
        if (w < 0) {
            throw new UserError(file + ": tensor " + name + " has dtype " + dtype
                    + ", which calm4j does not read (F32, F16, BF16 and I64 are supported)");
        }
        long[] shape = new long[info.path("shape").size()];
        long count = 1;
        for (int i = 0; i < shape.length; i++) count *= shape[i] = info.path("shape").get(i).asLong();
        long begin = info.path("data_offsets").get(0).asLong(), end = info.path("data_offsets").get(1).asLong();
        if (end - begin != count * w) {
            throw corrupt(file, "tensor " + name + " has " + (end - begin) + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype + " (expected " + count * w + ")");
        }
        if (dataStart + end > fileSize) {
            throw corrupt(file, "tensor " + name + " ends at byte " + (dataStart + end) + " but the file has "
                    + fileSize + " (truncated?)");
        }
        ByteBuffer slice = map.slice((int) (dataStart + begin), (int) (end - begin)).order(ByteOrder.LITTLE_ENDIAN);
        long[] dims = shape.length == 0 ? new long[0] : shape;
        return switch (dtype) {
            case "F32" -> {
                float[] v = new float[(int) count];
                slice.asFloatBuffer().get(v);
                yield Tensor.create(v, dims);
            }
            case "I64" -> {
                long[] v = new long[(int) count];
                slice.asLongBuffer().get(v);
                yield Tensor.create(v, dims);
            }
            default -> { // 16-bit floats: reinterpret the bits in libtorch, then widen
                short[] v = new short[(int) count];
                slice.asShortBuffer().get(v);
                yield Tensor.create(v, dims).view(dtype.equals("F16") ? torch.ScalarType.Half
                        : torch.ScalarType.BFloat16).to(torch.ScalarType.Float);
            }
        };
    }

    private static UserError corrupt(Path file, String why) {
        return new UserError(file + " is not a valid safetensors file: " + why);
    }

    /** Writes {@code tensors} (float32 or int64) to {@code file}, atomically, with optional string metadata. */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) {
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        List<byte[]> blobs = new ArrayList<>();
        long offset = 0;
        for (var e : tensors.entrySet()) {
            Tensor t = e.getValue().contiguous();
            boolean isLong = Layers.isType(t, torch.ScalarType.Long);
            if (!isLong && !Layers.isType(t, torch.ScalarType.Float)) t = t.to(torch.ScalarType.Float);
            int n = (int) t.numel();
            ByteBuffer buf = ByteBuffer.allocate(n * (isLong ? 8 : 4)).order(ByteOrder.LITTLE_ENDIAN);
            if (isLong) {
                long[] v = new long[n];
                t.data_ptr_long().get(v);
                buf.asLongBuffer().put(v);
            } else {
                float[] v = new float[n];
                t.data_ptr_float().get(v);
                buf.asFloatBuffer().put(v);
            }
            ObjectNode info = header.putObject(e.getKey());
            info.put("dtype", isLong ? "I64" : "F32");
            var shape = info.putArray("shape");
            for (long d : t.sizes().vec().get()) shape.add(d);
            info.putArray("data_offsets").add(offset).add(offset + buf.capacity());
            offset += buf.capacity();
            blobs.add(buf.array());
        }
        byte[] h = header.toString().getBytes(StandardCharsets.UTF_8);
        int pad = (8 - h.length % 8) % 8; // keep the data 8-byte aligned, as the reference writer does
        byte[] headerBytes = Arrays.copyOf(h, h.length + pad);
        Arrays.fill(headerBytes, h.length, headerBytes.length, (byte) ' ');
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (OutputStream out = Files.newOutputStream(tmp)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
            out.write(headerBytes);
            for (byte[] b : blobs) out.write(b);
        } catch (IOException e) {
            throw new UserError("cannot write " + file + ": " + e.getMessage());
        }
        try {
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UserError("cannot write " + file + ": " + e.getMessage());
        }
    }
}
