package calm4j.calm;

import org.bytedeco.pytorch.Tensor;

/**
 * Where the tokens of a proposed chunk come from (docs/method.md §11): per-position logits of the next chunk's K
 * tokens for hidden states [P, d], as [P, K, V]. The multi-token head (tied to the token table), or a low-rank head
 * that costs a fraction of it when generating.
 */
interface ProposalTokens {
    /** Logits [P, K, V] of the next chunk's K tokens. */
    Tensor logits(Tensor h);

    /** Multiply-accumulates of {@link #logits} for one position. */
    double macs();
}
