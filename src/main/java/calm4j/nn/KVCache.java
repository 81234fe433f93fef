package calm4j.nn;

import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.cat;

/**
 * Keys and values of the positions already processed, one pair per layer, for incremental decoding. Tensors are
 * [batch, kvHeads, length, headDim]. They outlive the per-step memory scope, so they are retained explicitly.
 */
public final class KVCache {
    private final Tensor[] keys;
    private final Tensor[] values;

    public KVCache(int layers) {
        keys = new Tensor[layers];
        values = new Tensor[layers];
    }

    /** Positions cached so far (by the last layer, i.e. completely). */
    public long length() {
        return length(keys.length - 1);
    }

    /** Positions cached so far by {@code layer}. */
    long length(int layer) {
        return keys[layer] == null ? 0 : keys[layer].size(2);
    }

    /** Appends keys and values [batch, heads, length, headDim] for {@code layer}; returns the full ones. */
    public Tensor[] append(int layer, Tensor k, Tensor v) {
        Tensor nk = keys[layer] == null ? k : cat(2, keys[layer], k);
        Tensor nv = values[layer] == null ? v : cat(2, values[layer], v);
        replace(layer, nk, nv);
        return new Tensor[] {nk, nv};
    }

    private void replace(int layer, Tensor k, Tensor v) {
        if (keys[layer] != null) {
            keys[layer].releaseReference();
            values[layer].releaseReference();
        }
        keys[layer] = k.retainReference();
        values[layer] = v.retainReference();
    }

    /** Keeps only the rows in {@code index} (a 1-D int64 tensor), e.g. to drop finished sequences from a batch. */
    public void select(Tensor index) {
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) replace(l, keys[l].index_select(0, index), values[l].index_select(0, index));
        }
    }

    /** A new cache holding the first {@code length} positions of the rows {@code rows} (int64) of this one. */
    public KVCache prefix(long length, Tensor rows) {
        KVCache out = new KVCache(keys.length);
        for (int l = 0; l < keys.length; l++) {
            out.replace(l, keys[l].narrow(2, 0, length).index_select(0, rows),
                    values[l].narrow(2, 0, length).index_select(0, rows));
        }
        return out;
    }

    /** Frees the cached tensors. */
    public void clear() {
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) {
                keys[l].releaseReference();
                values[l].releaseReference();
                keys[l] = values[l] = null;
            }
        }
    }

    /** The number of rows (sequences) cached; 0 when empty. */
    public long rows() {
        return keys[0] == null ? 0 : keys[0].size(0);
    }

    /**
     * Re-aligns every row by {@code delta} positions: delta > 0 adds that many (zero) columns on the left, delta < 0
     * drops that many leading columns. Keys are re-rotated to their new positions, so attention, which depends only
     * on position differences between a query and its keys, is unchanged for the moved rows.
     */
    void realign(long delta, RotaryEmbedding rope) {
        if (delta == 0) return;
        for (int l = 0; l < keys.length; l++) {
            Tensor k = keys[l], v = values[l];
            if (delta > 0) {
                Tensor zeros = torch.zeros(new long[] {k.size(0), k.size(1), delta, k.size(3)},
                        new TensorOptions().dtype(new ScalarTypeOptional(
                                k.scalar_type())).device(new DeviceOptional(k.device())));
                k = cat(2, zeros, k);
                v = cat(2, zeros, v);
            } else {
                k = k.narrow(2, -delta, k.size(2) + delta);
                v = v.narrow(2, -delta, v.size(2) + delta);
            }
            replace(l, rope.shift(k, delta), v);
        }
    }

    /** Appends the rows of {@code other} (of the same length) after this cache's rows. */
    void appendRows(KVCache other) {
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] == null) {
                replace(l, other.keys[l], other.values[l]);
            } else {
                replace(l, cat(0, keys[l], other.keys[l]),
                        cat(0, values[l], other.values[l]));
            }
        }
    }
}
