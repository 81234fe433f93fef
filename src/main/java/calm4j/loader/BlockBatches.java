package calm4j.loader;

import calm4j.data.TokenStore;
import calm4j.engine.UserError;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Contiguous blocks of tokens for language models. The token stream is the documents, each with its EOS and padded
 * with PAD to a multiple of K, so every chunk of K that a CALM sees is one the autoencoder was trained on. A block
 * of {@code blockTokens} (a multiple of K) starts at a multiple of K; each epoch shifts all block starts by a random
 * multiple of K so that a model does not always see the same boundaries. Shape [batchBlocks, blockTokens].
 */
public final class BlockBatches implements Batches {
    private final TokenStore store;
    private final int k;
    private final int blockTokens;
    private final int batchBlocks;
    private final int pad;
    private final long seed;
    private final boolean shuffle;
    private final long[] paddedBefore; // padded start of each document in the stream, plus the total
    private final EpochSampler sampler;

    /** Training batches: shuffled each epoch by {@code seed}, this process's share of {@code world}. */
    public static BlockBatches forTraining(TokenStore store, int k, int blockTokens, int batchBlocks, int padId,
                                           long seed, int rank, int world) {
        return new BlockBatches(store, k, blockTokens, batchBlocks, padId, seed, true, rank, world);
    }

    /** Evaluation batches: every block in corpus order, in one process. */
    public static BlockBatches forEvaluation(TokenStore store, int k, int blockTokens, int batchBlocks, int padId) {
        return new BlockBatches(store, k, blockTokens, batchBlocks, padId, 0, false, 0, 1);
    }

    private BlockBatches(TokenStore store, int k, int blockTokens, int batchBlocks, int padId, long seed,
                         boolean shuffle, int rank, int world) {
        if (blockTokens % k != 0) {
            throw new UserError("block of " + blockTokens + " tokens is not a multiple of K=" + k);
        }
        this.store = store;
        this.k = k;
        this.blockTokens = blockTokens;
        this.batchBlocks = batchBlocks;
        this.pad = padId;
        this.seed = seed;
        this.shuffle = shuffle;
        this.paddedBefore = Arrays.stream(store.chunksBefore(k)).map(c -> c * k).toArray(); // tokens, padded to K
        long blocks = paddedBefore[paddedBefore.length - 1] / blockTokens - (shuffle ? 1 : 0); // one spare block for the epoch shift
        if (blocks / world < batchBlocks) {
            throw new UserError("the corpus has " + Math.max(0, blocks) + " blocks of " + blockTokens
                    + " tokens, fewer than one batch of " + batchBlocks + " per process: lower batch_size or "
                    + "the context, or use more data");
        }
        this.sampler = new EpochSampler((int) blocks, seed, shuffle, rank, world);
    }

    public int blockTokens() {
        return blockTokens;
    }

    /** Blocks in one pass over this rank's share. */
    public long batchesPerEpoch() {
        return sampler.perRank() / batchBlocks;
    }

    @Override
    public TokenBatch next() {
        int[] idx = sampler.next(batchBlocks);
        long shift = shuffle ? new SplittableRandom(seed ^ sampler.epoch() * 0xD1B54A32D192ED03L)
                .nextInt(blockTokens / k) * (long) k : 0;
        long[] ids = new long[batchBlocks * blockTokens];
        for (int i = 0; i < idx.length; i++) fill(shift + (long) idx[i] * blockTokens, ids, i * blockTokens);
        return new TokenBatch(ids, batchBlocks, blockTokens);
    }

    private void fill(long paddedStart, long[] dst, int off) {
        int d = Arrays.binarySearch(paddedBefore, paddedStart);
        d = d >= 0 ? d : -d - 2;
        long p = paddedStart;
        for (int j = 0; j < blockTokens; j++, p++) {
            while (p >= paddedBefore[d + 1]) d++;
            long pos = store.docStart(d) + (p - paddedBefore[d]);
            dst[off + j] = pos < store.docEnd(d) ? store.token(pos) : pad;
        }
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
        return (long) batchBlocks * blockTokens;
    }
}
