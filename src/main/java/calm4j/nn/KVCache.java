package calm4j.nn;

import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;

import static calm4j.nn.Tensors.c;

/**
 * Keys and values of the positions already processed, one pair per layer, for incremental decoding: each layer's
 * are one tensor [rowCapacity, kvHeads, capacity, headDim] allocated for the positions the rows will need
 * ({@link #reserve}), into which every pass writes its new positions in place. A decoding step therefore writes one
 * position per row and layer and reads the cache as a view: what a step costs does not depend on how the cache grew
 * (appending by concatenation copied the whole cache at every step, O(n^2) bytes for n positions).
 *
 * <p>Each row has its own length: a row's next positions are written after its own last one, rotated for its own
 * positions, and its attention is masked beyond its length ({@link #keyMask}). Rows of a continuous batch therefore
 * never need re-aligning when others join or leave; a row that leaves is replaced by the last row
 * ({@link #removeRow}), which copies that one row. Capacity that a pass finds too small grows by doubling.
 * Tensors outlive the per-step memory scopes, so they are retained explicitly.
 */
public final class KVCache {
    private final Tensor[] keys;
    private final Tensor[] values;
    private long[] lengths = new long[0]; // positions each row holds
    private long capacity;                // positions each row can hold before the tensors grow
    private long rowCapacity;
    private long copiedPositions;         // row positions copied by growth and row moves (not by writes)
    private Tensor positions;             // [rows, n] of the pass under way when rows' lengths differ, else null

    public KVCache(int layers) {
        keys = new Tensor[layers];
        values = new Tensor[layers];
    }

    /** Rows (sequences) in the cache. */
    public int rows() {
        return lengths.length;
    }

    /** Positions the longest row holds. */
    public long length() {
        long max = 0;
        for (long l : lengths) max = Math.max(max, l);
        return max;
    }

    /** Positions row {@code row} holds. */
    public long length(int row) {
        return lengths[row];
    }

    /** Positions each row can hold before the cache grows. */
    public long capacity() {
        return capacity;
    }

    /** Rows the tensors hold room for. */
    public long rowCapacity() {
        return rowCapacity;
    }

