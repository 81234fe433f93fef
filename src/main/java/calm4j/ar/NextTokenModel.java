package calm4j.ar;

import calm4j.nn.KVCache;
import org.bytedeco.pytorch.Tensor;

/** A model that gives next-token logits, incrementally through a KV cache: what token BrierLM needs. */
public interface NextTokenModel {
    int vocabSize();

    /** Logits [B, L, V] for token ids [B, L] that continue the cached positions (cache may be null). */
    Tensor logits(Tensor tokens, KVCache cache);

    KVCache newCache();
}
