package calm4j.data;

import calm4j.engine.UserError;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Consumer;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * Streams the documents of a corpus from text inputs, one at a time, so a corpus larger than memory can be read.
 *
 * <ul>
 *   <li>{@code .txt}: the whole file is one document;</li>
 *   <li>{@code .jsonl}: one document per line, its {@code text} field;</li>
 *   <li>{@code .json}: JSON Lines as above (the authors' WikiText document-level test file is JSON Lines named
 *       {@code .json}) or one JSON array of objects with {@code text}, told apart by the first character;</li>
 *   <li>{@code .gz} of any of these; a folder: every such file inside it, recursively, in name order.</li>
 * </ul>
 * Invalid UTF-8 is decoded leniently: each bad byte sequence becomes U+FFFD and the count is reported per file,
 * so a stray Latin-1 file never stops a long preparation. Text files are streamed, and documents longer than
 * {@link TextPieces#MAX_CHARS} characters come in pieces ({@link Document#last()}), so memory stays bounded. A file with a NUL byte anywhere is refused as binary, and
 * so is a JSON line with anything after its object.
 */
public final class Documents implements Iterable<Documents.Document> {
    /**
     * One document, or one piece of a long one: {@code source} names where it came from (file, and line for JSON
     * lines), {@code last} says whether this piece ends its document (a document longer than
     * {@link TextPieces#MAX_CHARS} characters comes in pieces, cut where the tokenizer splits anyway, so memory stays
     * bounded; pieces of one document share its source and are tokenized one by one, EOS after the last only).
     */
    public record Document(String source, String text, boolean last) {
        public Document(String source, String text) {
            this(source, text, true);
        }
    }

    /** The longest JSON line read (in characters): a longer one is refused before it fills the memory. */
    static final int MAX_LINE_CHARS = 64 << 20;

    /** Something worth telling the user about an input that was still read. */
    public record Warning(Path file, String message) {}

    private static final ObjectMapper JSON = new ObjectMapper();
    /** One JSON document per line, and nothing after it. */
    private static final ObjectReader LINE = JSON.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private final List<Path> files;
    private final Consumer<Warning> warnings;

    private Documents(List<Path> files, Consumer<Warning> warnings) {
        this.files = files;
        this.warnings = warnings;
    }

    /** The documents of {@code inputs}; each input is a file or a folder. Fails early on a missing input. */
    public static Documents of(List<Path> inputs, Consumer<Warning> warnings) {
        List<Path> files = new ArrayList<>();
        for (Path in : inputs) {
            if (Files.isDirectory(in)) {
                try (Stream<Path> walk = Files.walk(in)) {
                    walk.filter(Files::isRegularFile).filter(Documents::isCorpusFile).sorted().forEach(files::add);
                } catch (IOException e) {
                    throw new UserError("cannot list folder " + in + ": " + e.getMessage());
                }
            } else if (Files.isRegularFile(in)) {
                if (!isCorpusFile(in)) {
                    throw new UserError("input " + in + " is not .txt, .jsonl, .json or a .gz of one of them");
                }
                files.add(in);
            } else {
                throw new UserError("input " + in + " does not exist");
            }
        }
        if (files.isEmpty()) {
            throw new UserError("no .txt, .jsonl, .json or .gz files found in " + inputs + ": the corpus is empty");
        }
        return new Documents(files, warnings);
    }

    static boolean isCorpusFile(Path p) {
        String n = p.getFileName().toString().toLowerCase();
        if (n.endsWith(".gz")) n = n.substring(0, n.length() - 3);
        return n.endsWith(".txt") || n.endsWith(".jsonl") || n.endsWith(".json");
    }

    public List<Path> files() {
        return files;
    }

    @Override
    public Iterator<Document> iterator() {
        return new Iterator<>() {
            int next = 0;
            Iterator<Document> current = Collections.emptyIterator();

            @Override
            public boolean hasNext() {
                while (!current.hasNext() && next < files.size()) current = open(files.get(next++));
                return current.hasNext();
            }

            @Override
            public Document next() {
                if (!hasNext()) throw new NoSuchElementException();
                return current.next();
            }
        };
    }

    private Iterator<Document> open(Path file) {
        String name = file.getFileName().toString().toLowerCase();
        if (name.endsWith(".gz")) name = name.substring(0, name.length() - 3);
        try {
            if (name.endsWith(".json") && startsWithArray(file)) return jsonArray(file);
            if (name.endsWith(".json") || name.endsWith(".jsonl")) return jsonLines(file);
            return textFile(file);
        } catch (IOException e) {
            throw readError(file, e);
        }
    }

    /** A text file as one document, streamed in pieces; a blank file is no document. */
    private Iterator<Document> textFile(Path file) throws IOException {
        TextPieces.Reader reader = new TextPieces.Reader(file, input(file), TextPieces.MAX_CHARS);
        return new Iterator<>() {
            Document pending;
            boolean started, done;

            @Override
            public boolean hasNext() {
                if (pending != null || done) return pending != null;
                try {
                    String piece = reader.next();
                    boolean last = reader.atEnd();
                    if (piece == null || (!started && last && piece.isBlank())) {
                        finish();
                        return false;
                    }
                    started = true;
                    pending = new Document(file.toString(), piece, last);
                    if (last) finish();
                    return true;
                } catch (IOException e) {
                    closeQuietly();
                    throw readError(file, e);
                } catch (RuntimeException e) {
                    closeQuietly();
                    throw e;
                }
            }

            private void finish() throws IOException {
                done = true;
                reader.close();
                if (reader.replaced() > 0) {
                    warnings.accept(new Warning(file, "invalid UTF-8: " + reader.replaced()
                            + " byte sequence(s) replaced by U+FFFD (is the file Latin-1?)"));
                }
            }

            private void closeQuietly() {
                try {
                    reader.close();
                } catch (IOException ignored) {
                    // the error being thrown says what happened
                }
            }

            @Override
            public Document next() {
                if (!hasNext()) throw new NoSuchElementException();
                Document d = pending;
                pending = null;
                return d;
            }
        };
    }

    /** A document read whole (a JSON text field), in pieces if it is long. */
    private static Iterator<Document> pieces(String source, String text) {
        List<String> parts = TextPieces.split(text, TextPieces.MAX_CHARS);
        List<Document> docs = new ArrayList<>(parts.size());
        for (int i = 0; i < parts.size(); i++) docs.add(new Document(source, parts.get(i), i == parts.size() - 1));
        return docs.iterator();
    }

    /** The same clear error for any input that cannot be read to its end, compressed or not. */
    static UserError readError(Path file, IOException e) {
        boolean truncated = e instanceof EOFException || String.valueOf(e.getMessage()).contains("end of");
        return new UserError("cannot read " + file + ": " + (e.getMessage() != null ? e.getMessage()
                : e.getClass().getSimpleName()) + (truncated ? " (the file ends early: is it truncated? download or "
                + "copy it again)" : ""));
    }

    /** Whether the first character that is not white space (or a byte-order mark) is '['. */
    private static boolean startsWithArray(Path file) throws IOException {
        try (InputStream in = input(file)) {
            for (int b; (b = in.read()) >= 0; ) {
                if (b == '[') return true;
                if (!Character.isWhitespace(b) && b != 0xEF && b != 0xBB && b != 0xBF) return false;
            }
            return false;
        }
    }

    private static InputStream input(Path file) throws IOException {
        InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
        if (!file.getFileName().toString().toLowerCase().endsWith(".gz")) return raw;
        try {
            return new GZIPInputStream(raw, 1 << 16);
        } catch (IOException e) {
            raw.close();
            throw new UserError("input " + file + " ends in .gz but is not gzip data: " + e.getMessage());
        }
    }

    private Iterator<Document> jsonLines(Path file) throws IOException {
        CharsetDecoder lenient = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
        BufferedReader reader = new BufferedReader(new InputStreamReader(input(file), lenient), 1 << 16);
        return new Iterator<>() {
            long lineNo = 0;
            Iterator<Document> pending = Collections.emptyIterator();
            boolean done;

            @Override
            public boolean hasNext() {
                try {
                    while (!pending.hasNext() && !done) {
                        String line = boundedLine(reader, file, lineNo + 1);
                        lineNo++;
                        if (line == null) {
                            done = true;
                            reader.close();
                            break;
                        }
                        if (line.isBlank()) continue;
                        if (line.indexOf('\0') >= 0) {
                            reader.close();
                            throw new UserError("input " + file + " line " + lineNo + " has a NUL byte: is it binary?");
                        }
                        Document d = parse(line);
                        if (!d.text().isBlank()) pending = pieces(d.source(), d.text());
                    }
                    return pending.hasNext();
                } catch (IOException e) {
                    try {
                        reader.close();
                    } catch (IOException ignored) {
                        // reported below
                    }
                    throw readError(file, e);
                }
            }

            private Document parse(String line) throws IOException {
                JsonNode node;
                try {
                    node = LINE.readTree(line);
                } catch (IOException e) {
                    reader.close();
                    throw new UserError("input " + file + " line " + lineNo + " is not valid JSON: "
                            + e.getMessage().split("\n")[0]);
                }
                JsonNode text = node == null ? null : node.get("text");
                if (text == null || !text.isTextual()) {
                    reader.close();
                    throw new UserError("input " + file + " line " + lineNo
                            + " has no string field \"text\": each JSON line must be {\"text\": \"...\"}");
                }
                return document(file, file + ":" + lineNo, "line " + lineNo, text.asText());
            }

            @Override
            public Document next() {
                if (!hasNext()) throw new NoSuchElementException();
                return pending.next();
            }
        };
    }

    /** The next line of {@code reader} without its terminator, or null at the end; refused past MAX_LINE_CHARS. */
    static String boundedLine(BufferedReader reader, Path file, long lineNo) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int c; (c = reader.read()) >= 0; ) {
            if (c == '\n') return sb.toString();
            if (c == '\r') {
                reader.mark(1);
                if (reader.read() != '\n') reader.reset();
                return sb.toString();
            }
            if (sb.length() == MAX_LINE_CHARS) {
                reader.close();
                throw new UserError("input " + file + " line " + lineNo + " is longer than " + MAX_LINE_CHARS
                        + " characters: a JSON line holds one document; split the document into several lines");
            }
            sb.append((char) c);
        }
        return sb.isEmpty() ? null : sb.toString();
    }

    private Document document(Path file, String source, String where, String text) {
        if (text.indexOf('\0') >= 0) {
            throw new UserError("input " + file + " " + where + " has a NUL character: is it binary?");
        }
        if (text.indexOf('\uFFFD') >= 0) {
            warnings.accept(new Warning(file, where + ": invalid UTF-8 replaced by U+FFFD"));
        }
        return new Document(source, text);
    }

    /** A file holding one JSON array of {"text": ...} objects, read one element at a time. */
    private Iterator<Document> jsonArray(Path file) throws IOException {
        CharsetDecoder lenient = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
        JsonParser parser = JSON.getFactory().createParser(new BufferedReader(new InputStreamReader(input(file),
                lenient), 1 << 16));
        if (parser.nextToken() != JsonToken.START_ARRAY) {
            parser.close();
            throw new UserError("input " + file + " is not a JSON array");
        }
        return new Iterator<>() {
            long index = 0;
            Iterator<Document> pending = Collections.emptyIterator();
            boolean done;

            @Override
            public boolean hasNext() {
                try {
                    while (!pending.hasNext() && !done) {
                        JsonToken t = parser.nextToken();
                        if (t == JsonToken.END_ARRAY || t == null) {
                            if (t == null) throw new UserError("input " + file + " ends inside its JSON array");
                            if (parser.nextToken() != null) {
                                throw new UserError("input " + file + " has something after its JSON array");
                            }
                            done = true;
                            parser.close();
                            break;
                        }
                        JsonNode node = parser.readValueAsTree();
                        JsonNode text = node == null ? null : node.get("text");
                        if (text == null || !text.isTextual()) {
                            throw new UserError("input " + file + " element " + index + " has no string field "
                                    + "\"text\": the array must hold {\"text\": \"...\"} objects");
                        }
                        Document d = document(file, file + "[" + index + "]", "element " + index, text.asText());
                        index++;
                        if (!d.text().isBlank()) pending = pieces(d.source(), d.text());
                    }
                    return pending.hasNext();
                } catch (JsonProcessingException e) {
                    throw new UserError("input " + file + " element " + index + " is not valid JSON: "
                            + e.getOriginalMessage());
                } catch (IOException e) {
                    throw readError(file, e);
                }
            }

            @Override
            public Document next() {
                if (!hasNext()) throw new NoSuchElementException();
                return pending.next();
            }
        };
    }
}
