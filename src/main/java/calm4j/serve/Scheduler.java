package calm4j.serve;

import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Continuous batching: one thread owns the model and runs a {@link Decoder} step after step. Between steps, waiting
 * sequences join the batch (up to {@code maxBatch} running at once) and finished, cancelled or timed-out ones leave,
 * so a short request never waits for a long one to end. Waiting requests sit in a bounded queue; when it is full a
 * submission is refused at once (the server answers 503). {@code maxBatch = 1} serves one sequence at a time.
 */
final class Scheduler implements AutoCloseable {
    /** A step of the sequence that is choice {@code index} of its request. */
    record Delivery(int index, Decoder.Step step) {}

    /**
     * A submitted sequence: its job, when it must end, and where its steps go. The sequences of one request share
     * one queue, read by that request's thread.
     */
    static final class Ticket {
        final Decoder.Job job;
        final int index;
        final long deadlineNanos;
        final BlockingQueue<Delivery> out;
        final AtomicBoolean cancelled = new AtomicBoolean();

        Ticket(Decoder.Job job, int index, long deadlineNanos, BlockingQueue<Delivery> out) {
            this.job = job;
            this.index = index;
            this.deadlineNanos = deadlineNanos;
            this.out = out;
        }

        void deliver(Decoder.Step step) {
            out.add(new Delivery(index, step));
        }

        /** Stops generating this sequence (its client went away); takes effect before the next step. */
        void cancel() {
            cancelled.set(true);
        }
    }

    static final String TIMEOUT = "timeout";
    static final String CANCELLED = "cancelled";
    static final String ERROR = "error";

    private final ServedModel model;
    private final int maxBatch;
    private final BlockingQueue<Ticket> waiting;
    private final Thread loop;
    private volatile boolean running = true;
    private volatile int active;
    private final AtomicInteger failures = new AtomicInteger();

    Scheduler(ServedModel model, int maxBatch, int queueCapacity) {
        this.model = model;
        this.maxBatch = maxBatch;
        this.waiting = new ArrayBlockingQueue<>(queueCapacity);
        this.loop = new Thread(this::run, "calm4j-scheduler");
        loop.setDaemon(true);
        loop.start();
    }

    /** Queues all of {@code tickets}, or none of them when the queue cannot take them all (returns false). */
    synchronized boolean submit(List<Ticket> tickets) {
        if (waiting.remainingCapacity() < tickets.size()) return false;
        waiting.addAll(tickets);
        return true;
    }

    int queued() {
        return waiting.size();
    }

    int active() {
        return active;
    }

    /**
     * Serves until closed. A failure inside a step ends the sequences of that batch with {@code error} (a step is
     * one computation over all of them, so which one caused it cannot be told apart); the decoder is rebuilt and
     * the waiting requests are served as before, so no request can stop the server.
     */
    private void run() {
        while (running) {
            Map<Integer, Ticket> byId = new HashMap<>();
            try (Decoder decoder = model.newDecoder()) {
                serve(decoder, byId);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException e) {
                String message = LibtorchErrors.isLibtorch(e) ? LibtorchErrors.translate("generation", e).getMessage()
                        : String.valueOf(e);
                System.err.println("calm serve: a generation step failed (" + byId.size() + " sequences end with "
                        + "an error; serving goes on): " + message);
                if (!LibtorchErrors.isLibtorch(e)) e.printStackTrace(); // a calm4j bug: show where
                byId.values().forEach(t -> t.deliver(new Decoder.Step(-1, new int[0], ERROR + ": " + message)));
                failures.incrementAndGet();
                active = 0;
            }
        }
    }

    private void serve(Decoder decoder, Map<Integer, Ticket> byId) throws InterruptedException {
        while (running) {
            if (byId.isEmpty()) {
                Ticket first = waiting.poll(100, TimeUnit.MILLISECONDS);
                if (first == null) continue;
                admit(decoder, byId, first);
            } else if (byId.size() < maxBatch && !waiting.isEmpty()) {
                admit(decoder, byId, null);
            }
            long now = System.nanoTime();
            for (var it = byId.entrySet().iterator(); it.hasNext(); ) {
                var e = it.next();
                Ticket t = e.getValue();
                String reason = t.cancelled.get() ? CANCELLED : now > t.deadlineNanos ? TIMEOUT : null;
                if (reason != null) {
                    decoder.cancel(e.getKey());
                    t.deliver(new Decoder.Step(e.getKey(), new int[0], reason));
                    it.remove();
                }
            }
            if (!byId.isEmpty()) {
                for (Decoder.Step s : decoder.step()) {
                    Ticket t = s.finishReason() == null ? byId.get(s.id()) : byId.remove(s.id());
                    t.deliver(s);
                }
            }
            active = byId.size();
        }
    }

    /** Generation steps that failed since the start (each ended its batch's sequences with an error). */
    int failures() {
        return failures.get();
    }

    /** Moves waiting tickets into the batch (with {@code first}, already taken), as many as it has room for. */
    private void admit(Decoder decoder, Map<Integer, Ticket> byId, Ticket first) {
        List<Ticket> joining = new ArrayList<>();
        if (first != null) joining.add(first);
        while (byId.size() + joining.size() < maxBatch) {
            Ticket t = waiting.poll();
            if (t == null) break;
            joining.add(t);
        }
        joining.removeIf(t -> {
            if (!t.cancelled.get()) return false;
            t.deliver(new Decoder.Step(-1, new int[0], CANCELLED));
            return true;
        });
        if (joining.isEmpty()) return;
        List<Integer> ids;
        try {
            ids = decoder.join(joining.stream().map(t -> t.job).toList());
        } catch (UserError e) { // checked before queueing, so not expected; fail these requests, not the server
            joining.forEach(t -> t.deliver(new Decoder.Step(-1, new int[0], ERROR + ": " + e.getMessage())));
            return;
        } catch (RuntimeException e) { // the decoder may be half-changed: end these, and let run() rebuild it
            joining.forEach(t -> t.deliver(new Decoder.Step(-1, new int[0], ERROR + ": " + e)));
            throw e;
        }
        for (int i = 0; i < ids.size(); i++) byId.put(ids.get(i), joining.get(i));
    }

    boolean isRunning() {
        return running;
    }

    @Override
    public void close() {
        running = false;
        try {
            loop.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
