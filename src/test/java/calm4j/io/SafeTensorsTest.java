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

    private static String refusal(Path f) {
        return assertThrows(UserError.class, () -> SafeTensors.read(f)).getMessage();
    }

    @Test
    void aHeaderLengthNoFileCanHoldIsRefusedBeforeAnyAllocation(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("h.safetensors");
        Files.write(f, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array());
        String m = refusal(f);
        assertTrue(m.contains("header length " + Long.MAX_VALUE) && m.contains("does not fit"), m);
    }

    @Test
    void negativeMissingOrOverflowingDataOffsetsAreNamed(@TempDir Path dir) throws IOException {
        String negative = refusal(raw(dir.resolve("n.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", new byte[4]));
        assertTrue(negative.contains("tensor w") && negative.contains("data_offsets entry -4"), negative);
        String missing = refusal(raw(dir.resolve("m.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", new byte[4]));
        assertTrue(missing.contains("tensor w has no data_offsets"), missing);
        // Offsets near 2^63: begin + the data start would overflow a long and point back into the header.
        long huge = Long.MAX_VALUE - 8;
        String overflow = refusal(raw(dir.resolve("o.safetensors"), "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
                + "\"data_offsets\":[" + huge + "," + (huge + 4) + "]}}", new byte[4]));
        assertTrue(overflow.contains("tensor w") && overflow.contains("outside"), overflow);
        String shape = refusal(raw(dir.resolve("s.safetensors"), "{\"w\":{\"dtype\":\"F32\","
                + "\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", new byte[4]));
        assertTrue(shape.contains("too large"), shape);
    }

    @Test
    void overlappingTensorsAHoleAndTrailingBytesAreRefused(@TempDir Path dir) throws IOException {
        String overlap = refusal(raw(dir.resolve("o.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]));
        assertTrue(overlap.contains("overlaps"), overlap);
        String hole = refusal(raw(dir.resolve("h.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", new byte[12]));
        assertTrue(hole.contains("bytes 4-8") && hole.contains("hole"), hole);
        String trailing = refusal(raw(dir.resolve("t.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[12]));
        assertTrue(trailing.contains("trailing"), trailing);
    }

    @Test
    void aFileLargerThan2GiBReadsAndItsLastBytesLandInPlace(@TempDir Path dir) throws IOException {
        // One F32 tensor of 2^29 + 2^20 elements (2.004 GiB) in a sparse file: only its last element is written.
        long n = (1L << 29) + (1L << 20);
        byte[] h = ("{\"big\":{\"dtype\":\"F32\",\"shape\":[" + n + "],\"data_offsets\":[0," + 4 * n + "]}}")
                .getBytes(StandardCharsets.UTF_8);
        Path f = dir.resolve("big.safetensors");
        try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.SPARSE)) {
            ch.write(ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).flip());
            ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(7.5f).flip(), 8 + h.length + 4 * (n - 1));
        }
        assertTrue(Files.size(f) > (2L << 30));
        Tensor big = SafeTensors.read(f).get("big");
        assertEquals(n, big.numel());
        assertEquals(7.5f, (float) big.select(0, n - 1).item_double());
        assertEquals(0f, (float) big.select(0, n - 2).item_double());
    }
}
