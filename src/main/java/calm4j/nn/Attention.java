package calm4j.nn;

import calm4j.engine.UserError;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;

/**
 * Causal multi-head self-attention with rotary positions and optional grouped-query heads (kvHeads < heads), through
 * libtorch's scaled-dot-product attention. With a {@link KVCache} it attends over the cached positions too.
 */
public final class Attention extends Module {
    private final Linear q, k, v, o;
    private final int heads, kvHeads, headDim;

    public Attention(int dim, int heads, int kvHeads) {
        if (dim % heads != 0 || heads % kvHeads != 0) {
            throw new UserError("hidden_size " + dim + " must divide by num_attention_heads " + heads
                    + ", which must divide by num_key_value_heads " + kvHeads);
        }
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = dim / heads;
        q = register_module("q_proj", Layers.linear(dim, (long) heads * headDim, false));
        k = register_module("k_proj", Layers.linear(dim, (long) kvHeads * headDim, false));
        v = register_module("v_proj", Layers.linear(dim, (long) kvHeads * headDim, false));
        o = register_module("o_proj", Layers.linear((long) heads * headDim, dim, false));
    }

    /**
     * Multiply-accumulates of one position attending to {@code keys} keys: the q and o projections (d x d), the k
     * and v projections (d x kv), then q.k and p.v over the keys. The softmax is left out.
     */
    static double macs(double dim, double kvSize, double keys) {
        return 2 * dim * dim + 2 * dim * kvSize + 2 * keys * dim;
    }

    /** Packs the four projections for inference ({@link Linear#pack}). */
    public void pack(WeightType type) {
        for (Linear l : new Linear[] {q, k, v, o}) l.pack(type);
    }

    /**
     * Which keys each query of a pass of {@code len} new positions may see, given the cache it extends (or null).
     * Null when scaled_dot_product_attention needs no mask: a plain causal pass from an empty cache (its own causal
     * flag) or one new query per row over rows of one length (it sees every key). Rows of one length after
     * {@code offset} cached positions: [1, 1, len, offset + len], query i seeing keys up to offset + i. Rows of
     * different lengths: [rows, 1, len, keys], each query seeing its own row's keys up to its own position.
     * The same for every layer of a pass, so the backbone makes it once.
     */
    static Tensor mask(long len, KVCache cache, Tensor like) {
        Tensor positions = cache == null ? null : cache.positions();
        if (positions == null) {
            long offset = cache == null ? 0 : cache.offset();
            if (offset == 0 || len == 1) return null;
            return torch.ones(new long[] {len, offset + len}, Layers.on(like, torch.ScalarType.Bool)).tril(offset)
                    .view(1, 1, len, offset + len);
        }
        long keys = cache.length() + len, rows = positions.size(0);
        Tensor key = torch.arange(c(keys), Layers.on(like, torch.ScalarType.Long)).view(1, 1, keys);
        return key.le(positions.to(like.device(), torch.ScalarType.Long).unsqueeze(2)).view(rows, 1, len, keys);
    }

    /**
     * @param x     [batch, length, dim]
     * @param cache keys and values of earlier positions (written into), or null for a plain causal pass
     * @param mask  made by {@link #mask} for this pass
     */
    public Tensor forward(Tensor x, RotaryEmbedding rope, KVCache cache, int layer, Tensor mask) {
        long b = x.size(0), len = x.size(1);
        Tensor positions = cache == null ? null : cache.positions();
        long offset = cache == null ? 0 : cache.offset();
        Tensor qh = q.forward(x).view(b, len, heads, headDim).transpose(1, 2);
        Tensor kh = k.forward(x).view(b, len, kvHeads, headDim).transpose(1, 2);
        qh = positions == null ? rope.apply(qh, offset) : rope.apply(qh, positions);
        kh = positions == null ? rope.apply(kh, offset) : rope.apply(kh, positions);
        Tensor vh = v.forward(x).view(b, len, kvHeads, headDim).transpose(1, 2);
        if (cache != null) {
            Tensor[] kv = cache.write(layer, kh, vh);
            kh = kv[0];
            vh = kv[1];
        }
        boolean causal = mask == null && len > 1; // from an empty cache: query i sees keys 0..i
        Tensor y = torch.scaled_dot_product_attention(qh, kh, vh, mask == null ? new TensorOptional()
                : new TensorOptional(mask), 0.0, causal, new DoubleOptional(), kvHeads != heads);
        return o.forward(y.transpose(1, 2).reshape(b, len, (long) heads * headDim));
    }
}
