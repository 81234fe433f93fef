package calm4j.calm;

import java.util.Arrays;

/**
 * What comes before a prompt, as the model saw documents begin in training. calm4j's runs: one boundary chunk
 * (EOS, then PAD to K), because their documents start right after a chunk that ends the previous one. The authors'
 * models: the tokenizer's BOS alone (each document was tokenized with BOS in front; no end-of-document chunk).
 * Recorded in a run's config ({@code "prompt"}) so that generation, serving and evaluation use the right one.
 *
 * @param bosId          the token every document starts with, or -1 for none
 * @param boundaryChunk  whether an end-of-document chunk (EOS, PAD...) precedes the document
 */
public record PromptConvention(int bosId, boolean boundaryChunk) {
    /** calm4j's own runs. */
    public static final PromptConvention CALM4J = new PromptConvention(-1, true);

    /** The authors' training: BOS in front, no boundary chunk. */
    public static PromptConvention official(int bosId) {
        return new PromptConvention(bosId, false);
    }

    /** The tokens put before every prompt, for chunks of {@code k} with these EOS and PAD ids. */
    public int[] prefix(int k, int eos, int pad) {
        int[] out = new int[(boundaryChunk ? k : 0) + (bosId >= 0 ? 1 : 0)];
        if (boundaryChunk) {
            Arrays.fill(out, 0, k, pad);
            out[0] = eos;
        }
        if (bosId >= 0) out[out.length - 1] = bosId;
        return out;
    }
}
