package calm4j.serve;

import calm4j.generate.Finish;
import calm4j.generate.GenerationRequest;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One sequence to generate, from the HTTP request that asked for it to the scheduler that runs it: choice
 * {@code index} of its request, when it must end, and where its steps go. The sequences of one request share one
 * queue, read by that request's thread.
 */
final class Sequence {
    /** What one step gave choice {@code index}: new tokens, and once it ended why (and for an error, what failed). */
    record Step(int index, int[] tokens, Finish finish, String error) {
        /** A step that ends every unfinished choice of its request ({@code index} -1). */
        static Step endAll(Finish finish, String error) {
            return new Step(-1, new int[0], finish, error);
        }
    }

    final GenerationRequest request;
    final int index;
    final long deadlineNanos;
    private final BlockingQueue<Step> out;
    private final AtomicBoolean cancelled = new AtomicBoolean();

    Sequence(GenerationRequest request, int index, long deadlineNanos, BlockingQueue<Step> out) {
        this.request = request;
        this.index = index;
        this.deadlineNanos = deadlineNanos;
        this.out = out;
    }

    void deliver(int[] tokens, Finish finish, String error) {
        out.add(new Step(index, tokens, finish, error));
    }

    void end(Finish finish, String error) {
        deliver(new int[0], finish, error);
    }

    /** Stops generating this sequence (its client went away, or a stop string ended it); takes effect before the next step. */
    void cancel() {
        cancelled.set(true);
    }

    boolean isCancelled() {
        return cancelled.get();
    }
}
