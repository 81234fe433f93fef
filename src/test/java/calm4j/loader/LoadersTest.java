package calm4j.loader;

import calm4j.Fixtures;
import calm4j.data.TokenStore;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class LoadersTest {
    @TempDir
    static Path dir;
    static TokenStore store;
    static final int K = 4, PAD = 1, EOS = 0;

    @BeforeAll
    static void setUp() throws Exception {
        store = TokenStore.open(Fixtures.corpus(dir, 12, 3, 6), "train");
    }

    @Test
    void chunksNeverCrossADocumentBoundary() {
        ChunkBatches b = ChunkBatches.forTraining(store, K, 16, PAD, 5, 0, 1);
        for (int i = 0; i < 50; i++) {
            long[] ids = b.next().ids();
            for (int c = 0; c < 16; c++) {
                boolean ended = false;
                for (int j = 0; j < K; j++) {
                    long t = ids[c * K + j];
                    if (ended) assertEquals(PAD, t, "after EOS a chunk holds only PAD");
                    if (t == EOS) ended = true;
                    if (t == PAD) assertTrue(ended, "PAD only follows the document's EOS");
                }
            }
        }
    }

    @Test
    void anEpochVisitsEveryChunkExactlyOnce() {
        ChunkBatches shuffled = ChunkBatches.forTraining(store, K, 1, PAD, 5, 0, 1);
        ChunkBatches inOrder = ChunkBatches.forEvaluation(store, K, 1, PAD);
        long real = 0;
        for (long d = 0; d < store.documents(); d++) real += (store.docEnd(d) - store.docStart(d) + K - 1) / K;
        assertEquals(real, shuffled.chunks());
        java.util.List<String> a = new java.util.ArrayList<>(), b = new java.util.ArrayList<>();
        for (long i = 0; i < real; i++) {
            a.add(Arrays.toString(shuffled.next().ids()));
            b.add(Arrays.toString(inOrder.next().ids()));
        }
        assertNotEquals(a, b, "the shuffled epoch is in another order");
        java.util.Collections.sort(a);
        java.util.Collections.sort(b);
        assertEquals(b, a, "but holds the same chunks, each once");
    }

    @Test
    void batchesAreDeterministicForASeedAndResumeFromAState() {
        ChunkBatches a = ChunkBatches.forTraining(store, K, 8, PAD, 42, 0, 1);
        ChunkBatches b = ChunkBatches.forTraining(store, K, 8, PAD, 42, 0, 1);
        for (int i = 0; i < 7; i++) assertArrayEquals(a.next().ids(), b.next().ids());
        LoaderState mid = a.state();
        long[][] expected = new long[40][];
        for (int i = 0; i < 40; i++) expected[i] = a.next().ids(); // crosses an epoch boundary
        ChunkBatches c = ChunkBatches.forTraining(store, K, 8, PAD, 42, 0, 1);
        c.restore(mid);
        for (int i = 0; i < 40; i++) assertArrayEquals(expected[i], c.next().ids());
        ChunkBatches other = ChunkBatches.forTraining(store, K, 8, PAD, 43, 0, 1);
        assertFalse(Arrays.equals(ChunkBatches.forTraining(store, K, 8, PAD, 42, 0, 1).next().ids(),
                other.next().ids()), "another seed gives another order");
    }

    @Test
    void ranksShareAnEpochWithoutOverlap() {
        int items = (int) ChunkBatches.forTraining(store, K, 1, PAD, 1, 0, 1).chunks();
        EpochSampler r0 = new EpochSampler(items, 9, true, 0, 2), r1 = new EpochSampler(items, 9, true, 1, 2);
        Set<Integer> a = new HashSet<>(), b = new HashSet<>();
        for (int i : r0.next(r0.perRank())) a.add(i);
        for (int i : r1.next(r1.perRank())) b.add(i);
        assertEquals(items / 2, a.size());
        assertEquals(items / 2, b.size());
        a.retainAll(b);
        assertTrue(a.isEmpty(), "the two ranks see disjoint items");
    }

    @Test
    void blocksAreContiguousPaddedToKAndResumable() {
        BlockBatches a = BlockBatches.forTraining(store, K, 32, 2, PAD, 3, 0, 1);
        TokenBatch first = a.next();
        assertEquals(2, first.rows());
        assertEquals(32, first.cols());
        // In the padded stream, EOS is always followed by PAD up to the next multiple of K.
        for (int r = 0; r < 2; r++) {
            for (int j = 0; j < 32; j++) {
                if (first.ids()[r * 32 + j] == EOS) {
                    for (int p = j + 1; p < (j / K + 1) * K; p++) assertEquals(PAD, first.ids()[r * 32 + p]);
                }
            }
        }
        LoaderState s = a.state();
        long[] next = a.next().ids();
        BlockBatches b = BlockBatches.forTraining(store, K, 32, 2, PAD, 3, 0, 1);
        b.restore(s);
        assertArrayEquals(next, b.next().ids());
    }
}
