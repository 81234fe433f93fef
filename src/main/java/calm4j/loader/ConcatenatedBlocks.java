package calm4j.loader;

import calm4j.data.Documents;
import calm4j.engine.UserError;
import calm4j.tokenize.Tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Evaluation blocks as the CALM authors cut them: every document tokenized with BOS in front (and no EOS), the
 * documents concatenated, and the stream cut into blocks of a fixed number of tokens; the remainder is dropped.
 * Chunks may cross document boundaries, as in their training.
 */
public final class ConcatenatedBlocks {
    /** The blocks, one per batch row of 1, and what was read. */
    public record Result(List<TokenBatch> blocks, long documents, long tokens, long dropped) {}

    private ConcatenatedBlocks() {}

    public static Result of(Documents documents, Tokenizer tokenizer, int bosId, int blockTokens) {
        if (blockTokens < 1) throw new UserError("the block size must be positive, got " + blockTokens);
        List<TokenBatch> blocks = new ArrayList<>();
        long[] block = new long[blockTokens];
        int filled = 0;
        long docs = 0, tokens = 0;
        boolean atStart = true; // a long document comes in pieces: BOS before its first only
        for (Documents.Document d : documents) {
            int[] ids = tokenizer.encode(d.text());
            int from = atStart ? -1 : 0;
            if (atStart) docs++;
            tokens += ids.length - from;
            atStart = d.last();
            for (int i = from; i < ids.length; i++) {
                block[filled++] = i < 0 ? bosId : ids[i];
                if (filled == blockTokens) {
                    blocks.add(new TokenBatch(block.clone(), 1, blockTokens));
                    filled = 0;
                }
            }
        }
        if (blocks.isEmpty()) {
            throw new UserError("the documents hold " + tokens + " tokens, fewer than one block of " + blockTokens);
        }
        return new Result(blocks, docs, tokens, filled);
    }
}