    /** Bytes the cache's tensors occupy (every layer's keys and values, reserved capacity included). */
    public long bytes() {
        long total = 0;
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) total += 2 * keys[l].numel() * keys[l].element_size();
        }
        return total;
    }

    /**
     * Row positions copied so far by growth and by moving rows ({@link #removeRow}), summed over rows: writes of new
     * positions do not count. A decoding step adds nothing unless the cache had to grow.
     */
    public long copiedPositions() {
        return copiedPositions;
    }

    /** Whether every row holds the same number of positions (then a pass needs no key mask and one rotary offset). */
    boolean uniform() {
        for (long l : lengths) if (l != lengths[0]) return false;
        return true;
    }

    /**
     * Makes room for {@code rows} rows of {@code positions} positions each (rows are added by passes and
     * {@link #appendRows}), allocating or growing the tensors once. Growing copies what is cached (once); reserving
     * what a batch will need when it starts avoids any later copy.
     */
    public void reserve(long rows, long positions) {
        ensure(Math.max(rows, rowCapacity), Math.max(positions, capacity));
    }

    /** Grows the tensors so that {@code rows} rows of {@code positions} positions fit. */
    private void ensure(long rows, long positions) {
        if (rows <= rowCapacity && positions <= capacity) return;
        long newRows = Math.max(rows, rowCapacity), newCapacity = Math.max(positions, capacity);
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] == null) continue; // allocated by the first write, when the shapes are known
            keys[l] = grown(keys[l], newRows, newCapacity);
            values[l] = grown(values[l], newRows, newCapacity);
        }
        if (keys[0] != null) copiedPositions += Arrays.stream(lengths).sum();
        rowCapacity = newRows;
        capacity = newCapacity;
    }

    private Tensor grown(Tensor old, long rows, long positions) {
        Tensor t = zeros(rows, old.size(1), positions, old.size(3), old);
        long keptRows = Math.min(old.size(0), rows), kept = Math.min(old.size(2), positions);
        t.narrow(0, 0, keptRows).narrow(2, 0, kept).copy_(old.narrow(0, 0, keptRows).narrow(2, 0, kept));
        old.releaseReference();
        return t.retainReference();
    }

    /** Zeros (finite: a masked key still meets its weight of 0 in p.v) [rows, heads, positions, dim] like {@code like}. */
    private static Tensor zeros(long rows, long heads, long positions, long dim, Tensor like) {
        return torch.zeros(new long[] {rows, heads, positions, dim}, new TensorOptions().dtype(
                new ScalarTypeOptional(like.scalar_type())).device(new DeviceOptional(like.device())));
    }

    /**
     * A pass over the cache is {@link #begin}, {@link #write} for each layer, {@link #end}.
     * Readies a pass that adds {@code n} positions to every row ({@code rows} rows for an empty cache): grows the
     * capacity if needed, and for rows of different lengths makes the per-row positions the pass is rotated at.
     */
    public void begin(int rows, long n) {
        if (lengths.length == 0) lengths = new long[rows];
        if (rows != lengths.length) {
            throw new IllegalArgumentException("a pass over " + rows + " rows on a cache of " + lengths.length);
        }
        long needed = length() + n;
        if (needed > capacity) ensure(Math.max(rows, rowCapacity), Math.max(needed, 2 * capacity));
        else if (rows > rowCapacity) ensure(rows, capacity);
        if (positions != null) positions.releaseReference();
        positions = null;
        if (!uniform()) {
            long[] p = new long[(int) (rows * n)];
            for (int r = 0; r < rows; r++) for (int j = 0; j < n; j++) p[(int) (r * n + j)] = lengths[r] + j;
            positions = Tensor.create(p).view(rows, n).retainReference();
        }
    }

    /** Ends the pass begun by {@link #begin}: every row holds {@code n} more positions. */
    public void end(long n) {
        for (int r = 0; r < lengths.length; r++) lengths[r] += n;
        if (positions != null) positions.releaseReference();
        positions = null;
    }

    /** The first position the pass writes when every row is at the same length (rotary offset). */
    long offset() {
        return lengths.length == 0 ? 0 : lengths[0];
    }

    /** The positions [rows, n] of the pass under way, or null when every row starts at {@link #offset()}. */
    Tensor positions() {
        return positions;
    }

    /**
     * Which keys each row's queries of a pass of {@code n} positions may see, [rows, length() + n]: its own
     * positions up to its length plus n; null when the rows are of one length (nothing to hide).
     */
    Tensor keyMask(long n) {
        if (uniform()) return null;
        long keys = length() + n;
        Tensor limit = Tensor.create(Arrays.stream(lengths).map(l -> l + n).toArray()).view(-1, 1);
        return torch.arange(c(keys)).view(1, keys).lt(limit);
    }

    /**
     * Writes a pass's keys and values [rows, kvHeads, n, headDim] for {@code layer} at each row's next positions;
     * returns views of every row's keys and values so far, [rows, kvHeads, length() + n, headDim] (positions past a
     * row's own length hold what its key mask hides).
     */
    public Tensor[] write(int layer, Tensor k, Tensor v) {
        long rows = k.size(0), n = k.size(2);
        if (keys[layer] == null) {
            keys[layer] = zeros(rowCapacity, k.size(1), capacity, k.size(3), k).retainReference();
            values[layer] = zeros(rowCapacity, v.size(1), capacity, v.size(3), v).retainReference();
        }
        Tensor kc = keys[layer].narrow(0, 0, rows), vc = values[layer].narrow(0, 0, rows);
        if (positions == null) { // one offset for all rows: one in-place copy
            long at = offset();
            kc.narrow(2, at, n).copy_(k);
            vc.narrow(2, at, n).copy_(v);
        } else { // each row at its own positions: one scatter along the position axis
            Tensor index = positions.to(k.device(), torch.ScalarType.Long).view(rows, 1, n, 1)
                    .expand(new long[] {rows, k.size(1), n, k.size(3)});
            kc.scatter_(2, index, k);
            vc.scatter_(2, index, v);
        }
        long len = length() + n;
        Tensor kv = kc.narrow(2, 0, len), vv = vc.narrow(2, 0, len);
        // libtorch's CPU attention over these strided views (capacity past len) was slower than over a contiguous
        // copy while the cache is small (batch 16 x 96 positions at d = 256: 21.7 ms a token-model step against
        // 16.1 with the copy), and the copy costs more than it saves once the cache is large (batch 1 x 8,192
        // positions: 35.2 ms with it, 23.5 without). Small caches are copied, large ones attended in place.
        if (kv.numel() * kv.element_size() <= CONTIGUOUS_COPY_BYTES) return new Tensor[] {kv.contiguous(), vv.contiguous()};
        return new Tensor[] {kv, vv};
    }

    /** The largest keys (or values) view of one layer that {@link #write} hands to attention as a copy. */
    static final long CONTIGUOUS_COPY_BYTES = 4L << 20;

    /** Sets each row's length (after a right-padded prefill: the positions past a row's own prompt are padding). */
    public void setLengths(long[] rowLengths) {
        if (rowLengths.length != lengths.length) {
            throw new IllegalArgumentException(rowLengths.length + " lengths for " + lengths.length + " rows");
        }
        for (int r = 0; r < rowLengths.length; r++) {
            if (rowLengths[r] > lengths[r]) throw new IllegalArgumentException("a row cannot grow by setLengths");
        }
        lengths = rowLengths.clone();
    }

    /**
     * Adds the rows of {@code other} after this cache's rows (their positions copied once), growing if needed;
     * each keeps its own length.
     */
    public void appendRows(KVCache other) {
        int at = lengths.length, added = other.lengths.length;
        long longest = Math.max(length(), other.length());
        reserve(at + added, longest);
        lengths = Arrays.copyOf(lengths, at + added);
        for (int l = 0; l < keys.length; l++) {
            if (other.keys[l] == null) continue;
            if (keys[l] == null) {
                keys[l] = zeros(rowCapacity, other.keys[l].size(1), capacity, other.keys[l].size(3), other.keys[l])
                        .retainReference();
                values[l] = zeros(rowCapacity, other.values[l].size(1), capacity, other.values[l].size(3),
                        other.values[l]).retainReference();
            }
            long len = other.length();
            keys[l].narrow(0, at, added).narrow(2, 0, len).copy_(other.keys[l].narrow(0, 0, added).narrow(2, 0, len));
            values[l].narrow(0, at, added).narrow(2, 0, len).copy_(other.values[l].narrow(0, 0, added)
                    .narrow(2, 0, len));
        }
        System.arraycopy(other.lengths, 0, lengths, at, added);
        copiedPositions += Arrays.stream(other.lengths).sum();
    }

    /**
     * Removes row {@code row}: the last row takes its place (its positions copied once), so the rows stay
     * contiguous without moving the others. Returns the index the last row had, which is now {@code row} (or -1 when
     * the removed row was the last).
     */
    public int removeRow(int row) {
        int last = lengths.length - 1;
        if (row != last) {
            long len = lengths[last];
            for (int l = 0; l < keys.length; l++) {
                if (keys[l] == null) continue;
                keys[l].select(0, row).narrow(1, 0, len).copy_(keys[l].select(0, last).narrow(1, 0, len));
                values[l].select(0, row).narrow(1, 0, len).copy_(values[l].select(0, last).narrow(1, 0, len));
            }
            lengths[row] = len;
            copiedPositions += len;
        }
        lengths = Arrays.copyOf(lengths, last);
        return row != last ? last : -1;
    }

    /** A new cache holding the first {@code length} positions of the rows {@code rows} (int64) of this one. */
    public KVCache prefix(long length, Tensor rows) {
        KVCache out = new KVCache(keys.length);
        int n = (int) rows.size(0);
        out.lengths = new long[n];
        Arrays.fill(out.lengths, length);
        out.rowCapacity = n;
        out.capacity = length;
        for (int l = 0; l < keys.length; l++) {
            out.keys[l] = keys[l].narrow(2, 0, length).index_select(0, rows).retainReference();
            out.values[l] = values[l].narrow(2, 0, length).index_select(0, rows).retainReference();
        }
        return out;
    }

    /** Frees the cached tensors; the cache is empty afterwards. */
    public void clear() {
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) {
                keys[l].releaseReference();
                values[l].releaseReference();
                keys[l] = values[l] = null;
            }
        }
        if (positions != null) positions.releaseReference();
        positions = null;
        lengths = new long[0];
        capacity = rowCapacity = 0;
    }

    /**
     * Bytes a cache of {@code rows} rows and {@code positions} positions takes for a backbone of {@code layers}
     * layers whose keys and values are {@code kvSize} wide, in elements of {@code elementBytes}.
     */
    public static long bytesFor(long rows, long positions, int layers, long kvSize, int elementBytes) {
        return 2L * layers * rows * positions * kvSize * elementBytes;
    }
}
