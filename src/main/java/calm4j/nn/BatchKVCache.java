package calm4j.nn;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.cat;

/**
 * The KV cache of a decoding batch whose rows join and leave between steps (continuous batching). Rows are
 * right-aligned: every row's latest position is the last column, and a shorter row is left-padded with columns its
 * key mask hides. When rows join or leave, the batch is re-aligned so that it is never longer than its longest row;
 * the moved keys are re-rotated ({@link RotaryEmbedding#shift}), so each row attends exactly as it would alone.
 */
public final class BatchKVCache {
    private final KVCache cache;
    private final RotaryEmbedding rope;
    private Tensor mask; // [rows, length] bool, false at left padding; null when empty
    private boolean padded; // whether any entry of the mask is false

    BatchKVCache(int layers, RotaryEmbedding rope) {
        this.cache = new KVCache(layers);
        this.rope = rope;
    }

    /** The cache to pass to the backbone, together with {@link #extendMask(long)}. */
    public KVCache cache() {
        return cache;
    }

    public long rows() {
        return mask == null ? 0 : mask.size(0);
    }

    public long length() {
        return mask == null ? 0 : mask.size(1);
    }

    /**
     * The key mask for a forward pass that appends {@code columns} real positions to every row: the current mask with
     * that many true columns on the right, which becomes this batch's mask. Null while no row has padding: attention
     * then needs no mask (the common case of one sequence, or of prompts of one length).
     */
    public Tensor extendMask(long columns) {
        Tensor added = torch.ones(new long[] {rows(), columns}, Layers.on(mask, torch.ScalarType.Bool));
        setMask(cat(1, mask, added), padded); // true columns leave padding as it was
        return padded ? mask : null;
    }

    /**
     * Adds rows: {@code group} is a cache just prefilled for them (left-padded among themselves, with key mask
     * {@code groupMask} [groupRows, groupLength]). Whichever side is shorter is left-padded to the other's length.
     */
    public void add(KVCache group, Tensor groupMask) {
        if (mask == null) {
            cache.appendRows(group);
            setMask(groupMask);
            return;
        }
        long delta = groupMask.size(1) - length();
        Tensor m = mask, gm = groupMask;
        if (delta > 0) {
            cache.realign(delta, rope);
            m = cat(1, torch.zeros(new long[] {rows(), delta}, Layers.on(m, torch.ScalarType.Bool)), m);
        } else if (delta < 0) {
            group.realign(-delta, rope);
            gm = cat(1, torch.zeros(new long[] {gm.size(0), -delta},
                    Layers.on(gm, torch.ScalarType.Bool)), gm);
        }
        cache.appendRows(group);
        setMask(cat(0, m, gm));
    }

    /** Keeps only the rows {@code rows} (in that order), then drops leading columns that no remaining row uses. */
    public void keep(long[] rows) {
        if (rows.length == 0) {
            clear();
            return;
        }
        Tensor index = Tensor.create(rows).to(mask.device(), torch.ScalarType.Long);
        cache.select(index);
        Tensor m = mask.index_select(0, index);
        long unused = m.any(0).to(torch.ScalarType.Long).argmax().item_long(); // first column any row uses
        if (unused > 0) {
            cache.realign(-unused, rope);
            m = m.narrow(1, unused, m.size(1) - unused);
        }
        setMask(m);
    }

    public void clear() {
        cache.clear();
        if (mask != null) mask.releaseReference();
        mask = null;
        padded = false;
    }

    private void setMask(Tensor m) {
        setMask(m, !m.all().item_bool());
    }

    private void setMask(Tensor m, boolean hasPadding) {
        Tensor old = mask;
        mask = m.retainReference();
        if (old != null) old.releaseReference();
        padded = hasPadding;
    }
}
