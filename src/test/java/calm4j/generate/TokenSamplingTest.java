package calm4j.generate;

import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The token model's batched sampler draws from softmax(logits / T), filtered as asked, row by row independently. */
class TokenSamplingTest {
    static final double[] P = {0.5, 0.2, 0.15, 0.1, 0.05};
    static final int ROWS = 20_000;

    /** ROWS identical rows of log P, each with its own stream; returns how often each token was drawn. */
    static long[] counts(double temperature, int topK, double topP) {
        float[] logits = new float[ROWS * P.length];
        for (int r = 0; r < ROWS; r++) for (int v = 0; v < P.length; v++) logits[r * P.length + v] = (float) Math.log(P[v]);
        List<Sampling> reqs = new ArrayList<>();
        SplittableRandom[] streams = new SplittableRandom[ROWS];
        for (int r = 0; r < ROWS; r++) {
            reqs.add(Sampling.at(temperature).withTopK(topK).withTopP(topP));
            streams[r] = new SplittableRandom(r);
        }
        long[] drawn = TokenGenerator.sample(Tensor.create(logits, ROWS, P.length), reqs, streams);
        long[] c = new long[P.length];
        for (long t : drawn) c[(int) t]++;
        return c;
    }

    /** Pearson's chi-square of {@code observed} against probabilities {@code expected} (which sum to 1). */
    static double chiSquare(long[] observed, double[] expected) {
        double x = 0;
        for (int v = 0; v < observed.length; v++) {
            double e = expected[v] * ROWS;
            if (e == 0) {
                assertEquals(0, observed[v], "a token of probability 0 was drawn");
                continue;
            }
            x += (observed[v] - e) * (observed[v] - e) / e;
        }
        return x;
    }

    static double[] normalised(double[] w) {
        double s = Arrays.stream(w).sum();
        return Arrays.stream(w).map(x -> x / s).toArray();
    }

    // critical values of chi-square at p = 0.001: 18.47 (4 degrees of freedom), 16.27 (3), 10.83 (1)

    @Test
    void temperatureOneDrawsTheModelsDistribution() {
        assertTrue(chiSquare(counts(1, 0, 1), P) < 18.47);
    }

    @Test
    void temperatureOneHalfDrawsProbabilitiesSquared() {
        double[] squared = Arrays.stream(P).map(p -> p * p).toArray();
        assertTrue(chiSquare(counts(0.5, 0, 1), normalised(squared)) < 18.47);
    }

    @Test
    void topKAndTopPKeepOnlyTheTokensTheyName() {
        assertTrue(chiSquare(counts(1, 2, 1), normalised(new double[] {0.5, 0.2, 0, 0, 0})) < 10.83);
        // top-p 0.8: the most likely tokens until their mass reaches 0.8, i.e. 0.5 + 0.2 + 0.15
        assertTrue(chiSquare(counts(1, 0, 0.8), normalised(new double[] {0.5, 0.2, 0.15, 0, 0})) < 16.27);
    }

    @Test
    void temperatureZeroIsTheArgmaxAndARowsTokenDoesNotDependOnTheOthers() {
        assertEquals(ROWS, counts(0, 0, 1)[0]);
        float[] two = {0f, 1f, 2f, 3f, 4f, 4f, 3f, 2f, 1f, 0f};
        List<Sampling> reqs = List.of(Sampling.at(1), Sampling.at(0));
        long[] both = TokenGenerator.sample(Tensor.create(two, 2, 5), reqs,
                new SplittableRandom[] {new SplittableRandom(7), new SplittableRandom(8)});
        long[] alone = TokenGenerator.sample(Tensor.create(Arrays.copyOf(two, 5), 1, 5), reqs.subList(0, 1),
                new SplittableRandom[] {new SplittableRandom(7)});
        assertEquals(alone[0], both[0]);
        assertArrayEquals(new long[] {0}, new long[] {both[1]});
    }
}
