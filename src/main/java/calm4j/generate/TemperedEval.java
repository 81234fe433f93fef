package calm4j.generate;

import calm4j.calm.CalmModel;
import calm4j.engine.Engine;
import calm4j.engine.Progress;
import calm4j.engine.UserError;
import calm4j.eval.BrierLM;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * BrierLM of a CALM's sampler at a temperature T < 1 (docs/method.md §3): at every chunk boundary of a held-out
 * block, {@code samples} independent chunks are each drawn as generation draws them (a pool of head samples per
 * chunk, picked by the T = 1/n rule; or, for a head that refines proposals, one sample from proposals tempered by
 * T), and scored as {@code CalmEval} scores raw samples. It measures the model as a
 * sampler is used at that temperature, which is not the model's own distribution: T = 1 is {@code CalmEval}.
 * K >= 4 only (one chunk covers Brier-1..4).
 */
public final class TemperedEval {
    private TemperedEval() {}

    /** Positions whose pools are drawn and decoded together (16 x 200 candidates, as a generation batch of 16). */
    static final int ROWS = 16;

    /**
     * BrierLM over {@code blocks} of {@code samples} chunks per position, each drawn at {@code sampling}'s
     * temperature from a pool of {@code options.pool()} head samples, as a generator with these settings draws.
     */
    public static BrierLM.Result evaluate(CalmModel model, List<TokenBatch> blocks, int samples, Sampling sampling,
                                          GenerationOptions options, Progress progress) {
        int pool = options.pool();
        int k = model.patchSize();
        if (k < BrierLM.MAX_N) throw new UserError("a tempered evaluation needs K >= 4, this CALM has K=" + k);
        if (samples < 2) throw new UserError("BrierLM needs at least 2 samples per position");
        Temperature.check(sampling, pool);
        boolean wasTraining = model.is_training();
        model.eval();
        BrierLM brier = new BrierLM();
        var device = Layers.device(model);
        Engine.seed(0);
        SplittableRandom rng = new SplittableRandom(0);
        try (NoGradGuard ng = new NoGradGuard()) {
            for (TokenBatch b : blocks) {
                Engine.step(() -> {
                    Tensor tokens = b.tensor(device);
                    long len = tokens.size(1), s = len / k - 1, p = tokens.size(0) * s;
                    Tensor h = model.hidden(tokens.narrow(1, 0, len - k), null).reshape(p, -1);
                    long[] truth = new long[(int) (p * k)];
                    tokens.narrow(1, k, len - k).contiguous().cpu().data_ptr_long().get(truth);
                    Generator[] gens = new Generator[(int) p];
                    int[] counts = new int[(int) p];
                    boolean[] whole = new boolean[(int) p];
                    // A head that tempers its proposals draws one tempered candidate; others a pool to count in.
                    boolean itself = model.sampler().tempers() && sampling.topP() == 1 && sampling.topK() == 0;
                    double[] temperatures = new double[(int) p];
                    for (int i = 0; i < p; i++) {
                        gens[i] = torch.make_generator_cpu();
                        gens[i].set_current_seed(rng.nextLong() & Long.MAX_VALUE);
                        counts[i] = itself ? 1 : pool;
                        temperatures[i] = itself ? sampling.temperature() : 1;
                        whole[i] = itself;
                    }
                    long[][][] drawn = new long[(int) p][samples][];
                    for (int from = 0; from < p; from += ROWS) { // pools of ROWS positions at a time, as a batch
                        int rows = (int) Math.min(ROWS, p - from);
                        int start = from;
                        Engine.step(() -> {
                            Tensor hr = h.narrow(0, start, rows);
                            int[] c = Arrays.copyOfRange(counts, start, start + rows);
                            Generator[] g = Arrays.copyOfRange(gens, start, start + rows);
                            double[] t = Arrays.copyOfRange(temperatures, start, start + rows);
                            int per = c[0];
                            for (int j = 0; j < samples; j++) {
                                Tensor z = model.sampler().sample(hr, c, g, t);                 // [rows * per, l]
                                long[][] decoded = model.autoencoder().decodeRepeated(z, c,
                                        Arrays.copyOfRange(whole, start, start + rows));
                                for (int i = 0; i < rows; i++) {
                                    List<long[]> cands = Arrays.asList(decoded).subList(i * per, (i + 1) * per);
                                    if (per == 1) {
                                        drawn[start + i][j] = cands.get(0);
                                        continue;
                                    }
                                    int pick = Temperature.pick(cands, sampling, rng);
                                    drawn[start + i][j] = cands.get(pick) != null ? cands.get(pick)
                                            : model.autoencoder().decodeRepeated(z.narrow(0, (long) i * pool + pick, 1),
                                            new int[] {1}, new boolean[] {true})[0];
                                }
                            }
                        });
                    }
                    for (int i = 0; i < p; i++) {
                        double[] est = new double[BrierLM.MAX_N];
                        long firstPairs = 0;
                        for (int a = 0; a < samples; a++) {
                            for (int c = a + 1; c < samples; c++) if (drawn[i][a][0] == drawn[i][c][0]) firstPairs++;
                        }
                        brier.addAgreement(firstPairs / (samples * (samples - 1) / 2.0));
                        for (int g = 0; g < BrierLM.MAX_N; g++) {
                            long hits = 0, pairs = 0;
                            for (int a = 0; a < samples; a++) {
                                if (prefixEquals(drawn[i][a], truth, i * k, g + 1)) hits++;
                                for (int c = a + 1; c < samples; c++) {
                                    if (prefixEquals(drawn[i][a], drawn[i][c], 0, g + 1)) pairs++;
                                }
                            }
                            est[g] = BrierLM.estimate(samples, hits, pairs);
                        }
                        brier.add(est);
                    }
                });
                progress.step(1);
            }
        } finally {
            model.train(wasTraining);
        }
        return brier.result();
    }

    private static boolean prefixEquals(long[] a, long[] b, int from, int n) {
        for (int i = 0; i < n; i++) if (a[i] != b[from + i]) return false;
        return true;
    }
}
