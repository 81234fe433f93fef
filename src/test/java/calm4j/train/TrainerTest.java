package calm4j.train;

import calm4j.engine.Configs;
import calm4j.engine.Engine;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.loader.Batches;
import calm4j.loader.LoaderState;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import calm4j.nn.Linear;
import calm4j.run.Checkpoints;
import calm4j.run.MetricsLog;
import com.fasterxml.jackson.databind.JsonNode;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class TrainerTest {
    /** The CALM's training preset, which the tests below change by name. */
    static final TrainConfig BASE = Presets.section("calm", "train", TrainConfig.class);

    static final int V = 16;

    /** A tiny bigram language model with dropout, so that the random state matters for exact resume. */
    static final class Bigram extends Module implements Trainable {
        final EmbeddingImpl emb = register_module("emb", Layers.embedding(V, 16));
        final Linear out = register_module("out", Layers.linear(16, V, true));
        boolean poison;

        @Override
        public Module module() {
            return this;
        }

        @Override
        public Tensor loss(TokenBatch b, Map<String, Double> metrics) {
            Tensor x = b.tensor();
            Tensor h = torch.dropout(emb.forward(x.narrow(1, 0, b.cols() - 1)), 0.1, is_training());
            Tensor l = torch.cross_entropy(out.forward(h).reshape(-1, V), x.narrow(1, 1, b.cols() - 1).reshape(-1));
            return poison ? l.mul(new org.bytedeco.pytorch.Scalar(Double.NaN)) : l;
        }

        @Override
        public Map<String, Double> evaluate(int batches) {
            return Map.of("loss", 0.0);
        }
    }

    /** Sequences where token t+1 = (t * 3 + 1) mod V with some noise: learnable, seeded, resumable. */
    static final class Sequences implements Batches {
        final long seed;
        long n;

        Sequences(long seed) {
            this.seed = seed;
        }

        @Override
        public TokenBatch next() {
            SplittableRandom r = new SplittableRandom(seed + n++);
            long[] ids = new long[8 * 12];
            for (int row = 0; row < 8; row++) {
                long t = r.nextInt(V);
                for (int j = 0; j < 12; j++) {
                    ids[row * 12 + j] = t;
                    t = r.nextInt(10) == 0 ? r.nextInt(V) : (t * 3 + 1) % V;
                }
            }
            return new TokenBatch(ids, 8, 12);
        }

        @Override
        public LoaderState state() {
            return new LoaderState(0, n);
        }

        @Override
        public void restore(LoaderState s) {
            n = s.cursor();
        }

        @Override
        public long tokensPerBatch() {
            return 96;
        }
    }

    /** A freshly initialised model; seeded, as every command seeds before it builds a model. */
    static Bigram model() {
        Engine.seed(99);
        return new Bigram();
    }

    static TrainConfig config(long steps) {
        return BASE.with("max_steps", steps, "batch_size", 8, "grad_accum", 2, "lr", 3e-2, "min_lr", 1e-3,
                "warmup_steps", 5, "eval_every", 10, "eval_batches", 1, "checkpoint_every", 10, "log_every", 1,
                "max_bad_steps", 3, "seed", 99);
    }

    static List<Double> losses(Path run) {
        return MetricsLog.read(run).stream().filter(r -> r.path("split").asText().equals("train"))
                .map(r -> r.path("loss").asDouble()).toList();
    }

    @Test
    void theLossFallsAndMetricsCheckpointsAndPlotsAreWritten(@TempDir Path dir) {
        Path run = dir.resolve("run");
        Trainer.Summary s = new Trainer(config(60), run, model(), new Sequences(1), true).run();
        assertEquals(60, s.step());
        List<Double> l = losses(run);
        assertEquals(60, l.size());
        double end = l.subList(55, 60).stream().mapToDouble(Double::doubleValue).average().orElseThrow();
        calm4j.Margins.atLeast("first loss over the last five's mean", l.get(0) / end, 1 / 0.6, "loss falls: "
                + l.get(0) + " -> " + end);
        assertEquals(2, new Checkpoints(run, 2).list().size(), "only the newest checkpoints are kept");
        boolean drawn = calm4j.SystemPackages.present(calm4j.run.Plots.canDraw(), calm4j.SystemPackages.FONTS);
        assertEquals(drawn, Files.exists(run.resolve("plots/loss.png")), "plots where fonts are installed");
        assertEquals(drawn, Files.exists(run.resolve("plots/lr.png")));
    }

    @Test
    void aRunStoppedAndResumedGivesTheSameLossCurveAsAnUninterruptedOne(@TempDir Path dir) {
        Path whole = dir.resolve("whole"), split = dir.resolve("split");
        new Trainer(config(40), whole, model(), new Sequences(5), true).run();
        // The first half, then a fresh process-like start: new model, new loader, resumed from the checkpoint.
        Trainer.Summary half = new Trainer(config(40), split, model(), new Sequences(5), true).run(20);
        assertTrue(half.interrupted());
        new Trainer(config(40), split, model(), new Sequences(5), true).run();
        List<Double> a = losses(whole), b = losses(split);
        assertEquals(40, b.size(), "no duplicated or missing rows after the resume");
        for (int i = 0; i < 40; i++) assertEquals(a.get(i), b.get(i), 1e-5, "step " + (i + 1));
    }

    @Test
    void nonFiniteLossesAreSkippedThenStopTraining(@TempDir Path dir) {
        Bigram m = model();
        m.poison = true;
        UserError e = assertThrows(UserError.class,
                () -> new Trainer(config(50), dir.resolve("run"), m, new Sequences(1), true).run());
        assertTrue(e.getMessage().contains("3 non-finite losses in a row"), e.getMessage());
    }

    @Test
    void aCorruptCheckpointIsRefusedWithAClearMessage(@TempDir Path dir) throws IOException {
        Path run = dir.resolve("run");
        new Trainer(config(20), run, model(), new Sequences(1), true).run();
        Path latest = new Checkpoints(run, 2).latest().orElseThrow();
        Path model = latest.resolve("model.pt");
        byte[] bytes = Files.readAllBytes(model);
        Files.write(model, java.util.Arrays.copyOf(bytes, bytes.length / 2));
        UserError e = assertThrows(UserError.class,
                () -> new Trainer(config(30), run, model(), new Sequences(1), true).run());
        assertTrue(e.getMessage().contains("corrupt") && e.getMessage().contains("model.pt"), e.getMessage());
        assertEquals(2, new Checkpoints(run, 2).list().size(), "the earlier checkpoint is still there");
    }

    @Test
    void aHalfWrittenCheckpointFolderIsIgnored(@TempDir Path dir) throws IOException {
        Path run = dir.resolve("run");
        new Trainer(config(10), run, model(), new Sequences(1), true).run();
        Files.createDirectories(run.resolve("checkpoints/.tmp-step-00000020"));
        Files.createDirectories(run.resolve("checkpoints/step-00000030")); // no state.json: never completed
        assertEquals(run.resolve("checkpoints/step-00000010"), new Checkpoints(run, 2).latest().orElseThrow());
    }

    @Test
    void configsTakeDefaultsAndRefuseUnknownKeysAndBadValues(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("c.json");
        Files.writeString(f, "{\"train\": {\"max_steps\": 7, \"lr\": 0.01}}");
        JsonNode root = Configs.readTree(f);
        TrainConfig c = Configs.section(root, "train", BASE, TrainConfig.class, "c.json");
        assertEquals(7, c.maxSteps());
        assertEquals(BASE.batchSize(), c.batchSize());
        Files.writeString(f, "{\"train\": {\"max_stesp\": 7}}");
        UserError typo = assertThrows(UserError.class, () -> Configs.section(Configs.readTree(f), "train",
                BASE, TrainConfig.class, "c.json"));
        assertTrue(typo.getMessage().contains("unknown key \"max_stesp\""), typo.getMessage());
        Files.writeString(f, "{\"train\": {\"lr\": -1}}");
        UserError bad = assertThrows(UserError.class, () -> Configs.section(Configs.readTree(f), "train",
                BASE, TrainConfig.class, "c.json"));
        assertTrue(bad.getMessage().contains("lr must be positive"), bad.getMessage());
        Files.writeString(f, "{\"train\": {");
        assertTrue(assertThrows(UserError.class, () -> Configs.readTree(f)).getMessage().contains("not valid JSON"));
    }

    @Test
    void warmupThenCosineSchedule() {
        TrainConfig c = BASE.with("max_steps", 110, "batch_size", 1, "lr", 1.0, "min_lr", 0.1, "warmup_steps", 10);
        assertEquals(0.1, c.lrAt(0), 1e-12);
        assertEquals(1.0, c.lrAt(9), 1e-12);
        assertEquals(1.0, c.lrAt(10), 1e-12);
        assertEquals(0.55, c.lrAt(60), 1e-12);
        assertEquals(0.1, c.lrAt(110), 1e-12);
    }

    @Test
    void theCudaAutocastPathRunsTheForwardAndRestoresTheAutocastState() {
        // No GPU here: the bf16 autocast branch of the loop still runs (CUDA autocast leaves CPU tensors alone), and
        // must hand back an fp32 loss and switch autocast off again for the backward pass.
        Tensor w = torch.ones(3).requires_grad_(true);
        Tensor loss = Trainer.forward(() -> w.mul(new org.bytedeco.pytorch.Scalar(2.0)).sum(), true);
        assertEquals(torch.ScalarType.Float.value, loss.scalar_type().value, "an fp32 loss");
        assertFalse(torch.is_autocast_enabled(torch.DeviceType.CUDA), "autocast is off after the forward");
        loss.backward();
        assertEquals(2.0, w.grad().select(0, 0).item_double(), 1e-6);
    }
}
