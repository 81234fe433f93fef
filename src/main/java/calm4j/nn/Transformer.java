package calm4j.nn;

import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

import static calm4j.nn.Tensors.c;

/**
 * The Llama-style decoder both CALM and the token baseline use: a token embedding table (each model decides how
 * inputs are embedded), pre-RMSNorm blocks of causal self-attention and SwiGLU MLP, and a final RMSNorm.
 * Parameter names follow the Hugging Face Llama layout (embed_tokens, layers.N.self_attn.q_proj, ...).
 */
public final class Transformer extends Module {
    /** One decoder block: x + attn(norm(x)), then x + mlp(norm(x)). */
    static final class Block extends Module {
        final RMSNorm inputNorm;
        final Attention attention;
        final RMSNorm postNorm;
        final SwiGLU mlp;

        Block(int dim, int heads, int kvHeads, int ffn) {
            inputNorm = register_module("input_layernorm", new RMSNorm(dim));
            attention = register_module("self_attn", new Attention(dim, heads, kvHeads));
            postNorm = register_module("post_attention_layernorm", new RMSNorm(dim));
            mlp = register_module("mlp", new SwiGLU(dim, ffn));
        }

        Tensor forward(Tensor x, RotaryEmbedding rope, KVCache cache, int layer, Tensor attnMask) {
            Tensor h = x.add(attention.forward(inputNorm.forward(x), rope, cache, layer, attnMask));
            return h.add(mlp.forward(postNorm.forward(h)));
        }
    }

    private final EmbeddingImpl embedTokens;
    private final Module layerList; // held so libtorch's callbacks into it always find the Java object
    private final List<Block> layers = new ArrayList<>();
    private final RMSNorm norm;
    private final RotaryEmbedding rope;
    private final long kvWidth; // the width of one layer's keys (and values) at one position
    private Tensor tableInt8, tableScale; // the token table as int8 rows and their scales, once packed for int8

    /** A Transformer of {@code config}'s shape over a {@code vocab}-token table, with rotary positions up to
     * {@code maxPositions}. */
    public Transformer(TransformerConfig config, int vocab, long maxPositions) {
        calm4j.engine.Memory.requireWeightsFit(config.parameterCount(vocab), "a Transformer of "
                + config.numHiddenLayers() + " layers of width " + config.hiddenSize());
        int dim = config.hiddenSize();
        embedTokens = register_module("embed_tokens", Layers.embedding(vocab, dim));
        layerList = register_module("layers", new Module());
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            layers.add(layerList.register_module(String.valueOf(i), new Block(dim, config.numAttentionHeads(),
                    config.numKeyValueHeads(), config.intermediateSize())));
        }
        norm = register_module("norm", new RMSNorm(dim));
        rope = new RotaryEmbedding(dim / config.numAttentionHeads(), maxPositions, config.ropeTheta());
        kvWidth = (long) config.numKeyValueHeads() * (dim / config.numAttentionHeads());
    }

    /**
     * Packs every layer's linear weights for inference ({@link Linear#pack}); with int8, the token table too: each
     * row stored as int8 with its own scale (a lookup dequantizes the rows it reads), the float table freed. A caller
     * that also projects onto the table (tied logits) packs that projection first.
     */
    public void pack(WeightType type) {
        for (Block b : layers) {
            b.attention.pack(type);
            b.mlp.pack(type);
        }
        if (type == WeightType.INT8) {
            Tensor w = embedTokens.weight();
            calm4j.engine.Engine.step(() -> {
                try (var ng = new org.bytedeco.pytorch.NoGradGuard()) {
                    Tensor scale = PackedLinear.rowAbsMax(w).clamp_min(c(1e-12))
                            .div(c(127.0));                       // [V, 1]
                    tableScale = scale.retainReference();
                    // in place, block by block: the float table is freed right after, so it can be overwritten
                    long rows = w.size(0), block = 8192;
                    org.bytedeco.pytorch.TensorVector q = new org.bytedeco.pytorch.TensorVector();
                    for (long at = 0; at < rows; at += block) {
                        long n = Math.min(block, rows - at);
                        q.push_back(w.narrow(0, at, n).div_(scale.narrow(0, at, n)).round_()
                                .to(org.bytedeco.pytorch.global.torch.ScalarType.Char));
                    }
                    tableInt8 = org.bytedeco.pytorch.global.torch.cat(q, 0).retainReference();   // [V, d]
                }
            });
            Linear.release(w);
        }
    }

    /** Input vectors [..., d] of token ids [...]: the table's rows (dequantized when the table is int8). */
    public Tensor embed(Tensor tokens) {
        if (tableInt8 == null) return embedTokens.forward(tokens);
        Tensor flat = tokens.reshape(-1);
        Tensor rows = tableInt8.index_select(0, flat).to(org.bytedeco.pytorch.global.torch.ScalarType.Float)
                .mul(tableScale.index_select(0, flat));
        long[] shape = java.util.Arrays.copyOf(tokens.sizes().vec().get(), (int) tokens.dim() + 1);
        shape[shape.length - 1] = tableInt8.size(1);
        return rows.view(shape);
    }

    public EmbeddingImpl embedTokens() {
        return embedTokens;
    }

    public int numLayers() {
        return layers.size();
    }

    /** An empty cache for this backbone's layers. */
    public KVCache newCache() {
        return new KVCache(layers.size());
    }

    /**
     * Bytes one position of one sequence takes in the KV cache: keys and values of every layer, in fp32 (the cache
     * holds activations, which are fp32 for fp32, fp16 and int8 weights; bf16 weights halve it).
     */
    public long cacheBytesPerPosition() {
        return KVCache.bytesFor(1, 1, layers.size(), kvWidth, 4);
    }

    /**
     * Hidden states [batch, length, dim] of input embeddings [batch, length, dim]. With a cache, the inputs continue
     * each row's cached positions (rows may hold different numbers of positions) and are written into it; without,
     * a plain causal pass. A pass that fails leaves the cache's lengths as they were.
     */
    public Tensor forward(Tensor inputs, KVCache cache) {
        long n = inputs.size(1);
        if (cache != null) cache.begin((int) inputs.size(0), n);
        Tensor h = inputs;
        Tensor attnMask = Attention.mask(n, cache, inputs); // one mask for every layer
        for (int i = 0; i < layers.size(); i++) h = layers.get(i).forward(h, rope, cache, i, attnMask);
        if (cache != null) cache.end(n);
        return norm.forward(h);
    }
}
