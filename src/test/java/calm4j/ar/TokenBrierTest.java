package calm4j.ar;

import calm4j.engine.Engine;
import calm4j.eval.BrierLM;
import calm4j.nn.KVCache;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class TokenBrierTest {
    static final int V = 5;

    /** A fixed bigram table: the next token depends on the last one only. */
    static final class Bigram implements NextTokenModel {
        final double[][] table = new double[V][V];
        final Tensor logTable;

        Bigram(long seed) {
            Random r = new Random(seed);
            float[] flat = new float[V * V];
            for (int a = 0; a < V; a++) {
                double sum = 0;
                for (int b = 0; b < V; b++) sum += table[a][b] = Math.pow(r.nextDouble(), 2) + 0.02;
                for (int b = 0; b < V; b++) flat[a * V + b] = (float) Math.log(table[a][b] /= sum);
            }
            logTable = Tensor.create(flat, V, V);
        }

        @Override
        public int vocabSize() {
            return V;
        }

        @Override
        public Tensor logits(Tensor tokens, KVCache cache) {
            if (cache != null) { // positions only: the cache must be cut and copied as a real model's is
                Tensor marks = torch.zeros(tokens.size(0), 1, tokens.size(1), 1);
                cache.begin((int) tokens.size(0), tokens.size(1));
                cache.write(0, marks, marks);
                cache.end(tokens.size(1));
            }
            return logTable.index_select(0, tokens.reshape(-1)).view(tokens.size(0), tokens.size(1), V);
        }

        @Override
        public KVCache newCache() {
            return new KVCache(1);
        }

        /** Exact Brier-n after last token a with true continuation y: 2 P(y) - sum_x P(x)^2 over n-grams. */
        double exact(int a, int[] y, int n) {
            double p = 1;
            int prev = a;
            for (int i = 0; i < n; i++) {
                p *= table[prev][y[i]];
                prev = y[i];
            }
            return 2 * p - collision(a, n);
        }

        double collision(int a, int n) {
            if (n == 0) return 1;
            double s = 0;
            for (int x = 0; x < V; x++) s += table[a][x] * table[a][x] * collision(x, n - 1);
            return s;
        }
    }

    @Test
    void theEstimateMatchesExactBrierForAKnownBigramModelWithinItsStandardError() {
        Bigram model = new Bigram(3);
        Random r = new Random(4);
        int b = 8, len = 30;
        long[] ids = new long[b * len];
        for (int row = 0; row < b; row++) {
            int t = r.nextInt(V);
            for (int j = 0; j < len; j++) {
                ids[row * len + j] = t;
                double u = r.nextDouble();
                int next = 0;
                while (next < V - 1 && (u -= model.table[t][next]) > 0) next++;
                t = next;
            }
        }
        // The exact mean of Brier-n over the same positions.
        double[] exact = new double[4];
        int positions = 0;
        for (int row = 0; row < b; row++) {
            for (int t = 0; t + 4 < len; t++) {
                int[] y = new int[4];
                for (int i = 0; i < 4; i++) y[i] = (int) ids[row * len + t + 1 + i];
                for (int n = 1; n <= 4; n++) exact[n - 1] += model.exact((int) ids[row * len + t], y, n);
                positions++;
            }
        }
        for (int n = 0; n < 4; n++) exact[n] /= positions;
        // Repeated passes make the rollout noise small compared with the tolerance.
        BrierLM estimate = new BrierLM();
        Engine.seed(5);
        Tensor tokens = Tensor.create(ids, b, len);
        for (int pass = 0; pass < 40; pass++) TokenBrier.score(model, tokens, estimate, null, 1);
        BrierLM.Result res = estimate.result();
        for (int n = 0; n < 4; n++) {
            // positions repeat across passes, so the accumulator's error understates nothing that matters here:
            // the accuracy term is exact and only the sampled collision varies.
            double tolerance = 4 * res.standardError()[n] + 1e-3;
            assertEquals(exact[n], res.brier()[n], tolerance, "Brier-" + (n + 1) + "\n" + res.format());
        }
    }

    @Test
    void chunkAlignedPositionsAreASubset() {
        Bigram model = new Bigram(1);
        Tensor tokens = torch.randint(V, new long[] {2, 20});
        BrierLM all = new BrierLM(), aligned = new BrierLM();
        TokenBrier.score(model, tokens, all, aligned, 4);
        assertEquals(2 * 16, all.result().positions());
        assertEquals(2 * 4, aligned.result().positions(), "positions 3, 7, 11, 15: n-grams from chunk starts");
    }
}
