package calm4j.data;

import calm4j.Fixtures;
import calm4j.engine.UserError;
import calm4j.tokenize.Tokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

class CorpusPreparerTest {
    @TempDir
    static Path dir;
    static Tokenizer tok;
    static List<String> docs;

    @BeforeAll
    static void setUp() {
        docs = Fixtures.documents(30, 8, 11);
        tok = Fixtures.tokenizer(dir, docs, 320);
    }

    static List<Documents.Warning> warnings = new ArrayList<>();

    static Documents of(Path... inputs) {
        return Documents.of(List.of(inputs), warnings::add);
    }

    @Test
    void preparedTokensDecodeBackToTheDocumentsWithEosAppended() throws IOException {
        Path in = Fixtures.writeTxt(dir.resolve("t1"), docs.subList(0, 20));
        Path val = Fixtures.writeTxt(dir.resolve("v1"), docs.subList(20, 30));
        Path out = dir.resolve("c1");
        new CorpusPreparer(tok, 2, true).prepare(of(in), new CorpusPreparer.ValInputs(of(val)), out);
        Manifest m = Manifest.read(out);
        assertEquals("uint16", m.dtype());
        assertEquals(20, m.train().documents());
        assertEquals(10, m.val().documents());
        assertEquals(tok.sha256(), m.tokenizerSha256());
        TokenStore s = TokenStore.open(out, "train");
        for (int d = 0; d < 20; d++) {
            int len = (int) (s.docEnd(d) - s.docStart(d));
            long[] ids = new long[len];
            s.read(s.docStart(d), ids, 0, len);
            assertEquals(tok.eosId(), ids[len - 1], "every document ends with EOS");
            int[] body = new int[len - 1];
            for (int i = 0; i < body.length; i++) body[i] = (int) ids[i];
            assertEquals(docs.get(d), tok.decode(body));
        }
        assertTrue(Files.exists(out.resolve("tokenizer.json")), "the corpus carries its tokenizer");
    }

