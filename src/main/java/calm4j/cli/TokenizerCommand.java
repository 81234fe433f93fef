package calm4j.cli;

import calm4j.data.BuiltinCorpus;
import calm4j.tokenize.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "tokenizer", mixinStandardHelpOptions = true, description = "Train or try a tokenizer.",
        subcommands = {TokenizerCommand.Train.class, TokenizerCommand.Encode.class})
final class TokenizerCommand {

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Train a byte-level BPE on a corpus and write a Hugging Face tokenizer.json "
                    + "with EOS, PAD and MASK special tokens.")
    static final class Train implements Callable<Integer> {
        @Option(names = "--input", required = true, arity = "1..*",
                description = ".txt/.jsonl files (or .gz of them), or folders of them")
        List<Path> inputs;

        @Option(names = "--vocab-size", defaultValue = "4096")
        int vocabSize;

        @Option(names = "--out", required = true, description = "the tokenizer.json to write")
        Path out;

        @Option(names = "--max-bytes", defaultValue = "200000000", description = "learn merges from at most this "
                + "much text")
        long maxBytes;

        @Override
        public Integer call() {
            try (Tokenizer tok = BuiltinCorpus.trainTokenizer(inputs, vocabSize, maxBytes, out)) {
                System.out.println("wrote " + out + ": " + tok.describe());
            }
            return 0;
        }
    }

    @Command(name = "encode", mixinStandardHelpOptions = true, description = "Print the token ids of a text.")
    static final class Encode implements Callable<Integer> {
        @Option(names = "--tokenizer", required = true)
        Path tokenizer;

        @Parameters(paramLabel = "TEXT")
        String text;

        @Override
        public Integer call() {
            try (Tokenizer tok = Tokenizer.load(tokenizer)) {
                int[] ids = tok.encode(text);
                System.out.println(Arrays.toString(ids));
                System.out.println(ids.length + " tokens; decodes back " + (tok.decode(ids).equals(text)
                        ? "exactly" : "DIFFERENTLY"));
            }
            return 0;
        }
    }
}
