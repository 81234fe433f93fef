package calm4j.serve;

import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import calm4j.generate.Finish;
import calm4j.generate.GenerationSession;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Continuous batching: one thread owns the model and runs its {@link GenerationSession} step after step. Between
 * steps, waiting sequences join the batch (up to {@code maxBatch} running at once) and finished, cancelled or
 * timed-out ones leave, so a short request never waits for a long one to end. Waiting sequences sit in a bounded
 * queue; when it is full a submission is refused at once (the server answers 503). {@code maxBatch = 1} serves one
 * sequence at a time.
 */
final class Scheduler implements AutoCloseable {
    private final ServedModel model;
    private final int maxBatch;
    private final long kvMemoryBytes;
    private final boolean stopAtEos;
    private volatile long cacheBytes; // the batch's KV cache after the last step
    private final BlockingQueue<Sequence> waiting;
    private final Thread loop;
    private volatile boolean running = true;
    /** Once set: no sequence is admitted, and those still running at this System.nanoTime() end as SHUTDOWN. */
    private volatile long drainDeadline = Long.MAX_VALUE;
    private volatile boolean draining;
    private volatile int active;
    private final AtomicInteger failures = new AtomicInteger();

    /**
     * @param kvMemoryBytes the KV cache the batch may hold with every sequence at its full length (0: no limit)
     * @param stopAtEos     whether EOS ends a sequence (off for benchmarks that time fixed lengths)
     */
    Scheduler(ServedModel model, int maxBatch, int queueCapacity, long kvMemoryBytes, boolean stopAtEos) {
        this.model = model;
        this.maxBatch = maxBatch;
        this.kvMemoryBytes = kvMemoryBytes;
        this.stopAtEos = stopAtEos;
        this.waiting = new ArrayBlockingQueue<>(queueCapacity);
        this.loop = new Thread(this::run, "calm4j-scheduler");
        loop.setDaemon(true);
        loop.start();
    }

    /** Queues all of {@code sequences}, or none of them when the queue cannot take them all (returns false). */
    synchronized boolean submit(List<Sequence> sequences) {
        if (draining || waiting.remainingCapacity() < sequences.size()) return false;
        waiting.addAll(sequences);
        return true;
    }

    int queued() {
        return waiting.size();
    }

    int active() {
        return active;
    }

    /**
     * Serves until closed. A failure inside a step ends the sequences of that batch with {@link Finish#ERROR} (a
     * step is one computation over all of them, so which one caused it cannot be told apart); the session is
     * rebuilt and the waiting sequences are served as before, so no request can stop the server.
     */
    private void run() {
        while (running) {
            Map<Integer, Sequence> byId = new HashMap<>();
            try (GenerationSession<?> session = model.newSession(stopAtEos)) {
                serve(session, byId);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (RuntimeException e) {
                String message = LibtorchErrors.isLibtorch(e) ? LibtorchErrors.translate("generation", e).getMessage()
                        : String.valueOf(e);
                System.err.println("calm serve: a generation step failed (" + byId.size() + " sequences end with "
                        + "an error; serving goes on): " + message);
                if (!LibtorchErrors.isLibtorch(e)) e.printStackTrace(); // a calm4j bug: show where
                byId.values().forEach(s -> s.end(Finish.ERROR, message));
                failures.incrementAndGet();
                active = 0;
            }
        }
    }

    private void serve(GenerationSession<?> session, Map<Integer, Sequence> byId) throws InterruptedException {
        while (running) {
            if (draining && byId.isEmpty() && waiting.isEmpty()) {
                Thread.sleep(20); // drained: nothing more will come
                continue;
            }
            if (byId.isEmpty()) {
                Sequence first = waiting.poll(100, TimeUnit.MILLISECONDS);
                if (first == null) continue;
                admit(session, byId, first);
            } else if (byId.size() < maxBatch && !waiting.isEmpty()) {
                admit(session, byId, null);
            }
            long now = System.nanoTime();
            boolean stopping = now > drainDeadline;
            if (stopping) endWaiting();
            for (var it = byId.entrySet().iterator(); it.hasNext(); ) {
                var e = it.next();
                Sequence s = e.getValue();
                Finish reason = s.isCancelled() ? Finish.CANCELLED : now > s.deadlineNanos ? Finish.TIMEOUT
                        : stopping ? Finish.SHUTDOWN : null;
                if (reason != null) {
                    session.cancel(e.getKey());
                    s.end(reason, null);
                    it.remove();
                }
            }
            if (!byId.isEmpty()) {
                for (var e : session.step()) {
                    Finish finish = e.finished() == null ? null : e.finished().finish();
                    Sequence s = finish == null ? byId.get(e.id()) : byId.remove(e.id());
                    s.deliver(e.tokens(), finish, null);
                }
            }
            active = byId.size();
            cacheBytes = session.cacheBytes();
        }
    }

    /** Bytes the batch's KV cache held after the last step. */
    long cacheBytes() {
        return cacheBytes;
    }

    /** Generation steps that failed since the start (each ended its batch's sequences with an error). */
    int failures() {
        return failures.get();
    }

    /**
     * Moves waiting sequences into the batch (with {@code first}, already taken), as many as it has room for: at most
     * {@code maxBatch}, and with a KV-cache budget, only while every sequence's cache at its full length fits. The
     * first in line waits for room rather than being overtaken.
     */
    private void admit(GenerationSession<?> session, Map<Integer, Sequence> byId, Sequence first) {
        List<Sequence> joining = new ArrayList<>();
        List<calm4j.generate.GenerationRequest> requests = new ArrayList<>();
        if (first != null) {
            joining.add(first);
            requests.add(first.request);
        }
        while (byId.size() + joining.size() < maxBatch) {
            Sequence s = waiting.peek();
            if (s == null) break;
            if (kvMemoryBytes > 0 && !byId.isEmpty() || kvMemoryBytes > 0 && !joining.isEmpty()) {
                requests.add(s.request);
                boolean fits = session.cacheBytesWith(requests) <= kvMemoryBytes;
                requests.remove(requests.size() - 1);
                if (!fits) break;
            }
            waiting.poll();
            joining.add(s);
            requests.add(s.request);
        }
        joining.removeIf(s -> {
            if (!s.isCancelled()) return false;
            s.end(Finish.CANCELLED, null);
            return true;
        });
        if (joining.isEmpty()) return;
        List<Integer> ids;
        try {
            ids = session.join(joining.stream().map(s -> s.request).toList());
        } catch (UserError e) { // checked before queueing, so not expected; fail these requests, not the server
            joining.forEach(s -> s.end(Finish.ERROR, e.getMessage()));
            return;
        } catch (RuntimeException e) { // the session may be half-changed: end these, and let run() rebuild it
            joining.forEach(s -> s.end(Finish.ERROR, String.valueOf(e)));
            throw e;
        }
        for (int i = 0; i < ids.size(); i++) byId.put(ids.get(i), joining.get(i));
    }

    boolean isRunning() {
        return running;
    }

    /**
     * Stops taking sequences; those queued or running go on until {@code deadlineNanos} (System.nanoTime()), when
     * the ones not yet ended end with {@link Finish#SHUTDOWN}. Returns at once; {@link #drained} tells when done.
     */
    void drain(long deadlineNanos) {
        synchronized (this) {
            draining = true;
        }
        drainDeadline = deadlineNanos;
    }

    /** Whether, after {@link #drain}, no sequence is queued or running. */
    boolean drained() {
        return draining && waiting.isEmpty() && active == 0;
    }

    private void endWaiting() {
        for (Sequence s; (s = waiting.poll()) != null; ) s.end(Finish.SHUTDOWN, null);
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
