package calm4j.generate;

import calm4j.engine.Engine;
import calm4j.nn.BatchKVCache;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.function.ToIntFunction;

import static calm4j.nn.Tensors.cat;

/**
 * The rows of a live generation batch, as both generation sessions keep them: each running sequence's state, its
 * KV cache row, and one tensor row of what the next step samples from (a CALM's last hidden state, a token model's
 * next-token logits). Rows are appended when sequences join and dropped, in all three places at once, when they leave.
 *
 * @param <S> a running sequence
 */
final class RunningRows<S> {
    final BatchKVCache cache;
    final List<S> active = new ArrayList<>();
    private final ToIntFunction<S> id;
    private Tensor next; // [active, ...], retained across the per-step memory scopes

    RunningRows(BatchKVCache cache, ToIntFunction<S> id) {
        this.cache = cache;
        this.id = id;
    }

    Tensor next() {
        return next;
    }

    int size() {
        return active.size();
    }

    /** Adds prefilled rows: their sequences and their {@code next} rows (the cache rows were added by the caller). */
    void append(List<S> joined, Tensor joinedNext) {
        set(next == null ? joinedNext : cat(0, next, joinedNext));
        active.addAll(joined);
    }

    /** Replaces every row's {@code next} tensor, after a step of the whole batch. */
    void set(Tensor t) {
        Tensor old = next;
        next = t == null ? null : t.retainReference();
        if (old != null) old.releaseReference();
    }

    /** Keeps the rows at {@code keep} (indices into the active list, in order). */
    void retain(List<Integer> keep) {
        if (keep.size() == active.size()) return;
        long[] rows = keep.stream().mapToLong(Integer::longValue).toArray();
        List<S> kept = new ArrayList<>();
        for (int i : keep) kept.add(active.get(i));
        active.clear();
        active.addAll(kept);
        Engine.step(() -> {
            cache.keep(rows);
            set(rows.length == 0 ? null : next.index_select(0, Tensor.create(rows).to(next.device(),
                    torch.ScalarType.Long)));
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
