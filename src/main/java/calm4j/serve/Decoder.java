package calm4j.serve;

import java.util.List;

/**
 * A live generation batch as the server drives it: sequences join and leave between steps (continuous batching).
 * Implemented over {@link calm4j.generate.CalmGenerator.Session} and {@link calm4j.generate.TokenGenerator.Session}.
 * Only the scheduler's thread calls it.
 */
interface Decoder extends AutoCloseable {
    /** One sequence to generate; the prompt is token ids. */
    record Job(int[] prompt, int maxTokens, double temperature, long seed) {}

    /** What one step gave sequence {@code id}: its new tokens, and why it stopped (null while it runs). */
    record Step(int id, int[] tokens, String finishReason) {}

    /** Adds sequences, prefilled together; returns their ids in order. */
    List<Integer> join(List<Job> jobs);

    /** One step for every running sequence (K tokens for a CALM, one for a token model). */
    List<Step> step();

    /** Removes a running sequence. */
    void cancel(int id);

    int size();

    @Override
    void close();
}
