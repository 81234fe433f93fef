package calm4j.calm;

import calm4j.engine.Engine;
import calm4j.eval.BrierLM;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static calm4j.nn.Tensors.c;
import static org.junit.jupiter.api.Assertions.*;

class DecodedBrierScoreTest {
    /** softmax of logits [N, P, K, V] as a Java array [N][P][K][V]. */
    static double[][][][] softmax(Tensor logits) {
        Tensor p = torch.softmax(logits, 3, new org.bytedeco.pytorch.ScalarTypeOptional()).to(torch.ScalarType.Double)
                .contiguous();
        int n = (int) p.size(0), pos = (int) p.size(1), k = (int) p.size(2), v = (int) p.size(3);
        double[] flat = new double[n * pos * k * v];
        p.data_ptr_double().get(flat);
        double[][][][] out = new double[n][pos][k][v];
        for (int i = 0, at = 0; i < n; i++) for (int q = 0; q < pos; q++) for (int j = 0; j < k; j++) {
            for (int x = 0; x < v; x++) out[i][q][j][x] = flat[at++];
        }
        return out;
    }

    @Test
    void estimatesTwiceTheMixturesProbabilityOfTheTruthMinusTheSampledPairsAgreementOverEveryNGram() {
        Engine.seed(3);
        int n = 3, positions = 2, k = 3, v = 3;
        Tensor logits = torch.randn(n, positions, k, v).mul(c(2.0));
        long[] truth = {2, 0, 1, 1, 1, 0};
        Tensor got = DecodedBrierScore.estimates(logits, Tensor.create(truth).view(positions, k));
        double[][][][] p = softmax(logits);
        for (int q = 0; q < positions; q++) {
            for (int len = 1; len <= k; len++) {
                // Brute force over every n-gram x of the first len positions.
                double hit = 0, collision = 0;
                for (int i = 0; i < n; i++) {
                    double prod = 1;
                    for (int j = 0; j < len; j++) prod *= p[i][q][j][(int) truth[q * k + j]];
                    hit += prod / n;
                }
                int grams = (int) Math.pow(v, len);
                for (int g = 0; g < grams; g++) {
                    int[] x = new int[len];
                    for (int j = 0, r = g; j < len; j++, r /= v) x[j] = r % v;
                    for (int i = 0; i < n; i++) for (int m = 0; m < n; m++) {
                        if (i == m) continue;
                        double prod = 1;
                        for (int j = 0; j < len; j++) prod *= p[i][q][j][x[j]] * p[m][q][j][x[j]];
                        collision += prod / (n * (n - 1));
                    }
                }
                assertEquals(2 * hit - collision, got.get(q).get(len - 1).item_double(), 1e-5,
                        "position " + q + ", Brier-" + len);
            }
        }
    }

    @Test
    void withSharpDecodingItIsBrierLMsEstimateFromTheDecodedSamples() {
        // One-hot softmaxes: each sample is a chunk, and B_n is the estimate calm lm eval makes from hits and pairs.
        int n = 4, k = 4, v = 5;
        long[][] chunks = {{1, 2, 3, 4}, {1, 2, 0, 0}, {1, 2, 3, 0}, {3, 3, 3, 3}};
        long[] truth = {1, 2, 3, 4};
        Tensor logits = torch.one_hot(Tensor.create(chunks[0]), v).to(torch.ScalarType.Float)
                .unsqueeze(0);
        for (int i = 1; i < n; i++) {
            logits = torch.cat(new org.bytedeco.pytorch.TensorVector(logits, torch.one_hot(
                    Tensor.create(chunks[i]), v).to(torch.ScalarType.Float).unsqueeze(0)), 0);
        }
        logits = logits.mul(c(100.0)).view(n, 1, k, v); // [N, P=1, K, V], softmax ~ one-hot
        Tensor got = DecodedBrierScore.estimates(logits, Tensor.create(truth).view(1, k));
        for (int len = 1; len <= k; len++) {
            long hits = 0, pairs = 0;
            for (int i = 0; i < n; i++) {
                if (prefixEqual(chunks[i], truth, len)) hits++;
                for (int m = i + 1; m < n; m++) if (prefixEqual(chunks[i], chunks[m], len)) pairs++;
            }
            assertEquals(BrierLM.estimate(n, hits, pairs), got.get(0).get(len - 1).item_double(), 1e-6,
                    "Brier-" + len);
        }
    }

    static boolean prefixEqual(long[] a, long[] b, int len) {
        for (int j = 0; j < len; j++) if (a[j] != b[j]) return false;
        return true;
    }

    @Test
    void itsGradientMovesSamplesTowardsTheTruthWithoutCollapsingThem() {
        // Two samples, vocabulary 2, one position: the truth is token 0. A step up the score raises p(0) in both.
        Tensor logits = Tensor.create(new float[] {0f, 0f, 0.5f, 0f}).view(2, 1, 1, 2).requires_grad_(true);
        Tensor score = DecodedBrierScore.score(logits, Tensor.create(new long[] {0}).view(1, 1));
        score.backward();
        Tensor grad = logits.grad();
        assertTrue(grad.get(0).get(0).get(0).get(0).item_double() > 0, "sample 1's logit of the true token rises");
        assertTrue(grad.get(1).get(0).get(0).get(0).item_double() > 0, "sample 2's logit of the true token rises");
    }
}
