package calm4j.tokenize;

import calm4j.Fixtures;
import calm4j.engine.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TokenizerTest {
    @TempDir
    static Path dir;

    static Tokenizer trained() {
        return Fixtures.tokenizer(dir, Fixtures.documents(40, 20, 7), 400);
    }

    @Test
    void trainedTokenizerHasTheRequestedVocabularyAndSpecialTokens() {
        try (Tokenizer t = trained()) {
            assertEquals(400, t.vocabSize());
            assertEquals(0, t.eosId());
            assertEquals(1, t.padId());
            assertEquals(2, t.maskId());
            assertArrayEquals(new int[] {0}, t.encode(BpeTrainer.EOS), "EOS text encodes to the EOS id");
        }
    }

    @Test
    void mergesCompressCommonWordsBelowOneTokenPerByte() {
        try (Tokenizer t = trained()) {
            String text = "the people of this nation have shown that our union is strong";
            assertTrue(t.encode(text).length < text.length() / 2, "learned merges cover frequent words");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
            "plain ascii text.",
            "Grüße aus Köln, ça va? Ελληνικά, русский, 日本語のテキスト, 한국어, עברית, العربية",
            "emoji 👩‍👩‍👧‍👦 🚀🔥 and flags 🇫🇷",
            "runs   of    spaces\t\ttabs\n\n\nnewlines \r\n and trailing   ",
            "control \u0000 \u0001 \u0007 \u001b[31m \u007f characters",
            "  leading spaces and <|endoftext|> inside text <|pad|>",
            ""})
    void anyTextRoundTrips(String text) {
        try (Tokenizer t = trained()) {
            assertEquals(text, t.decode(t.encode(text)));
        }
    }

    @Test
    void writtenFileIsAStandardTokenizerJson() throws Exception {
        try (Tokenizer t = trained()) {
            String json = Files.readString(t.path());
            assertTrue(json.contains("\"type\":\"BPE\"") && json.contains("\"type\":\"ByteLevel\""), json.substring(0, 200));
        }
    }

    @Test
    void vocabularySmallerThanTheByteAlphabetIsRefused() {
        BpeTrainer t = new BpeTrainer();
        t.add("some text");
        UserError e = assertThrows(UserError.class, () -> t.train(100));
        assertTrue(e.getMessage().contains("too small"), e.getMessage());
    }

    @Test
    void missingOrMalformedTokenizerFileGivesAClearError() throws Exception {
        assertTrue(assertThrows(UserError.class, () -> Tokenizer.load(dir.resolve("nope.json")))
                .getMessage().contains("does not exist"));
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"model\": {}}");
        assertTrue(assertThrows(UserError.class, () -> Tokenizer.load(bad)).getMessage().contains("model.vocab"));
    }

    @Test
    void trainingIsDeterministic() {
        List<String> docs = Fixtures.documents(10, 10, 3);
        BpeTrainer a = new BpeTrainer(), b = new BpeTrainer();
        docs.forEach(a::add);
        docs.forEach(b::add);
        BpeTrainer.Bpe x = a.train(350), y = b.train(350);
        assertEquals(x.vocab(), y.vocab());
    }
}
