package calm4j.nn;

import calm4j.engine.UserError;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

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
     * Which keys each query of a pass may see: {@code len} new positions after {@code offset} cached ones, with
     * {@code keyMask} [batch, offset + len] false at left padding (or null). Null when scaled_dot_product_attention's
     * own causal flag says it all; else [batch or 1, 1, len, offset + len]. The same for every layer of a pass, so
     * the backbone makes it once.
     */
    static Tensor mask(long len, long offset, Tensor keyMask, Tensor like) {
        if (keyMask == null && (offset == 0 || len == 1)) return null;
        if (len == 1) {
            // One new query (a decoding step) may see every real key, and always itself (the last key): a padding
            // query keeps a key, so its unused output stays finite, not NaN.
            long keys = keyMask.size(1);
            byte[] last = new byte[(int) keys];
            last[last.length - 1] = 1;
            Tensor self = Tensor.create(last, 1, keys).to(keyMask.device(), torch.ScalarType.Bool);
            return keyMask.logical_or(self).view(keyMask.size(0), 1, 1, keys);
        }
        // Query i sees keys up to offset + i (bottom-right aligned) that the key mask allows, and always itself.
        Tensor causal = torch.ones(new long[] {len, offset + len}, Layers.on(like, torch.ScalarType.Bool)).tril(offset);
        if (keyMask == null) return causal.view(1, 1, len, offset + len);
        Tensor self = torch.eye(len, offset + len, Layers.on(like, torch.ScalarType.Bool)).roll(new long[] {offset},
                new long[] {1});
        return causal.unsqueeze(0).logical_and(keyMask.unsqueeze(1)).logical_or(self.unsqueeze(0))
                .unsqueeze(1); // [batch, 1, len, keys]
    }

    /**
     * @param x     [batch, length, dim]
     * @param cache keys and values of earlier positions (appended to), or null for a plain causal pass
     * @param mask  made by {@link #mask} for this pass (null: causal over the new positions, or none for one query)
     */
    public Tensor forward(Tensor x, RotaryEmbedding rope, KVCache cache, int layer, Tensor mask) {
        long b = x.size(0), len = x.size(1);
        long offset = cache == null ? 0 : cache.length(layer);
        Tensor qh = rope.apply(q.forward(x).view(b, len, heads, headDim).transpose(1, 2), offset);
        Tensor kh = rope.apply(k.forward(x).view(b, len, kvHeads, headDim).transpose(1, 2), offset);
        Tensor vh = v.forward(x).view(b, len, kvHeads, headDim).transpose(1, 2);
        if (cache != null) {
            Tensor[] kv = cache.append(layer, kh, vh);
            kh = kv[0];
            vh = kv[1];
        }
        Tensor y = mask == null
                ? torch.scaled_dot_product_attention(qh, kh, vh, new TensorOptional(), 0.0, len > 1,
                        new DoubleOptional(), kvHeads != heads)
                : torch.scaled_dot_product_attention(qh, kh, vh, new TensorOptional(mask), 0.0, false,
                        new DoubleOptional(), kvHeads != heads);
        return o.forward(y.transpose(1, 2).reshape(b, len, (long) heads * headDim));
    }

}