    @Test
    void jsonLinesAndGzipAreReadAsDocuments() throws IOException {
        Path jsonl = dir.resolve("docs.jsonl.gz");
        try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(jsonl))) {
            for (String d : docs) {
                o.write(("{\"text\": " + new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(d)
                        + ", \"id\": 1}\n").getBytes(StandardCharsets.UTF_8));
            }
        }
        List<String> read = new ArrayList<>();
        of(jsonl).forEach(d -> read.add(d.text()));
        assertEquals(docs, read);
    }

    @Test
    void valFractionHoldsOutWholeDocumentsStably() throws IOException {
        Path in = Fixtures.writeTxt(dir.resolve("t2"), docs);
        Path a = dir.resolve("c2a"), b = dir.resolve("c2b");
        new CorpusPreparer(tok, 1, true).prepare(of(in), new CorpusPreparer.ValFraction(0.3), a);
        new CorpusPreparer(tok, 2, true).prepare(of(in), new CorpusPreparer.ValFraction(0.3), b);
        Manifest ma = Manifest.read(a), mb = Manifest.read(b);
        assertEquals(30, ma.train().documents() + ma.val().documents());
        assertTrue(ma.val().documents() > 0 && ma.train().documents() > 0);
        assertEquals(ma, mb, "the same split and tokens for any thread count");
        assertArrayEquals(Files.readAllBytes(a.resolve("train/tokens-00000.bin")),
                Files.readAllBytes(b.resolve("train/tokens-00000.bin")));
    }

    @Test
    void invalidUtf8IsDecodedLenientlyAndReported() throws IOException {
        Path f = dir.resolve("latin1.txt");
        Files.write(f, "caf\u00e9 cr\u00e8me".getBytes(StandardCharsets.ISO_8859_1));
        warnings.clear();
        List<String> texts = new ArrayList<>();
        of(f).forEach(d -> texts.add(d.text()));
        assertEquals("caf\uFFFD cr\uFFFDme", texts.get(0));
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).message().contains("2 byte sequence(s) replaced"), warnings.get(0).message());
    }

    @Test
    void binaryFilesEmptyCorporaAndJsonLinesWithoutTextAreRefused() throws IOException {
        Path bin = dir.resolve("bin.txt");
        Files.write(bin, new byte[] {'a', 0, 1, 2});
        assertTrue(assertThrows(UserError.class, () -> of(bin).iterator().hasNext()).getMessage()
                .contains("looks binary"));
        Path emptyDir = Files.createDirectories(dir.resolve("empty"));
        assertTrue(assertThrows(UserError.class, () -> of(emptyDir)).getMessage().contains("empty"));
        Path noText = dir.resolve("notext.jsonl");
        Files.writeString(noText, "{\"text\": \"fine\"}\n{\"body\": \"oops\"}\n");
        UserError e = assertThrows(UserError.class, () -> of(noText).forEach(d -> {}));
        assertTrue(e.getMessage().contains("line 2") && e.getMessage().contains("\"text\""), e.getMessage());
        Path blank = dir.resolve("blank.txt");
        Files.writeString(blank, "   \n");
        Path out = dir.resolve("c-blank");
        assertThrows(UserError.class, () -> new CorpusPreparer(tok, 1, true)
                .prepare(of(blank), new CorpusPreparer.ValFraction(0.5), out));
        assertFalse(Files.exists(out));
    }

    @Test
    void aFailedRunLeavesNoOutputAndNoPartialFolder() throws IOException {
        Path in = Fixtures.writeTxt(dir.resolve("t3"), docs.subList(0, 5));
        Path bad = dir.resolve("t3/zz-bad.jsonl");
        Files.writeString(bad, "{\"text\": \"ok\"}\nnot json\n");
        Path out = dir.resolve("c3");
        assertThrows(UserError.class, () -> new CorpusPreparer(tok, 2, true)
                .prepare(of(in), new CorpusPreparer.ValFraction(0.5), out));
        assertFalse(Files.exists(out));
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith("c3.partial")));
        }
    }

    @Test
    void anExistingOutputIsNeverOverwritten() throws IOException {
        Path out = Files.createDirectories(dir.resolve("c4"));
        Files.writeString(out.resolve("keep.txt"), "precious");
        Path in = Fixtures.writeTxt(dir.resolve("t4"), docs.subList(0, 5));
        assertTrue(assertThrows(UserError.class, () -> new CorpusPreparer(tok, 1, true)
                .prepare(of(in), new CorpusPreparer.ValFraction(0.5), out)).getMessage().contains("already exists"));
        assertEquals("precious", Files.readString(out.resolve("keep.txt")));
    }

    @Test
    void aTokenizerThatDoesNotMatchTheCorpusIsRefused() throws IOException {
        Path in = Fixtures.writeTxt(dir.resolve("t5"), docs);
        Path out = dir.resolve("c5");
        new CorpusPreparer(tok, 1, true).prepare(of(in), new CorpusPreparer.ValFraction(0.3), out);
        Path other = Files.createDirectories(dir.resolve("other"));
        try (Tokenizer t2 = Fixtures.tokenizer(other, Fixtures.documents(5, 5, 99), 300)) {
            UserError e = assertThrows(UserError.class, () -> Manifest.read(out).requireTokenizer(t2.sha256(), "x"));
            assertTrue(e.getMessage().contains("different tokenizer"), e.getMessage());
        }
    }

    @Test
    void aTruncatedShardIsDetected() throws IOException {
        Path in = Fixtures.writeTxt(dir.resolve("t6"), docs);
        Path out = dir.resolve("c6");
        new CorpusPreparer(tok, 1, true).prepare(of(in), new CorpusPreparer.ValFraction(0.3), out);
        Path shard = out.resolve("train/tokens-00000.bin");
        byte[] b = Files.readAllBytes(shard);
        Files.write(shard, java.util.Arrays.copyOf(b, b.length - 10));
        assertTrue(assertThrows(UserError.class, () -> TokenStore.open(out, "train")).getMessage()
                .contains("truncated"));
    }

    /** Every document of {@code inputs}, read to the end. */
    static List<String> texts(Path... inputs) {
        List<String> out = new ArrayList<>();
        for (Documents.Document d : of(inputs)) out.add(d.text());
        return out;
    }

    @Test
    void aJsonFileHoldingJsonLinesOrAnArrayIsReadByItsContent() throws IOException {
        Path lines = Files.writeString(dir.resolve("wikitext_document_level-test.json"),
                "{\"text\": \"first doc\"}\n{\"text\": \"second doc\"}\n");
        assertEquals(List.of("first doc", "second doc"), texts(lines));
        Path array = Files.writeString(dir.resolve("array.json"),
                " [ {\"text\": \"one\"}, {\"text\": \"\"}, {\"text\": \"two\", \"id\": 7} ] ");
        assertEquals(List.of("one", "two"), texts(array));
        Path gz = dir.resolve("array.json.gz");
        try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(gz))) {
            o.write(Files.readAllBytes(array));
        }
        assertEquals(List.of("one", "two"), texts(gz));
        Path badElement = Files.writeString(dir.resolve("bad-array.json"), "[{\"text\": \"a\"}, {\"title\": 1}]");
        UserError e = assertThrows(UserError.class, () -> texts(badElement));
        assertTrue(e.getMessage().contains("element 1 has no string field \"text\""), e.getMessage());
    }

    @Test
    void aTruncatedGzipGivesTheSameClearErrorForTextAndJsonLines() throws IOException {
        for (String name : List.of("cut.txt.gz", "cut.jsonl.gz")) {
            Path gz = dir.resolve(name);
            try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(gz))) {
                for (int i = 0; i < 2000; i++) o.write(("{\"text\": \"line " + i + " of a long file\"}\n")
                        .getBytes(StandardCharsets.UTF_8));
            }
            byte[] whole = Files.readAllBytes(gz);
            Files.write(gz, java.util.Arrays.copyOf(whole, whole.length / 2));
            UserError e = assertThrows(UserError.class, () -> texts(gz), name);
            assertTrue(e.getMessage().startsWith("cannot read " + gz) && e.getMessage().contains("truncated"),
                    e.getMessage());
        }
    }

    @Test
    void aJsonLineWithSomethingAfterItsObjectIsRefusedWithItsLineNumber() throws IOException {
        Path f = Files.writeString(dir.resolve("trailing.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \"x\"} junk\n");
        UserError e = assertThrows(UserError.class, () -> texts(f));
        assertTrue(e.getMessage().contains("line 2 is not valid JSON"), e.getMessage());
    }

    @Test
    void aNulByteAnywhereInATextFileIsRefused() throws IOException {
        byte[] bytes = "a".repeat(200_000).getBytes(StandardCharsets.UTF_8);
        bytes[150_000] = 0; // well past the first 64 KiB
        Path f = Files.write(dir.resolve("late-nul.txt"), bytes);
        UserError e = assertThrows(UserError.class, () -> texts(f));
        assertTrue(e.getMessage().contains("NUL byte at offset 150000"), e.getMessage());
    }

    @Test
    void aValFractionThatHoldsOutEveryDocumentSaysSo() throws IOException {
        CorpusPreparer.ValFraction half = new CorpusPreparer.ValFraction(0.5);
        Path one = null;
        for (int i = 0; one == null; i++) { // a folder whose one document the hash holds out at 0.5
            Path candidate = dir.resolve("one-doc-" + i);
            if (half.isVal(candidate.resolve("doc-000.txt").toString())) one = candidate;
        }
        Fixtures.writeTxt(one, docs.subList(0, 1));
        Path input = one;
        UserError e = assertThrows(UserError.class, () -> new CorpusPreparer(tok, 1, true).prepare(of(input), half,
                dir.resolve("c-one")));
        assertTrue(e.getMessage().contains("all 1 document(s) were held out"), e.getMessage());
    }

    @Test
    void partialFoldersLeftByAKilledPreparationAreRemovedOnTheNextRun() throws IOException {
        Path out = dir.resolve("c-partial");
        Path dead = Files.createDirectories(dir.resolve("c-partial.partial-999999999"));
        Files.writeString(dead.resolve("manifest.json"), "{}");
        Path live = Files.createDirectories(dir.resolve("c-partial.partial-1")); // process 1 is always alive
        Path in = Fixtures.writeTxt(dir.resolve("t-partial"), docs.subList(0, 5));
        Path val = Fixtures.writeTxt(dir.resolve("v-partial"), docs.subList(5, 7));
        new CorpusPreparer(tok, 1, true).prepare(of(in), new CorpusPreparer.ValInputs(of(val)), out);
        assertFalse(Files.exists(dead), "the dead process's folder is gone");
        assertTrue(Files.isRegularFile(out.resolve(Manifest.FILE)));
        assertTrue(Files.exists(live), "a folder of a running process is left alone");
    }

    @Test
    void aDocumentLongerThanAPieceIsTokenizedInPiecesAsOneDocumentWithTheWholeTextsTokens() throws IOException {
        // 3 MiB of prose on one line, no newline: three pieces or more, one document, one EOS
        StringBuilder sb = new StringBuilder();
        for (int i = 0; sb.length() < 3 * TextPieces.MAX_CHARS; i++) sb.append(docs.get(i % docs.size())).append(' ');
        String text = sb.toString().strip();
        Path in = Files.writeString(Files.createDirectories(dir.resolve("t-long")).resolve("long.txt"), text);
        List<Documents.Document> pieces = new ArrayList<>();
        of(in).forEach(pieces::add);
        assertTrue(pieces.size() >= 3, pieces.size() + " pieces");
        assertTrue(pieces.stream().allMatch(d -> d.text().length() <= TextPieces.MAX_CHARS));
        assertTrue(pieces.subList(0, pieces.size() - 1).stream().noneMatch(Documents.Document::last));
        assertTrue(pieces.get(pieces.size() - 1).last());
        assertEquals(text, String.join("", pieces.stream().map(Documents.Document::text).toList()));

        Path val = Fixtures.writeTxt(dir.resolve("v-long"), docs.subList(0, 2));
        Path out = dir.resolve("c-long");
        new CorpusPreparer(tok, 2, true).prepare(of(in), new CorpusPreparer.ValInputs(of(val)), out);
        Manifest m = Manifest.read(out);
        assertEquals(1, m.train().documents());
        int[] whole = tok.encode(text);
        assertEquals(whole.length + 1, m.train().tokens(), "the pieces' tokens are the whole text's, and one EOS");
        TokenStore st = TokenStore.open(out, "train");
        long[] ids = new long[whole.length + 1];
        st.read(0, ids, 0, ids.length);
        for (int i = 0; i < whole.length; i++) assertEquals(whole[i], ids[i], "token " + i);
        assertEquals(tok.eosId(), ids[whole.length]);
    }

    @Test
    void aHugeCompressedTextIsStreamedInBoundedPieces() throws IOException {
        // 256 MiB of text in a .gz of under a megabyte: read piece by piece, never whole
        Path gz = Files.createDirectories(dir.resolve("t-gz")).resolve("big.txt.gz");
        byte[] line = (docs.get(0) + "\n").getBytes(StandardCharsets.UTF_8);
        long total = 0;
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(gz), 1 << 16)) {
            byte[] block = new byte[1 << 20];
            for (int i = 0; i < block.length; i++) block[i] = line[i % line.length];
            for (int i = 0; i < 256; i++) {
                out.write(block);
                total += block.length;
            }
        }
        assertTrue(Files.size(gz) < (4 << 20), Files.size(gz) + " bytes");
        long chars = 0, pieces = 0;
        for (Documents.Document d : of(gz)) {
            assertTrue(d.text().length() <= TextPieces.MAX_CHARS);
            chars += d.text().length();
            pieces++;
        }
        assertEquals(total, chars, "every character, ASCII text");
        assertTrue(pieces >= 256);
    }

    @Test
    void piecesAreCutBeforeASpaceThatFollowsAWordOrAtTheLimitWithoutSplittingASurrogatePair() {
        assertEquals(List.of("one two", " three", " four"), TextPieces.split("one two three four", 7));
        String noSpaces = "a".repeat(9) + "\uD83D\uDE00" + "b";
        List<String> cut = TextPieces.split(noSpaces, 10);
        assertEquals(noSpaces, String.join("", cut));
        assertEquals("a".repeat(9), cut.get(0), "the emoji's surrogate pair stays whole");
    }

    @Test
    void anEmptyTrainingInputWithValidationInputsSaysWhichInputIsEmpty() throws IOException {
        Path emptyTrain = Files.createDirectories(dir.resolve("t-empty"));
        Files.writeString(emptyTrain.resolve("blank.txt"), "  \n");
        Path val = Fixtures.writeTxt(dir.resolve("v-empty"), docs.subList(0, 2));
        UserError e = assertThrows(UserError.class, () -> new CorpusPreparer(tok, 1, true).prepare(of(emptyTrain),
                new CorpusPreparer.ValInputs(of(val)), dir.resolve("c-empty")));
        assertTrue(e.getMessage().contains("training inputs hold no non-blank documents")
                && !e.getMessage().contains("validation fraction"), e.getMessage());
    }
}
