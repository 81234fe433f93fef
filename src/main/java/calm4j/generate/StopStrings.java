package calm4j.generate;

import calm4j.engine.UserError;

import java.util.List;

/**
 * OpenAI's {@code stop}: text is released as it is decoded, except a tail that could still turn into a stop string
 * (a stop string may span chunks and tokens); once one appears, everything from it on is dropped and the sequence
 * ends. One instance per sequence.
 */
public final class StopStrings {
    public static final int MAX = 4;

    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean stopped;

    public StopStrings(List<String> stops) {
        for (String s : stops) if (s.isEmpty()) throw new UserError("a stop string must not be empty");
        this.stops = List.copyOf(stops);
    }

    /** Feeds newly decoded text; returns the part that is now safe to send. */
    public String add(String text) {
        if (stopped) return "";
        held.append(text);
        int at = -1;
        for (String s : stops) {
            int i = held.indexOf(s);
            if (i >= 0 && (at < 0 || i < at)) at = i;
        }
        if (at >= 0) {
            stopped = true;
            String out = held.substring(0, at);
            held.setLength(0);
            return out;
        }
        int keep = 0; // the longest tail of the held text that begins some stop string
        for (String s : stops) {
            for (int len = Math.min(s.length() - 1, held.length()); len > keep; len--) {
                if (held.toString().regionMatches(held.length() - len, s, 0, len)) {
                    keep = len;
                    break;
                }
            }
        }
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    /** The text still held back, once the sequence has ended without a stop string. */
    public String flush() {
        String out = stopped ? "" : held.toString();
        held.setLength(0);
        return out;
    }

    /** Whether a stop string has appeared. */
    public boolean stopped() {
        return stopped;
    }
}
