package calm4j.io;

import calm4j.engine.UserError;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.*;

class TorchArchiveTest {
    static final Path FIXTURE = calm4j.Fixtures.OFFICIAL_TINY.resolve("autoencoder/pytorch_model.bin");

    /** The opcodes torch.save writes for {@code {name: tensor}}: enough to forge any lie about a tensor. */
    static final class Pickle {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Pickle op(int... bytes) {
            for (int b : bytes) out.write(b);
            return this;
        }

        Pickle str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            op('X').out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
            out.writeBytes(b);
            return this;
        }

        Pickle integer(long v) {
            if (v == (int) v) {
                op('J').out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
            } else { // LONG1 with 8 bytes
                op(0x8a, 8).out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
            }
            return this;
        }

        Pickle global(String module, String name) {
            op('c').out.writeBytes((module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII));
            return this;
        }

        Pickle tuple(long... v) {
            op('(');
            for (long x : v) integer(x);
            return op('t');
        }

        /** {@code {name: _rebuild_tensor_v2(storage(key, numel floats), offset, size, stride, False, OrderedDict())}}. */
        static byte[] stateDict(String name, String key, long numel, long offset, long[] size, long[] stride) {
            Pickle p = new Pickle().op(0x80, 2, '}', '(').str(name).global("torch._utils", "_rebuild_tensor_v2")
                    .op('(', '(').str("storage").global("torch", "FloatStorage").str(key).str("cpu").integer(numel)
                    .op('t', 'Q').integer(offset).tuple(size).tuple(stride).op(0x89)
                    .global("collections", "OrderedDict").op(')', 'R', 't', 'R', 'u', '.');
            return p.out.toByteArray();
        }
    }

    static byte[] floats(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) b.putFloat(x);
        return b.array();
    }

    static String refusal(Path f) {
        return assertThrows(UserError.class, () -> {
            try (TorchArchive a = TorchArchive.open(f)) {
                a.readStateDict();
            }
        }).getMessage();
    }

    @Test
    void aForgedStateDictReadsAsItsStorageSaysIncludingAStridedView(@TempDir Path dir) throws IOException {
        Map<String, byte[]> r = new LinkedHashMap<>();
        // w = storage[1:7] seen as a 2 x 3 matrix's transpose: shape [3, 2], strides [1, 3], offset 1
        r.put("m/data.pkl", Pickle.stateDict("w", "0", 8, 1, new long[] {3, 2}, new long[] {1, 3}));
        r.put("m/data/0", floats(0, 1, 2, 3, 4, 5, 6, 7));
        try (TorchArchive a = TorchArchive.open(CutRecords.zip(dir.resolve("m.bin"), r, false))) {
            Tensor w = a.readStateDict().get("w");
            assertArrayEquals(new long[] {3, 2}, w.sizes().vec().get());
            float[] v = new float[6];
            w.contiguous().data_ptr_float().get(v);
            assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, v);
        }
    }

    @Test
    void aStorageRecordCutShortIsRefusedNotReadPast(@TempDir Path dir) throws IOException {
        // The attack the issue found: the genuine fixture with one tensor's record cut to 16 bytes.
        Path bin = dir.resolve("cut.bin");
        String cut = CutRecords.cutFirst(FIXTURE, bin, 1024, 16);
        String m = refusal(bin);
        assertTrue(m.contains(cut.substring(cut.indexOf("data/"))) && m.contains("has 16 bytes")
                && m.contains("cut short"), m);
    }

    @Test
    void aTensorReachingPastItsStorageOrWithANegativeOffsetIsRefused(@TempDir Path dir) throws IOException {
        Map<String, byte[]> r = new LinkedHashMap<>();
        r.put("m/data.pkl", Pickle.stateDict("w", "0", 4, 2, new long[] {2, 2}, new long[] {2, 1}));
        r.put("m/data/0", floats(0, 1, 2, 3));
        String past = refusal(CutRecords.zip(dir.resolve("past.bin"), r, false));
        assertTrue(past.contains("reaches element 5 of storage 0, which has 4"), past);

        r.put("m/data.pkl", Pickle.stateDict("w", "0", 4, -1, new long[] {1}, new long[] {1}));
        String negative = refusal(CutRecords.zip(dir.resolve("neg.bin"), r, false));
        assertTrue(negative.contains("negative offset"), negative);

        r.put("m/data.pkl", Pickle.stateDict("w", "0", 4, 0, new long[] {1L << 40, 1L << 40},
                new long[] {1L << 40, 1}));
        String overflow = refusal(CutRecords.zip(dir.resolve("huge.bin"), r, false));
        assertTrue(overflow.contains("extent past any storage"), overflow);
    }

    @Test
    void aPickleThatNamesAnyOtherFunctionIsRefusedWithoutRunningIt(@TempDir Path dir) throws IOException {
        Pickle p = new Pickle().op(0x80, 2).global("os", "system").op('(').str("touch " + dir.resolve("pwned"))
                .op('t', 'R', '.');
        String m = refusal(CutRecords.zip(dir.resolve("evil.bin"), Map.of("m/data.pkl", p.out.toByteArray()), false));
        assertTrue(m.contains("os.system") && m.contains("refused"), m);
        assertFalse(Files.exists(dir.resolve("pwned")));
    }

    @Test
    void aPickleThatInflatesToMillionsOfObjectsIsRefusedBeforeTheHeapRunsOut(@TempDir Path dir) throws IOException {
        // 256 MB of tuple, None, mark and memo opcodes (compressed to a few hundred KB) made the machine hold
        // hundreds of millions of objects: OutOfMemoryError. It now stops after a bounded number of operations.
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.write(0x80);
        body.write(2);
        byte[] unit = {'(', 'N', 'N', 't', 'q', 0, ')', (byte) 0x94, 'N'}; // a tuple, memos, (), None: 3 objects
        byte[] block = new byte[unit.length * 4096];
        for (int i = 0; i < 4096; i++) System.arraycopy(unit, 0, block, i * unit.length, unit.length);
        for (int i = 0; i < (200 << 20) / block.length; i++) body.writeBytes(block);
        body.write('.');
        Path f = CutRecords.zip(dir.resolve("inflated.bin"), Map.of("m/data.pkl", body.toByteArray()), true);
        assertTrue(Files.size(f) < (16 << 20), "small on disk: " + Files.size(f));
        long t0 = System.nanoTime();
        String m = refusal(f);
        assertTrue(m.contains("more than") && m.contains("operations"), m);
        assertTrue((System.nanoTime() - t0) / 1e9 < 10, "refused quickly");
    }

    @Test
    void aListOrDictUsedAsADictKeyIsRefusedAsPythonRefusesItNestedOrHoldingItself(@TempDir Path dir)
            throws IOException {
        // A list holding itself as a key: hashing it would never end (StackOverflowError before).
        Pickle self = new Pickle().op(0x80, 2, '}', ']', 'q', 1, 'h', 1, 'a', 'N', 's', '.');
        String m = refusal(CutRecords.zip(dir.resolve("self.bin"), Map.of("m/data.pkl", self.out.toByteArray()),
                false));
        assertTrue(m.contains("unhashable"), m);
        // A list nested 200,000 deep as a key.
        Pickle deep = new Pickle().op(0x80, 2, '}');
        for (int i = 0; i < 200_000; i++) deep.op(']');
        for (int i = 0; i < 200_000 - 1; i++) deep.op('a');
        deep.op('N', 's', '.');
        m = refusal(CutRecords.zip(dir.resolve("deep.bin"), Map.of("m/data.pkl", deep.out.toByteArray()), true));
        assertTrue(m.contains("unhashable"), m);
        // A dict as a key, and a tuple nested 200,000 deep in an error message, are named without recursing.
        Pickle dictKey = new Pickle().op(0x80, 2, '}', '}', 'N', 's', '.');
        assertTrue(refusal(CutRecords.zip(dir.resolve("dict.bin"), Map.of("m/data.pkl", dictKey.out.toByteArray()),
                false)).contains("unhashable"));
        Pickle nested = new Pickle().op(0x80, 2).global("torch._utils", "_rebuild_tensor_v2").op(')');
        for (int i = 0; i < 200_000; i++) nested.op(0x85);
        nested.op('R', '.');
        m = refusal(CutRecords.zip(dir.resolve("nested.bin"), Map.of("m/data.pkl", nested.out.toByteArray()), true));
        assertTrue(m.contains("rebuilt from") || m.contains("calls"), m);
    }

    @Test
    void aCompressedRecordInflatingPastItsStorageStopsThere(@TempDir Path dir) throws IOException {
        // A zip bomb: 64 MiB of zeros deflate to about 64 KB; the storage says 4 floats.
        Map<String, byte[]> r = new LinkedHashMap<>();
        r.put("m/data.pkl", Pickle.stateDict("w", "0", 4, 0, new long[] {4}, new long[] {1}));
        r.put("m/data/0", new byte[64 << 20]);
        Path bomb = CutRecords.zip(dir.resolve("bomb.bin"), r, true);
        assertTrue(Files.size(bomb) < (1 << 20));
        String m = refusal(bomb);
        assertTrue(m.contains("record data/0 has " + (64 << 20) + " bytes") && m.contains("needs 16"), m);
    }

    @Test
    void aRecordLargerThan2GiBReadsStraightIntoTheTensor(@TempDir Path dir) throws IOException {
        long n = (1L << 29) + (1L << 20); // 2.004 GiB of floats: more than any Java array
        byte[] pickle = Pickle.stateDict("big", "0", n, 0, new long[] {n}, new long[] {1});
        Path f = dir.resolve("big.bin");
        // A stored zip written by hand as a sparse file: the pickle, then the big record, of which only the last
        // float is written (the CRC is that of the zeros and that float).
        byte[] tail = floats(7.5f);
        CRC32 crc = new CRC32();
        byte[] zeros = new byte[1 << 24];
        for (long left = 4 * (n - 1); left > 0; left -= zeros.length) crc.update(zeros, 0, (int) Math.min(zeros.length, left));
        crc.update(tail);
        CRC32 pc = new CRC32();
        pc.update(pickle);
        SparseZip.write(f, new SparseZip.Record("m/data.pkl", pickle, pickle.length, pc.getValue()),
                new SparseZip.Record("m/data/0", tail, 4 * n, crc.getValue()));
        assertTrue(Files.size(f) > (2L << 30));
        try (TorchArchive a = TorchArchive.open(f)) {
            Tensor big = a.readStateDict().get("big");
            assertEquals(n, big.numel());
            assertEquals(7.5f, (float) big.select(0, n - 1).item_double());
        } finally {
            Files.delete(f);
        }
    }

    /** Writes a zip of stored records by hand, each record's given bytes placed at its end (the rest a hole). */
    static final class SparseZip {
        record Record(String name, byte[] last, long size, long crc) {}

        static void write(Path file, Record... records) throws IOException {
            try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.CREATE_NEW,
                    java.nio.file.StandardOpenOption.WRITE, java.nio.file.StandardOpenOption.SPARSE)) {
                long at = 0;
                long[] offsets = new long[records.length];
                for (int i = 0; i < records.length; i++) {
                    Record r = records[i];
                    offsets[i] = at;
                    byte[] name = r.name().getBytes(StandardCharsets.UTF_8);
                    ByteBuffer h = ByteBuffer.allocate(30 + name.length).order(ByteOrder.LITTLE_ENDIAN);
                    h.putInt(0x04034b50).putShort((short) 20).putShort((short) 0).putShort((short) 0)
                            .putShort((short) 0).putShort((short) 0x21).putInt((int) r.crc()).putInt((int) r.size())
                            .putInt((int) r.size()).putShort((short) name.length).putShort((short) 0).put(name);
                    ch.write(h.flip(), at);
                    at += h.capacity();
                    ch.write(ByteBuffer.wrap(r.last()), at + r.size() - r.last().length);
                    at += r.size();
                }
                long cdStart = at;
                for (int i = 0; i < records.length; i++) {
                    Record r = records[i];
                    byte[] name = r.name().getBytes(StandardCharsets.UTF_8);
                    ByteBuffer c = ByteBuffer.allocate(46 + name.length).order(ByteOrder.LITTLE_ENDIAN);
                    c.putInt(0x02014b50).putShort((short) 20).putShort((short) 20).putShort((short) 0)
                            .putShort((short) 0).putShort((short) 0).putShort((short) 0x21).putInt((int) r.crc())
                            .putInt((int) r.size()).putInt((int) r.size()).putShort((short) name.length)
                            .putShort((short) 0).putShort((short) 0).putShort((short) 0).putShort((short) 0)
                            .putInt(0).putInt((int) offsets[i]).put(name);
                    ch.write(c.flip(), at);
                    at += c.capacity();
                }
                ByteBuffer end = ByteBuffer.allocate(22).order(ByteOrder.LITTLE_ENDIAN);
                end.putInt(0x06054b50).putShort((short) 0).putShort((short) 0).putShort((short) records.length)
                        .putShort((short) records.length).putInt((int) (at - cdStart)).putInt((int) cdStart)
                        .putShort((short) 0);
                ch.write(end.flip(), at);
            }
        }
    }
}
