package calm4j.data;

import calm4j.engine.UserError;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Long texts in pieces of bounded size, so that memory stays bounded whatever the input: a tokenizer given a
 * 200 MB line at once needs gigabytes (and aborts the process), and a file read whole cannot be larger than the heap.
 *
 * <p>A piece ends just before a space that follows a non-space character, where a byte-level BPE pre-tokenizer (GPT-2's,
 * Llama 3's) splits anyway, so tokenizing the pieces one by one gives the tokens of the whole text. Only a stretch of
 * {@link #MAX_CHARS} characters with no such space (no words at all) is cut at its length, which may tokenize its
 * two sides differently there.
 */
final class TextPieces {
    /** At most this many characters per piece (about 1-4 MB of UTF-8). */
    static final int MAX_CHARS = 1 << 20;

    private TextPieces() {}

    /**
     * Where to end a piece of {@code s} when it is longer than {@code max}: the last index i in (max/2, max] with a
     * space at i and a non-space before it; else {@code max}, moved back one if it would split a surrogate pair.
     */
    static int cut(CharSequence s, int max) {
        for (int i = max; i > max / 2; i--) {
            if (s.charAt(i) == ' ' && !Character.isWhitespace(s.charAt(i - 1))) return i;
        }
        return Character.isHighSurrogate(s.charAt(max - 1)) ? max - 1 : max;
    }

    /** {@code text} in pieces of at most {@code max} characters, cut as {@link #cut} says. */
    static List<String> split(String text, int max) {
        List<String> pieces = new ArrayList<>();
        int at = 0;
        while (text.length() - at > max) {
            int end = at + cut(text.subSequence(at, text.length()), max);
            pieces.add(text.substring(at, end));
            at = end;
        }
        pieces.add(text.substring(at));
        return pieces;
    }

    /**
     * A text file read as a stream of pieces: UTF-8 decoded leniently (each malformed byte sequence becomes one
     * U+FFFD, counted), a NUL byte anywhere refused as binary with its byte offset.
     */
    static final class Reader implements AutoCloseable {
        private final Path file;
        private final InputStream in;
        private final int max;
        private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        private final ByteBuffer bytes = ByteBuffer.allocate(1 << 16);
        private final CharBuffer chars = CharBuffer.allocate(1 << 16);
        private final StringBuilder pending = new StringBuilder();
        private long offset; // bytes read so far
        private long replaced;
        private boolean eof;

        Reader(Path file, InputStream in, int max) {
            this.file = file;
            this.in = in;
            this.max = max;
            bytes.flip(); // empty, ready to be read from
        }

        /** The next piece, or null at the end; {@link #atEnd()} tells whether it was the last. */
        String next() throws IOException {
            while (!eof && pending.length() <= max) fill();
            if (pending.isEmpty()) return null;
            int end = pending.length() > max ? cut(pending, max) : pending.length();
            String piece = pending.substring(0, end);
            pending.delete(0, end);
            return piece;
        }

        /** Whether everything has been returned. */
        boolean atEnd() {
            return eof && pending.isEmpty();
        }

        /** Malformed UTF-8 sequences replaced so far. */
        long replaced() {
            return replaced;
        }

        private void fill() throws IOException {
            bytes.compact();
            int n = in.read(bytes.array(), bytes.position(), bytes.remaining());
            if (n > 0) {
                for (int i = 0; i < n; i++) {
                    if (bytes.array()[bytes.position() + i] == 0) {
                        throw new UserError("input " + file + " looks binary (a NUL byte at offset " + (offset + i)
                                + "): corpora must be text (.txt, .jsonl, .json or a .gz of one of them)");
                    }
                }
                bytes.position(bytes.position() + n);
                offset += n;
            }
            bytes.flip();
            if (n < 0) eof = true;
            while (true) {
                CoderResult r = decoder.decode(bytes, chars, eof);
                if (r.isError()) {
                    drain();
                    replaced++;
                    pending.append('\uFFFD');
                    bytes.position(bytes.position() + r.length());
                } else if (r.isOverflow()) {
                    drain();
                } else {
                    break; // underflow: more bytes are needed (or, at the end, none are left)
                }
            }
            if (eof) decoder.flush(chars);
            drain();
        }

        private void drain() {
            chars.flip();
            pending.append(chars);
            chars.clear();
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
