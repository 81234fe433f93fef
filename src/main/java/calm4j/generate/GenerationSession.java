package calm4j.generate;

import java.util.List;

/**
 * A live generation batch: sequences join and leave between steps (continuous batching). Implemented by
 * {@link CalmGenerator.Session} (K tokens a step) and {@link TokenGenerator.Session} (one token a step). One thread
 * drives a session.
 *
 * @param <O> the output of a finished sequence
 */
public interface GenerationSession<O extends GenerationSession.Result> extends AutoCloseable {
    /** A finished sequence's output. */
    interface Result {
        int[] tokens();

        /** Why it ended: {@link Finish#EOS}, {@link Finish#LENGTH} or {@link Finish#CONTEXT}. */
        Finish finish();
    }

    /** What one step gave sequence {@code id}: its new tokens, and its output once it has finished (else null). */
    record Event<O>(int id, int[] tokens, O finished) {}

    /** Adds sequences, prefilled in one pass; returns their ids in order. Refuses prompts the context cannot fit. */
    List<Integer> join(List<GenerationRequest> requests);

    /** One step for every running sequence; finished sequences leave the batch. */
    List<Event<O>> step();

    /** Removes a running sequence (its client went away, or its time ran out); unknown ids are ignored. */
    void cancel(int id);

    /** Running and waiting sequences. */
    int size();

    /** Bytes the session's KV caches hold now: the batch's, and those of long prompts being prefilled. */
    long cacheBytes();

    /**
     * Bytes the session's KV caches will hold once {@code requests} have joined and every sequence has reached its
     * length (prompt and new tokens, within the context), the batch's cache grown as joining grows it.
     */
    long cacheBytesWith(List<GenerationRequest> requests);

    default boolean isEmpty() {
        return size() == 0;
    }

    @Override
    void close();
}
