package calm4j.ar;

import calm4j.nn.BatchKVCache;
import calm4j.nn.KVCache;
import calm4j.nn.Transformer;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * The token-level baseline language model: token embedding -> the shared {@link Transformer} -> logits through the
 * tied embedding, trained with next-token cross-entropy. It is what CALM is compared against.
 */
public final class TokenLM extends Module implements NextTokenModel {
    private final TokenLMConfig config;
    private final int vocab;
    private final Transformer transformer;

    public TokenLM(TokenLMConfig config, int vocab) {
        this.config = config;
        this.vocab = vocab;
        transformer = register_module("transformer", new Transformer(vocab, config.hiddenSize(),
                config.numHiddenLayers(), config.numAttentionHeads(), config.numKeyValueHeads(),
                config.intermediateSize(), config.contextTokens() + 4, config.ropeTheta()));
    }

    public TokenLMConfig config() {
        return config;
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    /** Next-token logits [B, L, V] of token ids [B, L]; with a cache, the ids continue the cached positions. */
    @Override
    public Tensor logits(Tensor tokens, KVCache cache) {
        return project(transformer.forward(transformer.embedTokens().forward(tokens), cache));
    }

    /** As {@link #logits(Tensor, KVCache)} for left-padded rows: {@code keyMask} [B, cached + L] is false at pads. */
    public Tensor logits(Tensor tokens, KVCache cache, Tensor keyMask) {
        return project(transformer.forward(transformer.embedTokens().forward(tokens), cache, keyMask));
    }

    /**
     * Logits [B, L, V] of hidden states [B, L, d] by the tied embedding. One position of one sequence (a batch-1
     * decoding step) is a matrix-vector product: 3x faster than the matrix product, which packs the whole embedding
     * for a single row (4096 x 256: 139-209 against 506-674 us here).
     */
    private Tensor project(Tensor h) {
        Tensor e = transformer.embedTokens().weight(); // [V, d]
        if (h.size(0) * h.size(1) == 1) return torch.mv(e, h.view(-1)).view(1, 1, -1);
        return torch.linear(h, e);
    }

    public int contextTokens() {
        return config.contextTokens();
    }

    /** An empty cache for a decoding batch whose rows join and leave between steps. */
    public BatchKVCache newBatchCache() {
        return transformer.newBatchCache();
    }

    @Override
    public KVCache newCache() {
        return new KVCache(transformer.numLayers());
    }

    /** Mean next-token cross-entropy of a block [B, L + 1]: positions 0..L-1 predict 1..L. */
    public Tensor loss(Tensor tokens) {
        long len = tokens.size(1) - 1;
        Tensor logits = logits(tokens.narrow(1, 0, len), null);
        return torch.cross_entropy(logits.reshape(-1, vocab), tokens.narrow(1, 1, len).reshape(-1));
    }
}
