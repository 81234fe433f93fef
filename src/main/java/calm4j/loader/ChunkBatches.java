package calm4j.loader;

import calm4j.data.TokenStore;
import calm4j.engine.UserError;

import java.util.Arrays;

/**
 * Chunk-aligned batches for the autoencoder: every document (with its EOS) is padded with PAD to a multiple of K and
 * cut into chunks of K tokens, so no chunk crosses a document boundary. A batch is {@code batchChunks} chunks drawn
 * in a seeded random order, shape [batchChunks, K].
 */
public final class ChunkBatches implements Batches {
    private final TokenStore store;
    private final int k;
    private final int batchChunks;
    private final int pad;
    private final long[] chunksBefore; // chunksBefore[d] = chunks in documents 0..d-1
    private final EpochSampler sampler;

    /** Training batches: shuffled each epoch by {@code seed}, this process's share of {@code world}. */
    public static ChunkBatches forTraining(TokenStore store, int k, int batchChunks, int padId, long seed, int rank,
                                           int world) {
        return new ChunkBatches(store, k, batchChunks, padId, seed, true, rank, world);
    }

    /** Evaluation batches: every chunk in corpus order, in one process. */
    public static ChunkBatches forEvaluation(TokenStore store, int k, int batchChunks, int padId) {
        return new ChunkBatches(store, k, batchChunks, padId, 0, false, 0, 1);
    }

    private ChunkBatches(TokenStore store, int k, int batchChunks, int padId, long seed, boolean shuffle,
                         int rank, int world) {
        if (k < 1) throw new UserError("chunk size K must be at least 1, got " + k);
        this.store = store;
        this.k = k;
        this.batchChunks = batchChunks;
        this.pad = padId;
        this.chunksBefore = store.chunksBefore(k);
        long total = chunksBefore[chunksBefore.length - 1];
        if (total > Integer.MAX_VALUE) throw new UserError("more than 2^31 chunks: shard the corpus");
        if (total / world < batchChunks) {
            throw new UserError("the corpus has " + total + " chunks, fewer than one batch of " + batchChunks
                    + " per process: lower batch_size or use more data");
        }
        this.sampler = new EpochSampler((int) total, seed, shuffle, rank, world);
    }

    public long chunks() {
        return chunksBefore[chunksBefore.length - 1];
    }

    /** Batches in one pass over this rank's chunks. */
    public long batchesPerEpoch() {
        return sampler.perRank() / batchChunks;
    }

    @Override
    public TokenBatch next() {
        int[] idx = sampler.next(batchChunks);
        long[] ids = new long[batchChunks * k];
        for (int i = 0; i < idx.length; i++) fill(idx[i], ids, i * k);
        return new TokenBatch(ids, batchChunks, k);
    }

    /** Writes chunk {@code c}'s K tokens (PAD past its document's end) into {@code dst[off..off+K)}. */
    void fill(int c, long[] dst, int off) {
        int d = Arrays.binarySearch(chunksBefore, c);
        d = d >= 0 ? d : -d - 2;
        while (chunksBefore[d + 1] == c) d++; // skip documents with no chunks (cannot happen: every doc has an EOS)
        long start = store.docStart(d) + (c - chunksBefore[d]) * (long) k;
        long end = store.docEnd(d);
        for (int j = 0; j < k; j++) dst[off + j] = start + j < end ? store.token(start + j) : pad;
    }

    @Override
    public LoaderState state() {
        return sampler.state();
    }

    @Override
    public void restore(LoaderState state) {
        sampler.restore(state);
    }

    @Override
    public long tokensPerBatch() {
        return (long) batchChunks * k;
    }
}
