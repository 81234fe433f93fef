package calm4j.generate;

import calm4j.nn.KVCache;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * Prompts waiting to be prefilled into a generation batch, prefilled a bounded number of positions per step so that
 * a long prompt never holds up the batch's decoding, or a short request, for long. Each step:
 * <ul>
 *   <li>prompts that fit the step's budget whole (short ones) are prefilled together, oldest first, as one
 *       right-padded pass: every row at its own positions from 0, its padding after its end (causal attention never
 *       lets a real position see it); they join the batch at once;</li>
 *   <li>otherwise, the oldest longer prompt gets one slice of the budget, prefilled alone into a cache of its own
 *       that grows slice by slice; it joins the batch after its last slice.</li>
 * </ul>
 * A short prompt therefore waits for at most the one slice under way when it arrives. Positions are the backbone's:
 * a CALM's chunks ({@code width} = K tokens each), a token model's tokens.
 *
 * @param <S> a sequence
 */
final class PrefillQueue<S> {
    /** The backbone's pass over token ids [rows, positions * width] with a cache: hidden states [rows, positions, d]. */
    interface Pass {
        Tensor run(Tensor ids, KVCache cache);
    }

    /** Prefilled sequences ready to join: their cache rows, and each one's hidden state at its last position. */
    record Ready<S>(List<S> sequences, KVCache cache, Tensor last) {}

    private final class Pending {
        final S sequence;
        final long[] ids; // positions * width token ids
        final int positions;
        KVCache cache;    // a long prompt's own, grown slice by slice
        int done;         // positions prefilled so far

        Pending(S sequence, long[] ids) {
            this.sequence = sequence;
            this.ids = ids;
            this.positions = ids.length / width;
        }
    }

    private final int width;
    private final long budget;
    private final List<Pending> pending = new ArrayList<>();

    /**
     * @param width  token ids per position
     * @param budget positions prefilled per step at most (a prompt longer than this is prefilled in slices)
     */
    PrefillQueue(int width, long budget) {
        if (budget < 1) throw new IllegalArgumentException("the prefill budget must be at least 1 position");
        this.width = width;
        this.budget = budget;
    }

    /** Queues a prompt of whole positions. */
    void add(S sequence, long[] ids) {
        if (ids.length == 0 || ids.length % width != 0) {
            throw new IllegalArgumentException(ids.length + " token ids are not whole positions of " + width);
        }
        pending.add(new Pending(sequence, ids));
    }

    boolean isEmpty() {
        return pending.isEmpty();
    }

    int size() {
        return pending.size();
    }

    /** Drops the waiting prompts whose sequence {@code gone} accepts (their requests went away). */
    void removeIf(java.util.function.Predicate<S> gone) {
        for (var it = pending.iterator(); it.hasNext(); ) {
            Pending p = it.next();
            if (gone.test(p.sequence)) {
                if (p.cache != null) p.cache.clear();
                it.remove();
            }
        }
    }

    /** Frees every waiting prompt's cache. */
    void clear() {
        for (Pending p : pending) if (p.cache != null) p.cache.clear();
        pending.clear();
    }

    /** The positions every waiting prompt still needs (for memory accounting). */
    long positions() {
        return pending.stream().mapToLong(p -> p.positions).sum();
    }

    /** Bytes the caches of prompts being prefilled alone hold. */
    long cacheBytes() {
        return pending.stream().filter(p -> p.cache != null).mapToLong(p -> p.cache.bytes()).sum();
    }

    /** The waiting sequences, oldest first. */
    List<S> sequences() {
        return pending.stream().map(p -> p.sequence).toList();
    }

    /** One step's prefill (see the class comment): what became ready to join, possibly nothing. */
    Ready<S> step(Pass pass, Supplier<KVCache> newCache) {
        List<Pending> shorts = new ArrayList<>();
        long used = 0;
        for (Pending p : pending) {
            if (p.cache == null && p.positions <= budget && used + p.positions <= budget) {
                shorts.add(p);
                used += p.positions;
            }
        }
        if (!shorts.isEmpty()) return together(shorts, pass, newCache.get());
        Pending p = pending.get(0);
        if (p.cache == null) {
            p.cache = newCache.get();
            p.cache.reserve(1, p.positions); // allocated once for the whole prompt, filled slice by slice
        }
        int n = (int) Math.min(budget, p.positions - p.done);
        Tensor ids = Tensor.create(Arrays.copyOfRange(p.ids, p.done * width, (p.done + n) * width)).view(1,
                (long) n * width);
        Tensor h = pass.run(ids, p.cache);
        p.done += n;
        if (p.done < p.positions) return null;
        pending.remove(p);
        return new Ready<>(List.of(p.sequence), p.cache, h.select(1, n - 1));
    }

    /** Short prompts in one right-padded pass; each row's hidden state is taken at its own last position. */
    private Ready<S> together(List<Pending> group, Pass pass, KVCache cache) {
        int rows = group.size(), longest = group.stream().mapToInt(p -> p.positions).max().orElse(0);
        long[] ids = new long[rows * longest * width];
        long[] lengths = new long[rows], lastIndex = new long[rows];
        for (int r = 0; r < rows; r++) {
            Pending p = group.get(r);
            System.arraycopy(p.ids, 0, ids, r * longest * width, p.ids.length);
            // padding repeats the prompt's last position: any valid ids do, since no real position sees them
            for (int j = p.ids.length; j < longest * width; j++) ids[r * longest * width + j] = p.ids[p.ids.length - 1];
            lengths[r] = p.positions;
            lastIndex[r] = (long) r * longest + p.positions - 1;
        }
        cache.reserve(rows, longest);
        Tensor h = pass.run(Tensor.create(ids).view(rows, (long) longest * width), cache);
        cache.setLengths(lengths);
        Tensor last = h.reshape(rows * longest, -1).index_select(0, Tensor.create(lastIndex)
                .to(h.device(), org.bytedeco.pytorch.global.torch.ScalarType.Long));
        pending.removeAll(group);
        return new Ready<>(group.stream().map(p -> p.sequence).toList(), cache, last);
    }
}
