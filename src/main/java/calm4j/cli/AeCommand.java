package calm4j.cli;

import calm4j.app.AutoencoderRun;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.io.Npy;
import calm4j.io.TextFiles;
import calm4j.report.Summaries;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "ae", mixinStandardHelpOptions = true, description = "The chunk autoencoder: K tokens <-> one vector.",
        subcommands = {AeCommand.Train.class, AeCommand.Eval.class, AeCommand.Encode.class, AeCommand.Decode.class})
final class AeCommand {
    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Train (or resume) a chunk autoencoder on a prepared corpus.")
    static final class Train implements Callable<Integer> {
        @Option(names = "--init", description = "fine-tune: start from this autoencoder run's weights (an imported "
                + "release or a calm4j run) with a fresh optimizer and schedule, and its tokenizer")
        Path init;

        @Mixin
        TrainOptions options;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            return options.run(engine, "autoencoder", (job, dist) -> init != null
                    ? AutoencoderRun.fineTune(init, job, dist) : AutoencoderRun.train(job, dist));
        }
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Held-out reconstruction accuracy, robustness to noise on z, and active latent dimensions.")
    static final class Eval implements Callable<Integer> {
        @Option(names = "--ckpt", required = true, description = "an autoencoder run folder")
        Path run;

        @Option(names = "--data", required = true, description = "a prepared corpus (its val split is used)")
        Path data;

        @Option(names = "--batches", defaultValue = "0", description = "batches of 1024 chunks (0: all)")
        long batches;

        @Option(names = "--kl-per-dim", description = "print every dimension's KL")
        boolean klPerDim;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            AutoencoderRun ae = AutoencoderRun.load(run);
            System.out.println(Summaries.autoencoder(ae, data, ae.evaluate(data, batches), klPerDim));
            return 0;
        }
    }

    @Command(name = "encode", mixinStandardHelpOptions = true,
            description = "Text -> chunks of K tokens -> latent vectors (posterior mean and sigma), as JSON or .npy.")
    static final class Encode implements Callable<Integer> {
        @Option(names = "--ckpt", required = true, description = "an autoencoder run folder")
        Path run;

        @Option(names = "--text", description = "the text (or --input)")
        String text;

        @Option(names = "--input", description = "a UTF-8 text file")
        Path input;

        @Option(names = "--out", description = "a .json or .npy file (default: JSON on stdout); .npy holds the "
                + "means [chunks, l]")
        Path out;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() throws Exception {
            engine.engine();
            if ((text == null) == (input == null)) throw new UserError("give exactly one of --text and --input");
            String t = text != null ? text : TextFiles.readUtf8(input);
            AutoencoderRun.Encoding enc = AutoencoderRun.load(run).encode(t);
            System.out.println(out != null ? enc.writeTo(out) : Configs.JSON.writeValueAsString(enc.json()));
            return 0;
        }
    }

    @Command(name = "decode", mixinStandardHelpOptions = true,
            description = "Latent vectors (JSON from 'ae encode', using \"mu\", or .npy [chunks, l]) -> tokens -> "
                    + "text.")
    static final class Decode implements Callable<Integer> {
        @Option(names = "--ckpt", required = true, description = "an autoencoder run folder")
        Path run;

        @Option(names = "--input", required = true, description = "a .json or .npy file")
        Path input;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() throws Exception {
            engine.engine();
            AutoencoderRun ae = AutoencoderRun.load(run);
            Npy.Matrix latents = AutoencoderRun.readLatents(input, ae.model().config().latentSize());
            System.out.println(ae.decode(latents, input.toString()));
            return 0;
        }
    }
}
