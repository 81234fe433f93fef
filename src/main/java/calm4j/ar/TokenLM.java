package calm4j.ar;

import calm4j.nn.KVCache;
import calm4j.nn.Linear;
import calm4j.nn.PackedLinear;
import calm4j.nn.Transformer;
import calm4j.nn.WeightType;
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
    private PackedLinear vocabulary; // the tied output projection packed for inference, or null

    public TokenLM(TokenLMConfig config, int vocab) {
        this.config = config;
        this.vocab = vocab;
        transformer = register_module("transformer", new Transformer(config.backbone(), vocab,
                config.contextTokens() + 4));
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
        return project(transformer.forward(transformer.embed(tokens), cache));
    }

    /** Hidden states [B, L, d] of token ids [B, L] (before the vocabulary projection); with a cache, as logits. */
    public Tensor hidden(Tensor tokens, KVCache cache) {
        return transformer.forward(transformer.embed(tokens), cache);
    }

    /**
     * Logits [..., V] of hidden states [..., d] by the tied embedding. A prefill projects only each row's last
     * position: all of a 2,048-token prompt at a 128k vocabulary would be 1 GB of logits per row.
     */
    public Tensor project(Tensor h) {
        if (vocabulary != null) return vocabulary.forward(h);
        return Linear.apply(h, transformer.embedTokens().weight(), null); // E [V, d]
    }


    /** Readies the model for inference with weights of {@code type} (as {@code CalmModel.forInference}). */
    public void forInference(WeightType type) {
        eval();
        if (type == WeightType.BF16) {
            to(torch.ScalarType.BFloat16, false);
        } else if (type.isPacked()) {
            vocabulary = PackedLinear.of(transformer.embedTokens().weight(), null, type); // before the table goes
            transformer.pack(type);
        }
        org.bytedeco.javacpp.Pointer.trimMemory(); // hand the freed float weights back to the system
    }

    public int contextTokens() {
        return config.contextTokens();
    }

    @Override
    public KVCache newCache() {
        return transformer.newCache();
    }

    /** Bytes one token position of one sequence takes in the KV cache. */
    public long cacheBytesPerPosition() {
        return transformer.cacheBytesPerPosition();
    }

    /** Mean next-token cross-entropy of a block [B, L + 1]: positions 0..L-1 predict 1..L. */
    public Tensor loss(Tensor tokens) {
        long len = tokens.size(1) - 1;
        Tensor logits = logits(tokens.narrow(1, 0, len), null);
        return torch.cross_entropy(logits.reshape(-1, vocab), tokens.narrow(1, 1, len).reshape(-1));
    }
}
