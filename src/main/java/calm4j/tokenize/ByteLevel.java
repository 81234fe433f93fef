package calm4j.tokenize;

import java.nio.charset.StandardCharsets;

/**
 * The byte-to-character table of byte-level BPE (GPT-2's): every byte maps to one printable code point, so that a
 * token is a string and any UTF-8 text (or invalid byte run) is representable. Printable Latin-1 bytes map to
 * themselves; the other 68 bytes map to U+0100 onwards, in byte order.
 */
public final class ByteLevel {
    private static final char[] BYTE_TO_CHAR = new char[256];

    static {
        int next = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_TO_CHAR[b] = printable ? (char) b : (char) (256 + next++);
        }
    }

    private ByteLevel() {}

    public static char charOf(int unsignedByte) {
        return BYTE_TO_CHAR[unsignedByte];
    }

    /** The byte-level string of a piece of text: its UTF-8 bytes, one mapped character each. */
    public static String encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(out);
    }
}
