package calm4j.cli;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.AutoencoderEval;
import calm4j.app.AutoencoderRun;
import calm4j.app.TrainingJob;
import calm4j.engine.Configs;
import calm4j.engine.UserError;
import calm4j.io.Npy;
import calm4j.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
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
            TrainingJob job = options.job(engine.quiet);
            Trainer.Summary s = options.runAsRank(engine, dist -> init != null
                    ? AutoencoderRun.fineTune(init, job, dist) : AutoencoderRun.train(job, dist));
            if (s == null) return 0; // another rank reports
            options.report("autoencoder", s, "");
            return 0;
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
            print(ae, data, ae.evaluate(data, batches), klPerDim);
            return 0;
        }

        static void print(AutoencoderRun ae, Path data, AutoencoderEval.Result r, boolean klPerDim) {
            AutoencoderConfig c = ae.model().config();
            System.out.printf("autoencoder %s (step %d) on %s val: %,d chunks, %,d tokens%n", ae.dir(), ae.step(), data,
                    r.chunks(), r.tokens());
            System.out.printf("  token accuracy        %.4f%%%n", 100 * r.tokenAccuracy());
            System.out.printf("  chunk exact match     %.4f%%%n", 100 * r.chunkExactMatch());
            for (int i = 0; i < AutoencoderEval.NOISE_SIGMAS.length; i++) {
                System.out.printf("  accuracy, sigma=%.1f   %.4f%%%n", AutoencoderEval.NOISE_SIGMAS[i],
                        100 * r.noisyAccuracy()[i]);
            }
            System.out.printf("  active latent dims    %d of %d (mean KL > %.2f nats)%n", r.activeDims(),
                    c.latentSize(), r.activeThreshold());
            double[] kl = r.klPerDim().clone();
            Arrays.sort(kl);
            System.out.printf("  KL per dim (nats)     min %.3f, median %.3f, max %.3f, total %.2f%n", kl[0],
                    kl[kl.length / 2], kl[kl.length - 1], Arrays.stream(kl).sum());
            if (klPerDim) {
                for (int i = 0; i < r.klPerDim().length; i++) System.out.printf("    dim %3d  %.4f%n", i,
                        r.klPerDim()[i]);
            }
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
            String t = text != null ? text : readText(input);
            AutoencoderRun ae = AutoencoderRun.load(run);
            AutoencoderConfig c = ae.model().config();
            AutoencoderRun.Encoding enc = ae.encode(t);
            int k = c.patchSize(), chunks = enc.chunks();
            long[] padded = enc.tokens();
            float[] mu = enc.mu(), sigma = enc.sigma();
            if (out != null && out.toString().endsWith(".npy")) {
                Npy.write(out, new Npy.Matrix(chunks, c.latentSize(), mu));
                System.out.printf("wrote %s: %d chunks x %d (posterior means)%n", out, chunks, c.latentSize());
                return 0;
            }
            ObjectNode json = Configs.JSON.createObjectNode();
            json.put("patch_size", k);
            json.put("latent_size", c.latentSize());
            ArrayNode tokens = json.putArray("tokens");
            for (long id : padded) tokens.add(id);
            json.set("mu", rows(mu, chunks, c.latentSize()));
            json.set("sigma", rows(sigma, chunks, c.latentSize()));
            if (out != null) {
                Configs.JSON.writeValue(out.toFile(), json);
                System.out.printf("wrote %s: %d chunks x %d%n", out, chunks, c.latentSize());
            } else {
                System.out.println(Configs.JSON.writeValueAsString(json));
            }
            return 0;
        }

        private static ArrayNode rows(float[] v, int rows, int cols) {
            ArrayNode a = Configs.JSON.createArrayNode();
            for (int r = 0; r < rows; r++) {
                ArrayNode row = a.addArray();
                for (int c = 0; c < cols; c++) row.add(v[r * cols + c]);
            }
            return a;
        }
    }

    @Command(name = "decode", mixinStandardHelpOptions = true,
            description = "Latent vectors (JSON from 'ae encode', using \"mu\", or .npy [chunks, l]) -> tokens -> text.")
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
            AutoencoderConfig c = ae.model().config();
            Npy.Matrix m;
            if (input.toString().endsWith(".npy")) {
                m = Npy.read(input);
            } else {
                JsonNode mu = Configs.readTree(input).get("mu");
                if (mu == null || !mu.isArray()) {
                    throw new UserError(input + " has no \"mu\" array of latent vectors");
                }
                int rows = mu.size(), cols = rows == 0 ? c.latentSize() : mu.get(0).size();
                float[] data = new float[rows * cols];
                for (int r = 0; r < rows; r++) {
                    if (mu.get(r).size() != cols) throw new UserError(input + ": row " + r + " of \"mu\" has "
                            + mu.get(r).size() + " numbers, row 0 has " + cols);
                    for (int j = 0; j < cols; j++) data[r * cols + j] = (float) mu.get(r).get(j).asDouble();
                }
                m = new Npy.Matrix(rows, cols, data);
            }
            System.out.println(ae.decode(m, input.toString()));
            return 0;
        }
    }

    /** A UTF-8 text file, or a clear error naming the file. */
    static String readText(Path file) {
        try {
            return Files.readString(file);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new UserError(file + " is not UTF-8 text (a byte sequence at or near its start does not decode)");
        } catch (java.io.IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
    }
}
