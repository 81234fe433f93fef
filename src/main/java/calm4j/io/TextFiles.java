package calm4j.io;

import calm4j.engine.UserError;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/** Text files a user hands over (prompts, text to encode): UTF-8 or a clear refusal. */
public final class TextFiles {
    private TextFiles() {}

    /**
     * The content of {@code file}, refusing bytes that are not UTF-8 with the offset where they start (a corpus's
     * documents replace such bytes and warn instead; a prompt is short enough to fix).
     */
    public static String readUtf8(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new UserError(file + " does not exist");
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
        CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult r = strict.decode(in, out, true);
        if (r.isError()) {
            throw new UserError(file + " is not valid UTF-8 (bytes at offset " + in.position() + "): save it as "
                    + "UTF-8");
        }
        return out.flip().toString();
    }

    /** The non-blank lines of a UTF-8 file, one {@code what} each (a prompt, say); a file without one is an error. */
    public static List<String> nonBlankLines(Path file, String what) {
        List<String> lines = readUtf8(file).lines().filter(l -> !l.isBlank()).toList();
        if (lines.isEmpty()) throw new UserError(file + " has no " + what + ": give one per line");
        return lines;
    }
}
