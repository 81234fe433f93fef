package calm4j.loader;

import java.util.SplittableRandom;

/**
 * The order in which a loader visits its items: a fresh random permutation each epoch (a pure function of the seed
 * and the epoch), of which rank r of w takes positions r, r + w, r + 2w, ... Its state is two numbers, so a
 * checkpoint can store it and a resumed run continues with exactly the items an uninterrupted run would have seen.
 */
final class EpochSampler {
    private final int items;
    private final long seed;
    private final boolean shuffle;
    private final int rank;
    private final int world;
    private final int perRank;
    private long epoch;
    private long cursor;
    private int[] order;

    EpochSampler(int items, long seed, boolean shuffle, int rank, int world) {
        if (world < 1 || rank < 0 || rank >= world) {
            throw new IllegalArgumentException("rank " + rank + " of world " + world);
        }
        this.items = items;
        this.seed = seed;
        this.shuffle = shuffle;
        this.rank = rank;
        this.world = world;
        this.perRank = items / world; // every rank gets the same count, so ranks stay in step
    }

    int perRank() {
        return perRank;
    }

    long epoch() {
        return epoch;
    }

    /** The next {@code count} item indices, moving to a new epoch when fewer than {@code count} remain. */
    int[] next(int count) {
        if (count > perRank) {
            throw new IllegalStateException("a batch of " + count + " needs more items than this rank's " + perRank);
        }
        if (cursor + count > perRank) {
            epoch++;
            cursor = 0;
            order = null;
        }
        if (order == null) order = permutation(epoch);
        int[] out = new int[count];
        for (int i = 0; i < count; i++) out[i] = order[(int) ((cursor + i) * world + rank)];
        cursor += count;
        return out;
    }

    private int[] permutation(long e) {
        int[] p = new int[items];
        for (int i = 0; i < items; i++) p[i] = i;
        if (!shuffle) return p;
        SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + e);
        for (int i = items - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    LoaderState state() {
        return new LoaderState(epoch, cursor);
    }

    void restore(LoaderState s) {
        epoch = s.epoch();
        cursor = s.cursor();
        order = null;
    }
}
