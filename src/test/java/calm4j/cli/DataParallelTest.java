package calm4j.cli;

import calm4j.app.TokenLMRun;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Data-parallel training over c10d (Gloo), with real processes on loopback. */
class DataParallelTest {
    static String config(int batch, int steps) {
        return "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 2, "
                + "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"context_tokens\": 32, "
                + "\"eval_block_tokens\": 32}, \"train\": {\"max_steps\": " + steps + ", \"batch_size\": " + batch
                + ", \"lr\": 0.003, \"warmup_steps\": 2, \"eval_every\": 1000, \"eval_batches\": 1, "
                + "\"checkpoint_every\": 1000, \"log_every\": 1}}";
    }

    @Test
    void twoProcessesWithBatchBReachTheParametersOfOneProcessWithBatch2B(@TempDir Path dir) throws Exception {
        Path corpus = calm4j.Fixtures.corpus(dir, 12, 3, 6);
        Files.writeString(dir.resolve("one.json"), config(4, 6));
        Files.writeString(dir.resolve("two.json"), config(2, 6));
        Path one = dir.resolve("one"), two = dir.resolve("two");
        assertEquals(0, Calm.run("ar", "train", "--data", corpus.toString(), "--config",
                dir.resolve("one.json").toString(), "--out", one.toString(), "--quiet"));
        assertEquals(0, Calm.run("launch", "--nproc", "2", "--", "ar", "train", "--data", corpus.toString(),
                "--config", dir.resolve("two.json").toString(), "--out", two.toString(), "--quiet",
                "--dist-timeout", "60"));

        TokenLMRun a = TokenLMRun.load(one), b = TokenLMRun.load(two);
        assertEquals(6, a.step());
        assertEquals(6, b.step());
        var pa = a.model().named_parameters(true);
        var pb = b.model().named_parameters(true);
        assertEquals(pa.size(), pb.size());
        double worst = 0;
        for (long i = 0; i < pa.size(); i++) {
            Tensor x = pa.get(i).value(), y = pb.get(i).value();
            worst = Math.max(worst, x.sub(y).abs().max().item_double());
        }
        assertTrue(worst <= 1e-5, "max |parameter difference| after 6 steps = " + worst);
        Tensor start = new calm4j.ar.TokenLM(a.model().config(), a.model().vocabSize()).named_parameters(true).get(0)
                .value();
        assertTrue(start.sub(pa.get(0).value()).abs().max().item_double() > 1e-3, "training moved the weights");
        a.tokenizer().close();
        b.tokenizer().close();
    }

    @Test
    void killingOneRankMakesTheOtherExitNonZeroWithinTheTimeout(@TempDir Path dir) throws Exception {
        double seconds = failOneRank(dir, false);
        System.out.printf("rank 0 exited %.1f s after rank 1 was killed (timeout 10 s)%n", seconds);
    }

    @Test
    void aStalledRankMakesTheOtherExitNonZeroAfterTheTimeout(@TempDir Path dir) throws Exception {
        double seconds = failOneRank(dir, true);
        assertTrue(seconds >= 5, "a stall is only detected by the timeout: " + seconds + " s");
        System.out.printf("rank 0 exited %.1f s after rank 1 was stopped (timeout 10 s)%n", seconds);
    }

    /** Trains on two ranks, then kills (or SIGSTOPs) rank 1; returns how long rank 0 took to exit non-zero. */
    static double failOneRank(Path dir, boolean stall) throws Exception {
        Path corpus = calm4j.Fixtures.corpus(dir, 12, 3, 6);
        Files.writeString(dir.resolve("long.json"), config(2, 1_000_000));
        Path run = dir.resolve("run");
        int port;
        try (var s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<Process> ranks = new ArrayList<>();
        for (int rank = 0; rank < 2; rank++) {
            ProcessBuilder pb = new ProcessBuilder(calm4j.train.Launcher.javaCommand(Calm.class, List.of("ar", "train", "--data",
                    corpus.toString(), "--config", dir.resolve("long.json").toString(), "--out", run.toString(),
                    "--quiet", "--dist-timeout", "10")));
            Map<String, String> env = pb.environment();
            env.put("RANK", String.valueOf(rank));
            env.put("WORLD_SIZE", "2");
            env.put("MASTER_ADDR", "127.0.0.1");
            env.put("MASTER_PORT", String.valueOf(port));
            pb.redirectErrorStream(true);
            pb.redirectOutput(dir.resolve("rank" + rank + ".log").toFile());
            ranks.add(pb.start());
        }
        try {
            Path metrics = run.resolve("metrics.jsonl");
            long until = System.currentTimeMillis() + 60_000;
            while (!(Files.exists(metrics) && Files.size(metrics) > 0) && System.currentTimeMillis() < until) {
                Thread.sleep(100);
            }
            assertTrue(Files.exists(metrics), "training started: " + Files.readString(dir.resolve("rank0.log")));
            long t0 = System.nanoTime();
            if (stall) {
                new ProcessBuilder("kill", "-STOP", String.valueOf(ranks.get(1).pid())).start().waitFor();
            } else {
                ranks.get(1).destroyForcibly(); // SIGKILL: no goodbye to the other rank
            }
            assertTrue(ranks.get(0).waitFor(40, TimeUnit.SECONDS), "rank 0 gave up instead of hanging");
            double seconds = (System.nanoTime() - t0) / 1e9;
            String log = Files.readString(dir.resolve("rank0.log"));
            assertNotEquals(0, ranks.get(0).exitValue(), log);
            assertTrue(log.contains("another rank died or stalled"), log);
            return seconds;
        } finally {
            ranks.forEach(Process::destroyForcibly);
        }
    }
}
