package calm4j.generate;

import calm4j.engine.Engine;
import calm4j.nn.KVCache;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToIntFunction;

import static calm4j.nn.Tensors.cat;

/**
 * The rows of a live generation batch, as both generation sessions keep them: each running sequence's state, its
 * KV cache row, and one tensor row of what the next step samples from (a CALM's last hidden state, a token model's
 * next-token logits). Row i of the cache, of {@link #next()} and of {@link #active} is the same sequence. A sequence
 * that leaves is replaced by the last row in all three places ({@link KVCache#removeRow}): one row is copied, the
 * others stay where they are.
 *
 * @param <S> a running sequence
 */
final class RunningRows<S> {
    final KVCache cache;
    final List<S> active = new ArrayList<>();
    private final ToIntFunction<S> id;
    private Tensor next; // [active, ...], retained across the per-step memory scopes

    RunningRows(KVCache cache, ToIntFunction<S> id) {
        this.cache = cache;
        this.id = id;
    }

    Tensor next() {
        return next;
    }

    int size() {
        return active.size();
    }

    /**
     * Adds prefilled rows: {@code group} holds their keys and values (copied into the batch's cache, which is first
     * given room for {@code positions} positions a row), {@code joinedNext} their next tensor rows.
     */
    void append(List<S> joined, KVCache group, Tensor joinedNext, long positions) {
        cache.reserve(rowRoom(cache, joined.size()), Math.max(cache.capacity(), positions));
        cache.appendRows(group);
        set(next == null ? joinedNext : cat(0, next, joinedNext));
        active.addAll(joined);
    }

    /**
     * The rows a batch cache makes room for when {@code joining} rows join: its capacity while they fit, else
     * {@link #roomFor} them. Rows join a few at a time and growing copies the whole cache, so it grows ahead.
     */
    static long rowRoom(KVCache cache, int joining) {
        return rowRoom(cache.rows() + joining, cache.rowCapacity());
    }

    static long rowRoom(long needed, long capacity) {
        return Math.max(capacity, roomFor(needed));
    }

    /**
     * Rows held for {@code needed} rows: the next power of two up to 8, then the next multiple of 8 (little room held
     * for one sequence, at most 8 rows for many). A function of the rows alone, not of how the batch grew to them, so
     * the memory a batch will hold can be told before its rows join (--kv-memory admits by it).
     */
    static long roomFor(long needed) {
        if (needed <= 8) return Long.highestOneBit(Math.max(1, needed - 1)) << (needed <= 1 ? 0 : 1);
        return (needed + 7) / 8 * 8;
    }

    /**
     * The bytes a session's caches will hold once the sequences {@code waiting} to be prefilled and {@code joining}
     * have joined, every sequence at its full length ({@code needed} positions for its request): the batch's cache
     * grown for all of them, and the caches of the waiting prompts prefilled alone (counted for each, an upper
     * bound), at {@code bytesPerPosition} per row and position.
     */
    long bytesWith(PrefillQueue<S> waiting, List<GenerationRequest> joining,
                   java.util.function.ToLongFunction<GenerationRequest> needed,
                   java.util.function.Function<S, GenerationRequest> requestOf, long bytesPerPosition) {
        long positions = cache.capacity();
        for (S s : active) positions = Math.max(positions, needed.applyAsLong(requestOf.apply(s)));
        for (S s : waiting.sequences()) positions = Math.max(positions, needed.applyAsLong(requestOf.apply(s)));
        for (GenerationRequest r : joining) positions = Math.max(positions, needed.applyAsLong(r));
        long rows = rowRoom(cache.rows() + waiting.size() + joining.size(), cache.rowCapacity());
        return (rows * positions + waiting.positions()) * bytesPerPosition;
    }

    /** Replaces every row's {@code next} tensor, after a step of the whole batch. */
    void set(Tensor t) {
        Tensor old = next;
        next = t == null ? null : t.retainReference();
        if (old != null) old.releaseReference();
    }

    /** Keeps the rows at {@code keep} (indices into the active list); the others leave, last rows moving in. */
    void retain(List<Integer> keep) {
        if (keep.size() == active.size()) return;
        boolean[] kept = new boolean[active.size()];
        for (int i : keep) kept[i] = true;
        Engine.step(() -> {
            Tensor moved = next;
            for (int i = active.size() - 1; i >= 0; i--) {
                if (kept[i]) continue;
                int last = cache.removeRow(i);
                if (last >= 0) {
                    active.set(i, active.get(last));
                    moved.select(0, i).copy_(moved.select(0, last));
                }
                active.remove(active.size() - 1);
            }
            set(active.isEmpty() ? null : moved.narrow(0, 0, active.size()).clone());
            return null;
        });
    }

    /** Drops the sequence with this id, if it is running. */
    void cancel(int sequence) {
        List<Integer> keep = new ArrayList<>();
        for (int i = 0; i < active.size(); i++) if (id.applyAsInt(active.get(i)) != sequence) keep.add(i);
        retain(keep);
    }

    void clear() {
        cache.clear();
        set(null);
        active.clear();
    }
}
