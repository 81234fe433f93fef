package calm4j.generate;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The text of a growing sequence of token ids, handed out in pieces as it becomes printable. A byte-level token may
 * end inside a UTF-8 character, which decodes as U+FFFD until its other bytes arrive; such a trailing character is
 * held back until then (or until the sequence ends).
 */
public final class TextStream {
    private final Function<int[], String> decode;
    private final List<Integer> tokens = new ArrayList<>();
    private int emitted; // characters of the decoded text already handed out

    public TextStream(Function<int[], String> decode) {
        this.decode = decode;
    }

    /** Appends {@code more} and returns the text that is new and printable ({@code last}: nothing is held back). */
    public String add(int[] more, boolean last) {
        for (int t : more) tokens.add(t);
        String text = text();
        int end = !last && text.endsWith("\uFFFD") ? text.length() - 1 : text.length();
        String piece = end > emitted ? text.substring(emitted, end) : "";
        emitted = Math.max(emitted, end);
        return piece;
    }

    /** The whole text so far. */
    public String text() {
        return decode.apply(tokens.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Tokens so far. */
    public int size() {
        return tokens.size();
    }
}
