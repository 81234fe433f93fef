package calm4j.io;

import calm4j.engine.UserError;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PyTorch's zip checkpoints, read without trusting them: {@code torch.save}'s {@code pytorch_model.bin} and libtorch's
 * own archives (a calm4j checkpoint's {@code model.pt}). Both are a zip of {@code PREFIX/data.pkl}, a pickle whose
 * tensors point at raw storage records {@code PREFIX/data/KEY}.
 *
 * <p>libtorch's unpickler takes a tensor's offset, sizes and strides on trust: a storage record cut short, or an
 * extent past its end, makes it copy process memory into the weights. This reader runs the pickle on a small
 * machine of its own that knows only what a checkpoint needs (dicts, tuples, lists, numbers, strings, the tensor
 * rebuild call and the storage types; any other global is refused, so a pickle cannot run code), and checks every
 * tensor against the bytes actually present before anything is read:
 * <ul>
 *   <li>a storage's record exists and holds exactly {@code numel x element size} bytes;</li>
 *   <li>offsets, sizes and strides are non-negative, and the last element a tensor reaches lies inside its storage
 *       ({@code offset + sum (size_i - 1) stride_i < numel}, in exact arithmetic);</li>
 *   <li>a compressed record inflates to no more than its storage needs (a zip bomb stops there).</li>
 * </ul>
 * Records are copied straight into libtorch memory in pieces, so a file or tensor larger than 2 GiB reads as any
 * other.
 */
public final class TorchArchive implements AutoCloseable {
    /** A storage the pickle refers to: its record, element type and length in elements. */
    public record Storage(String key, String type, long numel) {
        int elementSize() {
            return DTYPES.get(type).size;
        }
    }

    /** A tensor as the pickle describes it: a view of a storage. */
    public record TensorRef(Storage storage, long offset, long[] size, long[] stride) {
        public long numel() {
            long n = 1;
            for (long s : size) n *= s;
            return n;
        }

        /** Whether this tensor is its whole storage, row-major: then it is a view, with no copy. */
        boolean isWholeStorage() {
            if (offset != 0 || numel() != storage.numel()) return false;
            long expected = 1;
            for (int i = size.length - 1; i >= 0; i--) {
                if (size[i] != 1 && stride[i] != expected) return false;
                expected *= size[i];
            }
            return true;
        }
    }

    private record DType(torch.ScalarType scalar, int size) {}

    /** The storage classes a checkpoint may name, with their libtorch type and element size. */
    private static final Map<String, DType> DTYPES = Map.ofEntries(
            Map.entry("FloatStorage", new DType(torch.ScalarType.Float, 4)),
            Map.entry("DoubleStorage", new DType(torch.ScalarType.Double, 8)),
            Map.entry("HalfStorage", new DType(torch.ScalarType.Half, 2)),
            Map.entry("BFloat16Storage", new DType(torch.ScalarType.BFloat16, 2)),
            Map.entry("LongStorage", new DType(torch.ScalarType.Long, 8)),
            Map.entry("IntStorage", new DType(torch.ScalarType.Int, 4)),
            Map.entry("ShortStorage", new DType(torch.ScalarType.Short, 2)),
            Map.entry("CharStorage", new DType(torch.ScalarType.Char, 1)),
            Map.entry("ByteStorage", new DType(torch.ScalarType.Byte, 1)),
            Map.entry("BoolStorage", new DType(torch.ScalarType.Bool, 1)));

    /** The pickle's data.pkl is read whole: a state dict's pickle is small (kilobytes per tensor name). */
    private static final long MAX_PICKLE_BYTES = 256L << 20;

    private final Path file;
    private final ZipFile zip;
    private final FileChannel channel; // stored records are read through it straight into tensor memory
    private final String prefix;
    private final Object root;
    private final Map<String, Storage> storages = new HashMap<>();

    private TorchArchive(Path file) {
        this.file = file;
        try {
            channel = FileChannel.open(file, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
        try {
            zip = ZipFile.builder().setSeekableByteChannel(channel).setIgnoreLocalFileHeader(false).get();
        } catch (IOException e) {
            closeChannel();
            throw corrupt("it is not a zip archive (" + e.getMessage() + ")");
        }
        try {
            prefix = findPrefix();
            root = new Machine(readPickle(), records()).run();
        } catch (RuntimeException e) {
            closeQuietly();
            throw e;
        }
    }

    /** Opens and checks {@code file}: every tensor it describes fits the storage records present. */
    public static TorchArchive open(Path file) {
        return new TorchArchive(file);
    }

    /** Checks {@code file} as {@link #open} does, reading no tensor data. */
    public static void verify(Path file) {
        open(file).close();
    }

    /**
     * The tensors of a state dict (a dict of name -> tensor at the pickle's root), by name in file order, each in
     * its stored type. Entries whose key is not a string or whose value is not a tensor are left out.
     */
    public Map<String, Tensor> readStateDict() {
        if (!(root instanceof Map<?, ?> dict)) {
            throw new UserError(file + " does not hold a state dict (a dict of name -> tensor)");
        }
        Map<String, Tensor> loaded = new HashMap<>();
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (var e : dict.entrySet()) {
            if (e.getKey() instanceof String name && e.getValue() instanceof TensorRef ref) {
                Tensor whole = loaded.computeIfAbsent(ref.storage().key(), k -> readStorage(ref.storage()));
                out.put(name, ref.isWholeStorage() ? whole.view(ref.size()) : whole.as_strided(ref.size(),
                        ref.stride(), new org.bytedeco.pytorch.LongOptional(ref.offset())).clone());
            }
        }
        return out;
    }

    @Override
    public void close() {
        closeQuietly();
    }

    private void closeQuietly() {
        try {
            zip.close();
        } catch (IOException ignored) {
            // read-only: nothing to lose
        }
        closeChannel();
    }

    private void closeChannel() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // read-only: nothing to lose
        }
    }

    private UserError corrupt(String why) {
        return new UserError(file + " is not a valid PyTorch checkpoint: " + why);
    }

    /** The folder every record of the archive lives in ({@code archive/}, {@code pytorch_model/}, ...). */
    private String findPrefix() {
        String found = null;
        for (var it = zip.getEntries(); it.hasMoreElements(); ) {
            String name = it.nextElement().getName();
            if (name.endsWith("/data.pkl") && name.indexOf('/') == name.length() - "/data.pkl".length()) {
                if (found != null) throw corrupt("it holds two pickles (" + found + "data.pkl and " + name + ")");
                found = name.substring(0, name.length() - "data.pkl".length());
            }
        }
        if (found == null) throw corrupt("it has no data.pkl (is it a PyTorch file saved by torch.save?)");
        ZipArchiveEntry order = zip.getEntry(found + "byteorder");
        if (order != null && !new String(readSmall(order, 16), StandardCharsets.US_ASCII).equals("little")) {
            throw corrupt("its tensors are stored big-endian, which calm4j does not read");
        }
        return found;
    }

    /** How many records the archive holds (each storage is one). */
    private int records() {
        int n = 0;
        for (var it = zip.getEntries(); it.hasMoreElements(); it.nextElement()) n++;
        return n;
    }

    private byte[] readPickle() {
        ZipArchiveEntry e = zip.getEntry(prefix + "data.pkl");
        return readSmall(e, MAX_PICKLE_BYTES);
    }

    /** A whole record of at most {@code limit} bytes. */
    private byte[] readSmall(ZipArchiveEntry e, long limit) {
        if (e.getSize() > limit) {
            throw corrupt(e.getName() + " is " + e.getSize() + " bytes, more than the " + limit + " it may have");
        }
        try (InputStream in = zip.getInputStream(e)) {
            byte[] b = in.readNBytes((int) limit + 1);
            if (b.length > limit) throw corrupt(e.getName() + " inflates to more than " + limit + " bytes");
            return b;
        } catch (IOException x) {
            throw corrupt(e.getName() + " cannot be read (" + x.getMessage() + ")");
        }
    }

    /**
     * A storage record, checked against its declared length, as a flat tensor of its type. A stored record (as
     * torch.save writes them) is read from the file straight into the tensor in pieces; a compressed one is inflated
     * through a buffer, never past the storage's length.
     */
    private Tensor readStorage(Storage s) {
        ZipArchiveEntry e = zip.getEntry(prefix + "data/" + s.key());
        long bytes = Math.multiplyExact(s.numel(), (long) s.elementSize());
        Tensor t = torch.empty(new long[] {s.numel()}, new org.bytedeco.pytorch.DimnameListOptional(),
                new TensorOptions(DTYPES.get(s.type()).scalar()), new org.bytedeco.pytorch.MemoryFormatOptional());
        BytePointer base = new BytePointer(t.data_ptr()).capacity(bytes);
        try {
            if (e.getMethod() == ZipArchiveEntry.STORED && e.getDataOffset() >= 0) {
                for (long at = 0; at < bytes; at += PIECE) {
                    long n = Math.min(PIECE, bytes - at);
                    ByteBuffer target = base.getPointer(at).position(0).limit(n).asByteBuffer();
                    for (long pos = e.getDataOffset() + at; target.hasRemaining(); ) {
                        int got = channel.read(target, pos);
                        if (got < 0) throw corrupt("record " + e.getName() + " ends before its " + bytes + " bytes");
                        pos += got;
                    }
                }
                return t;
            }
            byte[] buf = new byte[1 << 20];
            try (InputStream in = zip.getInputStream(e)) {
                long at = 0;
                while (at < bytes) {
                    int n = in.read(buf, 0, (int) Math.min(buf.length, bytes - at));
                    if (n < 0) throw corrupt("record " + e.getName() + " ends after " + at + " of " + bytes + " bytes");
                    base.position(at).put(buf, 0, n);
                    at += n;
                }
                if (in.read() >= 0) throw corrupt("record " + e.getName() + " holds more than its " + bytes + " bytes");
            }
        } catch (IOException x) {
            throw corrupt("record " + e.getName() + " cannot be read (" + x.getMessage() + ")");
        }
        return t;
    }

    private static final long PIECE = 1L << 30;

    /** The storage a persistent id names, its record checked against it. */
    private Storage storage(Object pid) {
        if (!(pid instanceof Object[] t) || t.length != 5 || !"storage".equals(t[0])
                || !(t[1] instanceof Global g) || !(t[2] instanceof String key) || !(t[4] instanceof Long numel)) {
            throw corrupt("its pickle refers to a persistent object " + describe(pid) + " that is not a storage");
        }
        String type = g.storageType();
        if (type == null) throw corrupt("storage " + key + " has type " + g + ", which is not a tensor storage");
        Storage known = storages.get(key);
        if (known != null) {
            if (!known.type().equals(type) || known.numel() != numel) {
                throw corrupt("storage " + key + " is described twice, differently");
            }
            return known;
        }
        if (numel < 0) throw corrupt("storage " + key + " has a negative length " + numel);
        ZipArchiveEntry e = zip.getEntry(prefix + "data/" + key);
        if (e == null) throw corrupt("storage " + key + " has no record data/" + key);
        long bytes;
        try {
            bytes = Math.multiplyExact(numel, (long) DTYPES.get(type).size());
        } catch (ArithmeticException x) {
            throw corrupt("storage " + key + " claims " + numel + " elements, more than any file holds");
        }
        if (e.getSize() != bytes) {
            throw corrupt("record data/" + key + " has " + e.getSize() + " bytes, but its storage of " + numel + " "
                    + type + " elements needs " + bytes + " (cut short or padded)");
        }
        Storage s = new Storage(key, type, numel);
        storages.put(key, s);
        return s;
    }

    /** {@code _rebuild_tensor_v2(storage, offset, size, stride, ...)}, its extent checked against the storage. */
    private TensorRef rebuild(Object[] args) {
        if (args.length < 4 || !(args[0] instanceof Storage s) || !(args[1] instanceof Long offset)
                || !(args[2] instanceof Object[] sizeT) || !(args[3] instanceof Object[] strideT)
                || sizeT.length != strideT.length) {
            throw corrupt("a tensor is rebuilt from " + describe(args) + ", not (storage, offset, size, stride)");
        }
        long[] size = longs(sizeT, "size"), stride = longs(strideT, "stride");
        if (offset < 0) throw corrupt("a tensor of storage " + s.key() + " has a negative offset " + offset);
        boolean empty = Arrays.stream(size).anyMatch(x -> x == 0);
        if (!empty) {
            try {
                long last = offset;
                for (int i = 0; i < size.length; i++) last = Math.addExact(last, Math.multiplyExact(size[i] - 1,
                        stride[i]));
                if (last >= s.numel()) {
                    throw corrupt("a tensor of shape " + Arrays.toString(size) + " reaches element " + last
                            + " of storage " + s.key() + ", which has " + s.numel());
                }
            } catch (ArithmeticException x) {
                throw corrupt("a tensor of shape " + Arrays.toString(size) + " has an extent past any storage");
            }
        }
        return new TensorRef(s, offset, size, stride);
    }

    private long[] longs(Object[] tuple, String what) {
        long[] v = new long[tuple.length];
        for (int i = 0; i < v.length; i++) {
            if (!(tuple[i] instanceof Long x) || x < 0) {
                throw corrupt("a tensor's " + what + " " + describe(tuple) + " is not a tuple of non-negative integers");
            }
            v[i] = x;
        }
        return v;
    }

    /** At most 120 characters of what {@code o} is, looking at most three levels into nested containers. */
    private static String describe(Object o) {
        StringBuilder sb = new StringBuilder();
        describe(o, sb, 0);
        return sb.length() > 120 ? sb.substring(0, 120) + "..." : sb.toString();
    }

    private static void describe(Object o, StringBuilder sb, int depth) {
        if (sb.length() > 120) return;
        if (o instanceof Object[] || o instanceof List<?>) {
            List<?> items = o instanceof Object[] a ? Arrays.asList(a) : (List<?>) o;
            if (depth >= 3) {
                sb.append(o instanceof Object[] ? "(...)" : "[...]");
                return;
            }
            sb.append(o instanceof Object[] ? '(' : '[');
            for (int i = 0; i < items.size() && sb.length() <= 120; i++) {
                if (i > 0) sb.append(", ");
                describe(items.get(i), sb, depth + 1);
            }
            sb.append(o instanceof Object[] ? ')' : ']');
        } else if (o instanceof Map<?, ?> m) {
            sb.append("dict of ").append(m.size());
        } else {
            String s = String.valueOf(o);
            sb.append(s, 0, Math.min(s.length(), 121 - Math.min(121, sb.length())));
        }
    }

    /** A global the pickle names: the few a checkpoint needs, each a marker the machine knows how to call. */
    private record Global(String module, String name) {
        String storageType() {
            return module.equals("torch") && DTYPES.containsKey(name) ? name : null;
        }

        boolean is(String m, String n) {
            return module.equals(m) && name.equals(n);
        }

        @Override
        public String toString() {
            return module + "." + name;
        }
    }

    /** An object of a libtorch archive's own classes ({@code __torch__.*}): its state, kept opaque. */
    private static final class Opaque {
        Object state;
    }

    /**
     * The pickle virtual machine, restricted to the opcodes and globals that torch.save and libtorch write for
     * tensors and containers (protocols 2 to 4). Anything else is refused with its name.
     */
    private final class Machine {
        private final ByteBuffer in;
        private final List<Object> stack = new ArrayList<>();
        private final List<Integer> marks = new ArrayList<>();
        private final Map<Long, Object> memo = new HashMap<>();
        /**
         * The most opcodes the pickle may run: a tensor takes about 30 (its name, the rebuild call, its storage,
         * size and stride tuples, memo entries), so this is thousands of times what the archive's records can
         * describe. Every object the machine holds (on its stack, in its memo or containers) took at least one
         * opcode, so memory stays bounded whatever the pickle does (a 256 MB pickle of tuple and memo opcodes ran
         * the heap out before).
         */
        private final long maxOps;
        private long ops;

        Machine(byte[] pickle, int records) {
            in = ByteBuffer.wrap(pickle).order(ByteOrder.LITTLE_ENDIAN);
            maxOps = 1_000_000L + 1_000L * records;
        }

        Object run() {
            try {
                while (true) {
                    if (++ops > maxOps) {
                        throw corrupt("its pickle runs more than " + maxOps + " operations, far more than the "
                                + "tensors of its storage records need");
                    }
                    int op = in.get() & 0xff;
                    switch (op) {
                        case 0x80 -> in.get();                                      // PROTO
                        case 0x95 -> in.getLong();                                  // FRAME
                        case '.' -> {                                               // STOP
                            if (stack.size() != 1) throw corrupt("its pickle ends with a malformed stack");
                            return stack.get(0);
                        }
                        case '(' -> { marks.add(stack.size()); }                   // MARK
                        case ')' -> push(new Object[0]);                            // EMPTY_TUPLE
                        case '}' -> push(new LinkedHashMap<>());                    // EMPTY_DICT
                        case ']' -> push(new ArrayList<>());                        // EMPTY_LIST
                        case 'N' -> push(null);
                        case 0x88 -> push(Boolean.TRUE);
                        case 0x89 -> push(Boolean.FALSE);
                        case 'J' -> push((long) in.getInt());                      // BININT
                        case 'K' -> push((long) (in.get() & 0xff));                // BININT1
                        case 'M' -> push((long) (in.getShort() & 0xffff));         // BININT2
                        case 0x8a -> push(long1(in.get() & 0xff));                  // LONG1
                        case 'G' -> push(Double.longBitsToDouble(Long.reverseBytes(in.getLong()))); // BINFLOAT: big-endian
                        case 'X' -> push(string(in.getInt() & 0xffffffffL));        // BINUNICODE
                        case 0x8c -> push(string(in.get() & 0xff));                 // SHORT_BINUNICODE
                        case 'q' -> memo.put((long) (in.get() & 0xff), top());      // BINPUT
                        case 'r' -> memo.put(in.getInt() & 0xffffffffL, top());     // LONG_BINPUT
                        case 0x94 -> memo.put((long) memo.size(), top());           // MEMOIZE
                        case 'h' -> push(recall(in.get() & 0xff));                  // BINGET
                        case 'j' -> push(recall(in.getInt() & 0xffffffffL));        // LONG_BINGET
                        case 't' -> push(popMark().toArray());                      // TUPLE
                        case 0x85 -> push(new Object[] {pop()});                    // TUPLE1
                        case 0x86 -> { Object b = pop(), a = pop(); push(new Object[] {a, b}); } // TUPLE2
                        case 0x87 -> { Object c = pop(), b = pop(), a = pop(); push(new Object[] {a, b, c}); }
                        case 'c' -> push(global(line(), line()));                   // GLOBAL
                        case 0x93 -> { Object n = pop(), m = pop(); push(global(str(m), str(n))); } // STACK_GLOBAL
                        case 'Q' -> push(storage(pop()));                           // BINPERSID
                        case 'R' -> { Object args = pop(), f = pop(); push(call(f, args)); } // REDUCE
                        case 0x81 -> { Object args = pop(), cls = pop(); push(newObject(cls, args)); } // NEWOBJ
                        case 'b' -> { Object state = pop(); build(top(), state); }  // BUILD
                        case 's' -> { Object v = pop(), k = pop(); dict(top()).put(hashable(k), v); } // SETITEM
                        case 'u' -> setItems(popMark());                             // SETITEMS
                        case 'a' -> { Object v = pop(); list(top()).add(v); }       // APPEND
                        case 'e' -> { List<Object> items = popMark(); list(top()).addAll(items); } // APPENDS
                        default -> throw corrupt(String.format("its pickle uses opcode 0x%02x at byte %d, which a "
                                + "checkpoint never needs", op, in.position() - 1));
                    }
                }
            } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException e) {
                throw corrupt("its pickle is truncated or malformed");
            } catch (StackOverflowError e) {
                throw corrupt("its pickle nests objects too deeply for a checkpoint");
            }
        }

        private Object global(String module, String name) {
            Global g = new Global(module, name);
            if (g.is("collections", "OrderedDict") || g.is("torch._utils", "_rebuild_tensor_v2")
                    || g.is("torch._utils", "_rebuild_parameter") || g.storageType() != null
                    || module.equals("__torch__") || module.startsWith("__torch__.")) {
                return g;
            }
            throw corrupt("its pickle names " + g + ", which a checkpoint never needs (refused: a pickle that "
                    + "calls arbitrary functions can run code)");
        }

        private Object call(Object f, Object args) {
            if (!(f instanceof Global g) || !(args instanceof Object[] a)) {
                throw corrupt("its pickle calls " + describe(f) + ", which is not a known function");
            }
            if (g.is("collections", "OrderedDict") && a.length == 0) return new LinkedHashMap<>();
            if (g.is("torch._utils", "_rebuild_tensor_v2")) return rebuild(a);
            if (g.is("torch._utils", "_rebuild_parameter") && a.length >= 1 && a[0] instanceof TensorRef t) return t;
            throw corrupt("its pickle calls " + g + " with " + describe(a) + ", which a checkpoint never does");
        }

        private Object newObject(Object cls, Object args) {
            if (cls instanceof Global g && g.module().startsWith("__torch__")) return new Opaque();
            throw corrupt("its pickle creates an object of " + describe(cls) + ", which a checkpoint never does");
        }

        private void build(Object target, Object state) {
            if (target instanceof Opaque o) o.state = state;
            else if (!(target instanceof Map<?, ?>)) {
                throw corrupt("its pickle sets the state of " + describe(target) + ", which a checkpoint never does");
            } // an OrderedDict's BUILD carries _metadata: not needed
        }

        private void setItems(List<Object> kv) {
            if (kv.size() % 2 != 0) throw corrupt("its pickle sets a dict from an odd number of items");
            Map<Object, Object> d = dict(top());
            for (int i = 0; i < kv.size(); i += 2) d.put(hashable(kv.get(i)), kv.get(i + 1));
        }

        /**
         * A dict key, refused as Python refuses it when it is a list or a dict (unhashable): hashing one that holds
         * itself, or nests 200,000 deep, would never end.
         */
        private Object hashable(Object key) {
            if (key instanceof List<?> || key instanceof Map<?, ?>) {
                throw corrupt("its pickle uses a " + (key instanceof List<?> ? "list" : "dict") + " as a dict key, "
                        + "which Python refuses (unhashable)");
            }
            return key;
        }

        @SuppressWarnings("unchecked")
        private Map<Object, Object> dict(Object o) {
            if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
            if (o instanceof Opaque) return new HashMap<>(); // attributes set item by item: ignored
            throw corrupt("its pickle sets an item of " + describe(o) + ", which is not a dict");
        }

        @SuppressWarnings("unchecked")
        private List<Object> list(Object o) {
            if (o instanceof List<?> l) return (List<Object>) l;
            throw corrupt("its pickle appends to " + describe(o) + ", which is not a list");
        }

        private long long1(int n) {
            if (n > 8) throw corrupt("its pickle holds an integer of " + n + " bytes");
            long v = 0;
            for (int i = 0; i < n; i++) v |= (in.get() & 0xffL) << (8 * i);
            if (n > 0 && n < 8 && (v & (1L << (8 * n - 1))) != 0) v -= 1L << (8 * n); // two's complement
            return v;
        }

        private String string(long n) {
            if (n > in.remaining()) throw corrupt("its pickle holds a string longer than the pickle");
            byte[] b = new byte[(int) n];
            in.get(b);
            return new String(b, StandardCharsets.UTF_8);
        }

        private String line() {
            StringBuilder sb = new StringBuilder();
            for (byte b = in.get(); b != '\n'; b = in.get()) {
                if (sb.length() > 512) throw corrupt("its pickle names a global longer than 512 characters");
                sb.append((char) b);
            }
            return sb.toString();
        }

        private String str(Object o) {
            if (o instanceof String s) return s;
            throw corrupt("its pickle names a global by " + describe(o));
        }

        private Object recall(long i) {
            if (!memo.containsKey(i)) throw corrupt("its pickle recalls memo entry " + i + ", which was never set");
            return memo.get(i);
        }

        private void push(Object o) {
            stack.add(o);
        }

        private Object top() {
            if (stack.isEmpty()) throw corrupt("its pickle reads an empty stack");
            return stack.get(stack.size() - 1);
        }

        private Object pop() {
            Object o = top();
            stack.remove(stack.size() - 1);
            return o;
        }

        private List<Object> popMark() {
            if (marks.isEmpty()) throw corrupt("its pickle closes a mark it never opened");
            int at = marks.remove(marks.size() - 1);
            List<Object> items = new ArrayList<>(stack.subList(at, stack.size()));
            stack.subList(at, stack.size()).clear();
            return items;
        }
    }
}
