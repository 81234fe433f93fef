package calm4j.generate;

import calm4j.nn.KVCache;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Prompts are prefilled in bounded slices, short ones first and together, so none waits long for another. */
class PrefillQueueTest {
    /** A pass that records its shape [rows, positions] and returns each position's first id as its hidden state. */
    static final class Recorder implements PrefillQueue.Pass {
        final List<long[]> passes = new ArrayList<>();
        final int width;

        Recorder(int width) {
            this.width = width;
        }

        @Override
        public Tensor run(Tensor ids, KVCache cache) {
            long rows = ids.size(0), n = ids.size(1) / width;
            passes.add(new long[] {rows, n});
            cache.begin((int) rows, n);
            Tensor kv = torch.zeros(rows, 1, n, 2);
            cache.write(0, kv, kv);
            cache.end(n);
            return ids.view(rows, n, width).select(2, 0).to(torch.ScalarType.Float).unsqueeze(2); // [rows, n, 1]
        }
    }

    static long[] prompt(int n, int first) {
        long[] ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = first + i;
        return ids;
    }

    @Test
    void aLongPromptIsPrefilledInSlicesAndAShortOneJoiningMeanwhileGoesFirst() {
        PrefillQueue<String> q = new PrefillQueue<>(1, 256);
        Recorder pass = new Recorder(1);
        q.add("long", prompt(600, 0));
        assertNull(q.step(pass, () -> new KVCache(1)), "the first slice of the long prompt");
        q.add("short", prompt(10, 1000));
        PrefillQueue.Ready<String> ready = q.step(pass, () -> new KVCache(1));
        assertEquals(List.of("short"), ready.sequences(), "the short prompt is prefilled whole before the next slice");
        assertEquals(1009, ready.last().item_long(), "its hidden state at its own last position");
        assertNull(q.step(pass, () -> new KVCache(1)));
        ready = q.step(pass, () -> new KVCache(1));
        assertEquals(List.of("long"), ready.sequences());
        assertEquals(600, ready.cache().length(0), "the long prompt's cache holds all its positions");
        assertEquals(599, ready.last().item_long());
        assertArrayEquals(new long[] {256, 10, 256, 88}, pass.passes.stream().mapToLong(p -> p[1]).toArray(),
                "slices of at most the budget");
        assertTrue(q.isEmpty());
    }

    @Test
    void shortPromptsArePrefilledTogetherEachAtItsOwnLength() {
        PrefillQueue<String> q = new PrefillQueue<>(2, 256); // two ids a position, as a CALM's chunks of K = 2
        Recorder pass = new Recorder(2);
        q.add("a", prompt(4, 0));
        q.add("b", prompt(10, 100));
        q.add("c", prompt(6, 200));
        PrefillQueue.Ready<String> ready = q.step(pass, () -> new KVCache(1));
        assertEquals(List.of("a", "b", "c"), ready.sequences());
        assertEquals(1, pass.passes.size(), "one right-padded pass");
        assertArrayEquals(new long[] {3, 5}, pass.passes.get(0));
        assertArrayEquals(new long[] {2, 5, 3}, new long[] {ready.cache().length(0), ready.cache().length(1),
                ready.cache().length(2)}, "each row keeps its own length");
        // the recorder's hidden state of a position is its first id (2 ids per position)
        assertArrayEquals(new float[] {2, 108, 204}, floats(ready.last()), "each row's own last position");
    }

    static float[] floats(Tensor t) {
        Tensor c = t.reshape(-1).contiguous().to(torch.ScalarType.Float);
        float[] out = new float[(int) c.numel()];
        c.data_ptr_float().get(out);
        return out;
    }
}
