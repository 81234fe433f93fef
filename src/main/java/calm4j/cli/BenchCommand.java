package calm4j.cli;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.engine.Engine;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true, description = "Benchmarks that measure and print.",
        subcommands = {BenchCommand.Ae.class})
final class BenchCommand {

    /** fp32 GFLOP/s of a 2048x2048 matmul: the yardstick model FLOP/s are compared with in the same run. */
    static double matmulGflops() {
        int n = 2048;
        Tensor a = torch.randn(n, n), b = torch.randn(n, n);
        Engine.step(() -> {
            a.matmul(b);
        });
        int reps = 5;
        long t0 = System.nanoTime();
        for (int i = 0; i < reps; i++) Engine.step(() -> {
            a.matmul(b);
        });
        double s = (System.nanoTime() - t0) / 1e9;
        return 2.0 * n * n * n * reps / s / 1e9;
    }

    @Command(name = "ae", mixinStandardHelpOptions = true,
            description = "Autoencoder training throughput (tokens/s) and model FLOP/s as a fraction of a "
                    + "2048x2048 fp32 matmul measured in the same run.")
    static final class Ae implements Callable<Integer> {
        @Option(names = "--vocab", defaultValue = "4096")
        int vocab;

        @Option(names = "--batch", defaultValue = "256", description = "chunks per step (default: ${DEFAULT-VALUE})")
        int batch;

        @Option(names = "--steps", defaultValue = "30")
        int steps;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            Engine.seed(0);
            AutoencoderConfig c = AutoencoderConfig.DEFAULTS.withVocabulary(vocab, 1, 2, 0);
            ChunkAutoencoder ae = new ChunkAutoencoder(c);
            ae.train(true);
            AdamW opt = new AdamW(ae.parameters(), new AdamWOptions(1e-3));
            Tensor tokens = torch.randint(vocab, new long[] {batch, c.patchSize()});
            Runnable step = () -> Engine.step(() -> {
                ae.loss(tokens).total().backward();
                opt.step();
                opt.zero_grad(true);
            });
            for (int i = 0; i < 3; i++) step.run(); // warm up
            long t0 = System.nanoTime();
            for (int i = 0; i < steps; i++) step.run();
            double s = (System.nanoTime() - t0) / 1e9;
            double tokensPerS = (double) steps * batch * c.patchSize() / s;
            double flopsPerToken = 6.0 * autoencoderMacsPerChunk(c) / c.patchSize();
            double gflops = matmulGflops();
            System.out.printf("autoencoder d=%d ffn=%d K=%d l=%d vocab=%d, %,d parameters, batch %d chunks%n",
                    c.hiddenSize(), c.intermediateSize(), c.patchSize(), c.latentSize(), vocab,
                    Layers.parameterCount(ae, false), batch);
            System.out.printf("  training: %,.0f tokens/s (%.1f ms/step)%n", tokensPerS, 1000 * s / steps);
            System.out.printf("  model: %.2f GFLOP/s = %.1f%% of a 2048^3 fp32 matmul (%.1f GFLOP/s, same run)%n",
                    flopsPerToken * tokensPerS / 1e9, 100 * flopsPerToken * tokensPerS / 1e9 / gflops, gflops);
            return 0;
        }
    }

    /**
     * Multiply-accumulates of one chunk's forward pass (matmuls only; training costs about 3x: forward, and twice
     * that backward). The tied output layer (K*d*V) dominates at small d.
     */
    static double autoencoderMacsPerChunk(AutoencoderConfig c) {
        double d = c.hiddenSize(), f = c.intermediateSize(), k = c.patchSize(), l = c.latentSize(),
                v = c.vocabSize();
        int encBefore = c.encoderLayers() / 2, encAfter = c.encoderLayers() - encBefore;
        int decBefore = c.decoderLayers() / 2, decAfter = c.decoderLayers() - decBefore;
        double mlp = 3 * d * f;
        return k * encBefore * mlp + k * d * d + encAfter * mlp + d * 2 * l
                + l * d + decBefore * mlp + d * k * d + k * decAfter * mlp + k * d * v;
    }
}
