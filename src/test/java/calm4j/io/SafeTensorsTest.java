package calm4j.io;

import calm4j.engine.UserError;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class SafeTensorsTest {
    /** A safetensors file from a header and raw little-endian data, as another writer would make it. */
    static Path raw(Path file, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Files.write(file, b.array());
        return file;
    }

    static byte[] shorts(int... v) {
        ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int x : v) b.putShort((short) x);
        return b.array();
    }

    @Test
    void float32AndInt64RoundTrip(@TempDir Path dir) {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("a.weight", torch.randn(3, 5));
        t.put("b", Tensor.create(new long[] {7, -1, (1L << 40) + 1}, 3)); // 2^40 + 1: no float holds it
        t.put("scalarish", torch.randn(1));
        Path f = dir.resolve("m.safetensors");
        SafeTensors.write(f, t, Map.of("format", "pt"));
        Map<String, Tensor> back = SafeTensors.read(f);
        assertEquals(t.keySet(), back.keySet());
        for (String k : t.keySet()) assertTrue(t.get(k).equal(back.get(k)), k);
        assertTrue(Layers.isType(back.get("b"), torch.ScalarType.Long), "int64 stays int64");
        assertEquals((1L << 40) + 1, back.get("b").select(0, 2).item_long());
    }

    @Test
    void halfAndBfloat16AreWidenedToFloat32(@TempDir Path dir) throws IOException {
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800; BF16: 1.0 = 0x3F80, -2.0 = 0xC000, 0.5 = 0x3F00
        Path f = raw(dir.resolve("h.safetensors"), "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[6,12]}}",
                concat(shorts(0x3C00, 0xC000, 0x3800), shorts(0x3F80, 0xC000, 0x3F00)));
        Map<String, Tensor> t = SafeTensors.read(f);
        float[] h = new float[3], b = new float[3];
        t.get("h").contiguous().data_ptr_float().get(h);
        t.get("b").contiguous().data_ptr_float().get(b);
        assertArrayEquals(new float[] {1f, -2f, 0.5f}, h);
        assertArrayEquals(new float[] {1f, -2f, 0.5f}, b);
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void anUnknownDtypeATruncatedFileAndABadHeaderAreNamed(@TempDir Path dir) throws IOException {
        Path f64 = raw(dir.resolve("d.safetensors"), "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
                new byte[8]);
        UserError e = assertThrows(UserError.class, () -> SafeTensors.read(f64));
        assertTrue(e.getMessage().contains("tensor w") && e.getMessage().contains("F64"), e.getMessage());

        Map<String, Tensor> t = Map.of("layer.weight", torch.randn(64, 64));
        Path good = dir.resolve("t.safetensors");
        SafeTensors.write(good, t, null);
        byte[] bytes = Files.readAllBytes(good);
        Files.write(good, java.util.Arrays.copyOf(bytes, bytes.length - 100));
        UserError cut = assertThrows(UserError.class, () -> SafeTensors.read(good));
        assertTrue(cut.getMessage().contains("layer.weight") && cut.getMessage().contains("truncated"),
                cut.getMessage());

        Path junk = dir.resolve("j.safetensors");
        Files.write(junk, new byte[] {1, 2, 3});
        assertTrue(assertThrows(UserError.class, () -> SafeTensors.read(junk)).getMessage()
                .contains("not a valid safetensors"));
    }
}
