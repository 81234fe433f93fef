package calm4j.calm;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.AutoencoderTask;
import calm4j.ae.ChunkAutoencoder;
import calm4j.data.BlockBatches;
import calm4j.data.ChunkBatches;
import calm4j.data.SyntheticCorpus;
import calm4j.data.TokenStore;
import calm4j.engine.Engine;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A small autoencoder and CALM trained on a synthetic language, as the tests that need a learned CALM make them:
 * vocabulary of 40 (0 end of document, 1 padding, 2 mask), a 300-step autoencoder with l = 16, then a 2-layer CALM
 * on blocks of 16 chunks.
 */
public final class SyntheticCalm {
    public static final int V = 40, EOS = 0, PAD = 1, MASK = 2;

    /** The trained CALM and its validation blocks (16 chunks, read in order). */
    public record Trained(CalmModel calm, BlockBatches valBlocks) {}

    private SyntheticCalm() {}

    /** Writes the corpus under {@code dir}, seeds libtorch with {@code seed}, and trains both models. */
    public static Trained train(Path dir, int k, List<int[]> train, List<int[]> val, long seed, long calmSteps)
            throws IOException {
        return train(dir, k, train, val, seed, calmSteps, "energy");
    }

    /** As above, with the CALM's generative head named ("energy" or "flow"). */
    public static Trained train(Path dir, int k, List<int[]> train, List<int[]> val, long seed, long calmSteps,
                                String head) throws IOException {
        Path corpus = SyntheticCorpus.write(dir.resolve("corpus"), V, EOS, PAD, MASK, train, val);
        TokenStore trainStore = TokenStore.open(corpus, "train"), valStore = TokenStore.open(corpus, "val");

        Engine.seed(seed);
        ChunkAutoencoder ae = new ChunkAutoencoder(new AutoencoderConfig(V, 48, 96, 2, 2, k, 16, true, 0, 0, 0.5,
                1e-3, PAD, MASK, EOS));
        new Trainer(new TrainConfig(300, 64, 1, 3e-3, 1e-4, 20, "cosine", 0, 0.9, 0.95, 1, 1000, 1, 1000, 1, 100, 5,
                1), dir.resolve("ae"), new AutoencoderTask(ae, new ChunkBatches(valStore, k, 64, PAD, 0, false, 0, 1)),
                new ChunkBatches(trainStore, k, 64, PAD, 1, true, 0, 1), true).run();

        CalmModel calm = new CalmModel(new CalmConfig(64, 128, 2, 4, 2, 10000.0, 16, 16, 2, 8, 16, 1.0, 16, 2)
                .withHead(head), ae);
        BlockBatches valBlocks = new BlockBatches(valStore, k, 17 * k, 8, PAD, 0, false, 0, 1);
        new Trainer(new TrainConfig(calmSteps, 8, 1, 3e-3, 1e-4, 30, "cosine", 0.1, 0.9, 0.95, 1, 1000, 1, 1000, 1,
                100, 5, 2), dir.resolve("calm"), new CalmTask(calm, valBlocks),
                new BlockBatches(trainStore, k, 17 * k, 8, PAD, 3, true, 0, 1), true).run();
        return new Trained(calm, valBlocks);
    }
}
