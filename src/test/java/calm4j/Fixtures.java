package calm4j;

import calm4j.data.CorpusPreparer;
import calm4j.data.Documents;
import calm4j.tokenize.BpeTrainer;
import calm4j.tokenize.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Small real-text corpora and tokenizers made on the fly, shared by the tests. */
public final class Fixtures {
    /**
     * Tiny models written by the CALM authors' own classes in the four layouts of their releases, with the outputs
     * their code computed (expected.json), from shared/fixtures/official-tiny; copied here so the suite is
     * self-contained.
     */
    public static final java.nio.file.Path OFFICIAL_TINY = java.nio.file.Path.of("src", "test", "resources",
            "official-tiny");

    private Fixtures() {}

    private static final String[] WORDS = ("the people of this nation have shown in the year past that our union is "
            + "strong and our economy grows while congress must act on taxes schools roads and the defense of "
            + "freedom at home and abroad we shall keep faith with those who serve").split(" ");

    /** {@code n} documents of plain English-like sentences, deterministic for the seed. */
    public static List<String> documents(int n, int sentencesPerDoc, long seed) {
        Random r = new Random(seed);
        List<String> docs = new ArrayList<>();
        for (int d = 0; d < n; d++) {
            StringBuilder sb = new StringBuilder();
            for (int s = 0; s < sentencesPerDoc; s++) {
                int len = 5 + r.nextInt(10);
                for (int w = 0; w < len; w++) {
                    String word = WORDS[r.nextInt(WORDS.length)];
                    sb.append(w == 0 ? Character.toUpperCase(word.charAt(0)) + word.substring(1) : " " + word);
                }
                sb.append(r.nextInt(5) == 0 ? "!\n" : ". ");
            }
            docs.add(sb.toString().trim());
        }
        return docs;
    }

    /** Writes each document to its own .txt file under {@code dir}. */
    public static Path writeTxt(Path dir, List<String> docs) throws IOException {
        Files.createDirectories(dir);
        for (int i = 0; i < docs.size(); i++) Files.writeString(dir.resolve(String.format("doc-%03d.txt", i)), docs.get(i));
        return dir;
    }

    public static Tokenizer tokenizer(Path dir, List<String> docs, int vocab) {
        BpeTrainer t = new BpeTrainer();
        docs.forEach(t::add);
        Path out = dir.resolve("tokenizer.json");
        BpeTrainer.write(t.train(vocab), out);
        return Tokenizer.load(out);
    }

    /** A prepared corpus of {@code train} + {@code val} generated documents, with a 300-token BPE. */
    public static Path corpus(Path dir, int train, int val, int sentences) throws IOException {
        List<String> trainDocs = documents(train, sentences, 1);
        List<String> valDocs = documents(val, sentences, 2);
        try (Tokenizer tok = tokenizer(dir, trainDocs, 300)) {
            Path out = dir.resolve("corpus");
            new CorpusPreparer(tok, 2, true).prepare(
                    Documents.of(List.of(writeTxt(dir.resolve("train"), trainDocs)), w -> {}),
                    new CorpusPreparer.ValInputs(Documents.of(List.of(writeTxt(dir.resolve("val"), valDocs)),
                            w -> {})), out);
            return out;
        }
    }
}
