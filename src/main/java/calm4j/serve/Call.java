package calm4j.serve;

import calm4j.generate.Finish;
import calm4j.generate.StopStrings;
import calm4j.generate.TextStream;
import calm4j.serve.OpenAiWire.Choice;
import calm4j.serve.OpenAiWire.Completion;
import calm4j.serve.OpenAiWire.Message;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One completion request once its sequences are queued: it gathers their steps as they arrive and answers, either
 * all at once ({@link #collect}) or as server-sent events ({@link #stream}). Each choice's text is decoded from all
 * its tokens so far (UTF-8 safe), then passed through its stop strings; a chat reply's leading whitespace (after
 * "Assistant:") is dropped.
 */
final class Call {
    /** How often a non-streamed call checks that its client is still there; how long past its deadline it waits. */
    static final long CLIENT_CHECK_MILLIS = 100, GIVE_UP_AFTER_MILLIS = 30_000;

    final String id;
    private final boolean chat;
    private final String model;
    private final long created = System.currentTimeMillis() / 1000;
    final int promptTokens;
    private final List<Sequence> sequences;
    private final BlockingQueue<Sequence.Step> steps;
    private final double timeoutSeconds;
    private final List<TextStream> decoded = new ArrayList<>();
    private final List<StopStrings> stops = new ArrayList<>();
    private final StringBuilder[] text;
    private final boolean[] started;
    final Finish[] finish;
    /** What failed, for a call that ended in an error. */
    private String error;
    private final long giveUpNanos;
    private int finished;

    /**
     * @param sequences the queued sequences, choice i being sequence i; they report to {@code steps}
     * @param stopStrings strings that end a choice's text (not included)
     */
    Call(String id, boolean chat, ServedModel model, List<Sequence> sequences, BlockingQueue<Sequence.Step> steps,
         int promptTokens, List<String> stopStrings, double timeoutSeconds) {
        this.id = id;
        this.chat = chat;
        this.model = model.id;
        this.promptTokens = promptTokens;
        this.sequences = sequences;
        this.steps = steps;
        this.timeoutSeconds = timeoutSeconds;
        this.giveUpNanos = System.nanoTime() + (long) (timeoutSeconds * 1e9) + GIVE_UP_AFTER_MILLIS * 1_000_000;
        int n = sequences.size();
        this.finish = new Finish[n];
        this.text = new StringBuilder[n];
        this.started = new boolean[n];
        for (int i = 0; i < n; i++) {
            decoded.add(new TextStream(model::decode));
            stops.add(new StopStrings(stopStrings));
            text[i] = new StringBuilder();
        }
    }

    /** Records a step; returns the choice's new text. A step for a choice already ended is ignored. */
    private String add(Sequence.Step d) {
        if (d.error() != null) error = d.error();
        int i = d.index();
        if (i < 0) { // the whole request ended
            for (int j = 0; j < finish.length; j++) end(j, d.finish());
            return "";
        }
        if (finish[i] != null) return "";
        StopStrings stop = stops.get(i);
        String delta = stop.add(decoded.get(i).add(d.tokens(), d.finish() != null));
        if (stop.stopped()) {
            sequences.get(i).cancel(); // nothing after a stop string is generated or sent
            end(i, Finish.STOP);
        } else if (d.finish() != null) {
            delta += stop.flush();
            end(i, d.finish());
        }
        if (chat && !started[i]) {
            delta = delta.stripLeading();
            started[i] = !delta.isEmpty();
        }
        text[i].append(delta);
        return delta;
    }

    private void end(int i, Finish reason) {
        if (finish[i] != null) return;
        finish[i] = reason;
        finished++;
    }

    private boolean done() {
        return finished == finish.length;
    }

    int completionTokens() {
        return decoded.stream().mapToInt(TextStream::size).sum();
    }

    private Completion completion(boolean chunk, List<Choice> choices, OpenAiWire.Usage usage, Integer stepTokens,
                                  OpenAiWire.Error error) {
        String object = chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
        return new Completion(id, object, created, model, choices, usage, stepTokens, error);
    }

    private OpenAiWire.Usage usage() {
        return OpenAiWire.Usage.of(promptTokens, completionTokens());
    }

    /** OpenAI's finish reasons ("stop", "length"); calm4j adds "timeout", "cancelled", "error" and "shutdown". */
    private static String reason(Finish f) {
        return f == null ? null : f.openAi();
    }

    private String timeoutMessage() {
        return "generation took longer than the server's limit of " + timeoutSeconds + " s";
    }

    /** Waits for every choice to end, then answers with all of them; a client that leaves cancels the call. */
    void collect(Exchange ex) throws IOException {
        try {
            long nextCheck = System.nanoTime() + CLIENT_CHECK_MILLIS * 1_000_000;
            while (!done()) {
                Sequence.Step d = steps.poll(CLIENT_CHECK_MILLIS, TimeUnit.MILLISECONDS);
                if (d != null) add(d);
                long now = System.nanoTime();
                if (now > nextCheck) {
                    if (ex.clientGone()) { // nobody will read the answer: stop generating it
                        sequences.forEach(Sequence::cancel);
                        return;
                    }
                    nextCheck = now + CLIENT_CHECK_MILLIS * 1_000_000;
                }
                if (d == null && now > giveUpNanos) add(stalled());
            }
        } catch (InterruptedException e) {
            sequences.forEach(Sequence::cancel);
            Thread.currentThread().interrupt();
            return;
        }
        for (Finish f : finish) {
            if (f == Finish.ERROR) {
                ex.sendError(500, "server_error", Finish.ERROR.label() + ": " + error);
                return;
            }
            if (f == Finish.TIMEOUT) {
                ex.sendError(504, "timeout", timeoutMessage() + ": ask for fewer tokens, or retry when it is less "
                        + "busy");
                return;
            }
        }
        List<Choice> choices = new ArrayList<>();
        for (int i = 0; i < finish.length; i++) {
            choices.add(chat ? Choice.message(i, text[i].toString(), reason(finish[i]))
                    : Choice.text(i, text[i].toString(), reason(finish[i])));
        }
        ex.sendJson(200, completion(false, choices, usage(), null, null));
    }

    /**
     * Server-sent events: one event per generation step and choice (a K-token chunk for a CALM), then, when asked,
     * one with the usage and no choices, then [DONE]. A chat stream opens each choice with its role. A client that
     * leaves cancels the call.
     */
    void stream(Exchange ex, boolean includeUsage) throws IOException {
        ex.startStream("text/event-stream; charset=utf-8");
        try {
            if (chat) {
                for (int i = 0; i < finish.length; i++) {
                    ex.write(OpenAiWire.event(completion(true, List.of(Choice.delta(i, new Message("assistant", ""),
                            null)), null, null, null)));
                }
            }
            while (!done()) {
                Sequence.Step d = next();
                boolean open = d.index() >= 0 && finish[d.index()] == null;
                String delta = add(d);
                if (d.index() >= 0 && !open) continue; // a choice that ended at a stop string
                Finish f = d.index() >= 0 ? finish[d.index()] : d.finish();
                if (chat && delta.isEmpty() && f == null) continue;
                int index = Math.max(0, d.index());
                Choice choice = chat ? Choice.delta(index, new Message(null, delta.isEmpty() ? null : delta),
                        reason(f)) : Choice.text(index, delta, reason(f));
                OpenAiWire.Error failed = f == Finish.TIMEOUT ? new OpenAiWire.Error(timeoutMessage(), null, null, null)
                        : f == Finish.ERROR ? new OpenAiWire.Error(Finish.ERROR.label() + ": " + error, null, null,
                        null) : null;
                ex.write(OpenAiWire.event(completion(true, List.of(choice), null, d.tokens().length, failed)));
            }
            if (includeUsage) ex.write(OpenAiWire.event(completion(true, List.of(), usage(), null, null)));
            ex.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            ex.end();
        } catch (IOException e) {
            sequences.forEach(Sequence::cancel); // the client disconnected: stop generating for it
            throw e;
        } catch (InterruptedException e) {
            sequences.forEach(Sequence::cancel);
            Thread.currentThread().interrupt();
        }
    }

    /**
     * The next step of any of the call's sequences. The scheduler ends each sequence by its deadline; should it
     * stop answering altogether, the call gives up a little later on its own.
     */
    private Sequence.Step next() throws InterruptedException {
        Sequence.Step d = steps.poll((long) (timeoutSeconds * 1000) + GIVE_UP_AFTER_MILLIS, TimeUnit.MILLISECONDS);
        return d != null ? d : stalled();
    }

    private Sequence.Step stalled() {
        sequences.forEach(Sequence::cancel);
        return Sequence.Step.endAll(Finish.ERROR, "the generation thread stopped answering");
    }

    /** The finish reasons so far, for the server's log ("-" for a choice still open). */
    String finishes() {
        StringBuilder s = new StringBuilder();
        for (Finish f : finish) s.append(s.length() == 0 ? "" : ",").append(f == null ? "-" : f);
        return s.toString();
    }
}
