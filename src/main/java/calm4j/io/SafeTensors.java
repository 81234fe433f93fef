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
 * byte range, then the raw little-endian data. Reading checks the whole header against the file first, then copies
 * each tensor into libtorch memory and converts it to float32 (int64 stays int64); F32, F16, BF16 and I64 are
 * understood. Writing produces F32 (and I64) tensors in name order.
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

    /** The safetensors format caps the JSON header at 100 MB (its reference reader refuses more). */
    static final long MAX_HEADER = 100_000_000L;

    /** One tensor of a file's header, checked: its type, shape and byte range within the data section. */
    record Entry(String name, String dtype, long[] shape, long begin, long end) {}

    /**
     * All tensors of {@code file}, by name, in file order: float32 (from F32, F16, BF16) or int64. The header is
     * checked completely before any tensor is read (types, shapes, byte ranges that tile the data section exactly,
     * with no overlap, hole or overflow), and each tensor's bytes are copied straight into its libtorch storage in
     * pieces, so files and tensors larger than 2 GiB read as any other.
     */
    public static Map<String, Tensor> read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            Layout layout = layout(file, ch);
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Entry e : layout.entries()) out.put(e.name(), tensor(file, ch, e, layout.dataStart()));
            return out;
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
    }

    private static long headerLength(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) throw corrupt(file, "it has " + size + " bytes, fewer than the 8-byte header length");
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, b, 0);
        long headerLen = b.getLong(0);
        if (headerLen <= 0 || headerLen > MAX_HEADER || headerLen > size - 8) {
            throw corrupt(file, "its header length " + headerLen + " does not fit in " + size + " bytes"
                    + (headerLen > MAX_HEADER ? " (the format allows at most " + MAX_HEADER + ")" : ""));
        }
        return headerLen;
    }

    /** A file's checked header: its tensors in file order, and where the data section starts. */
    record Layout(List<Entry> entries, long dataStart) {}

    /** The header's tensors in file order, every one checked, and their ranges checked to tile the data. */
    static Layout layout(Path file, FileChannel ch) throws IOException {
        long headerLen = headerLength(file, ch);
        ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
        readFully(ch, hb, 8);
        JsonNode header;
        try {
            header = JSON.readTree(new String(hb.array(), StandardCharsets.UTF_8).trim());
        } catch (IOException e) {
            throw corrupt(file, "its header is not JSON");
        }
        if (header == null || !header.isObject()) throw corrupt(file, "its header is not a JSON object");
        long dataSize = ch.size() - 8 - headerLen;
        List<Entry> entries = new ArrayList<>();
        for (var it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals("__metadata__")) continue;
            entries.add(entry(file, e.getKey(), e.getValue(), dataSize));
        }
        // The format forbids overlaps and holes: sorted by start, the ranges must tile [0, dataSize) exactly.
        List<Entry> byStart = new ArrayList<>(entries);
        byStart.sort(java.util.Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long at = 0;
        for (Entry e : byStart) {
            if (e.begin() < at) {
                throw corrupt(file, "tensor " + e.name() + " (bytes " + e.begin() + "-" + e.end() + ") overlaps "
                        + "another tensor's bytes");
            }
            if (e.begin() > at) {
                throw corrupt(file, "bytes " + at + "-" + e.begin() + " of its data belong to no tensor (a hole)");
            }
            at = e.end();
        }
        if (at != dataSize) {
            throw corrupt(file, "bytes " + at + "-" + dataSize + " of its data belong to no tensor (trailing data)");
        }
        return new Layout(entries, 8 + headerLen);
    }

    private static Entry entry(Path file, String name, JsonNode info, long dataSize) {
        if (!info.isObject()) throw corrupt(file, "tensor " + name + " is described by " + info + ", not an object");
        String dtype = info.path("dtype").asText();
        int w = width(dtype);
        if (w < 0) {
            throw new UserError(file + ": tensor " + name + " has dtype " + dtype
                    + ", which calm4j does not read (F32, F16, BF16 and I64 are supported)");
        }
        JsonNode shapeNode = info.path("shape"), offsets = info.path("data_offsets");
        if (!shapeNode.isArray()) throw corrupt(file, "tensor " + name + " has no shape array");
        long[] shape = new long[shapeNode.size()];
        long count = 1;
        try {
            for (int i = 0; i < shape.length; i++) {
                shape[i] = nonNegative(file, name, "shape", shapeNode.get(i));
                count = Math.multiplyExact(count, shape[i]);
            }
            count = Math.multiplyExact(count, (long) w);
        } catch (ArithmeticException e) {
            throw corrupt(file, "tensor " + name + " has a shape " + shapeNode + " too large for any file");
        }
        if (!offsets.isArray() || offsets.size() != 2) {
            throw corrupt(file, "tensor " + name + " has no data_offsets [begin, end]");
        }
        long begin = nonNegative(file, name, "data_offsets", offsets.get(0));
        long end = nonNegative(file, name, "data_offsets", offsets.get(1));
        if (begin > end || end > dataSize) {
            throw corrupt(file, "tensor " + name + " has data_offsets [" + begin + ", " + end + "] outside the "
                    + dataSize + " bytes of data (truncated?)");
        }
        if (end - begin != count) {
            throw corrupt(file, "tensor " + name + " has " + (end - begin) + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype + " (expected " + count + ")");
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long nonNegative(Path file, String name, String field, JsonNode v) {
        if (v == null || !v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
            throw corrupt(file, "tensor " + name + " has a " + field + " entry " + v + ", not a non-negative "
                    + "integer");
        }
        return v.asLong();
    }

    /** Reads {@code e}'s bytes into a new tensor of its type, in pieces of at most 1 GiB; widens 16-bit floats. */
    private static Tensor tensor(Path file, FileChannel ch, Entry e, long dataStart) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UserError("calm4j reads safetensors (little-endian) on little-endian machines only");
        }
        torch.ScalarType type = switch (e.dtype()) {
            case "F32" -> torch.ScalarType.Float;
            case "I64" -> torch.ScalarType.Long;
            case "F16" -> torch.ScalarType.Half;
            default -> torch.ScalarType.BFloat16;
        };
        Tensor t = torch.empty(e.shape(), new org.bytedeco.pytorch.DimnameListOptional(),
                new org.bytedeco.pytorch.TensorOptions(type), new org.bytedeco.pytorch.MemoryFormatOptional());
        long bytes = e.end() - e.begin();
        org.bytedeco.javacpp.BytePointer base = new org.bytedeco.javacpp.BytePointer(t.data_ptr()).capacity(bytes);
        for (long at = 0; at < bytes; at += PIECE) {
            long n = Math.min(PIECE, bytes - at);
            // a fresh pointer per piece: a ByteBuffer's bounds are ints, so they are counted from the piece's start
            ByteBuffer target = base.getPointer(at).position(0).limit(n).asByteBuffer();
            readFully(ch, target, dataStart + e.begin() + at);
        }
        return type == torch.ScalarType.Half || type == torch.ScalarType.BFloat16 ? t.to(torch.ScalarType.Float) : t;
    }

    private static final long PIECE = 1L << 30;

    private static void readFully(FileChannel ch, ByteBuffer b, long position) throws IOException {
        long at = position;
        while (b.hasRemaining()) {
            int n = ch.read(b, at);
            if (n < 0) throw new IOException("unexpected end of file at byte " + at);
            at += n;
        }
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
