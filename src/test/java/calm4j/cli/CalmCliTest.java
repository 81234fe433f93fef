package calm4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class CalmCliTest {
    record Run(int status, String out, String err) {}

    static Run calm(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true));
        System.setErr(new PrintStream(err, true));
        try {
            int status = Calm.run(args);
            return new Run(status, out.toString(), err.toString());
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void helpListsTheSubcommands() {
        Run r = calm("--help");
        assertEquals(0, r.status());
        for (String c : new String[] {"demo", "tokenizer", "data", "ae", "plot", "bench"}) {
            assertTrue(r.out().contains(c), c + " in " + r.out());
        }
        assertEquals(0, calm("ae", "train", "--help").status());
    }

    @Test
    void badInputExitsNonZeroWithAMessageAndNoStackTrace(@TempDir Path dir) throws Exception {
        Run missing = calm("data", "prepare", "--input", dir.resolve("nope").toString(), "--tokenizer",
                dir.resolve("t.json").toString(), "--out", dir.resolve("out").toString(), "--val-fraction", "0.1");
        assertEquals(2, missing.status());
        assertTrue(missing.err().contains("error:") && missing.err().contains("does not exist"), missing.err());
        assertFalse(missing.err().contains("\tat "), "no stack trace for a user error");

        Run notARun = calm("ae", "eval", "--ckpt", dir.toString(), "--data", dir.toString());
        assertEquals(2, notARun.status());
        assertTrue(notARun.err().contains("not a calm4j run"), notARun.err());

        Path cfg = dir.resolve("ae.json");
        Files.writeString(cfg, "{\"model\": {\"hidden_sise\": 3}}");
        Run typo = calm("ae", "train", "--data", dir.toString(), "--config", cfg.toString(), "--out",
                dir.resolve("run").toString());
        assertEquals(2, typo.status());
        assertTrue(typo.err().contains("hidden_sise"), typo.err());
        assertFalse(Files.exists(dir.resolve("run")), "nothing is created for a bad config");

        assertEquals(2, calm("data", "prepare", "--input", "x").status(), "usage errors exit 2 too");
    }

    @Test
    void anErrorAboutOneSettingNamesTheParameterInTheLibraryAndTheFlagOnTheCommandLine(@TempDir Path dir) {
        calm4j.engine.UserError e = assertThrows(calm4j.engine.UserError.class,
                () -> calm4j.engine.Engine.create("cpu", 0));
        assertEquals("threads must be at least 1, got 0", e.getMessage(), "a library caller has no flags");
        Run r = calm("ae", "eval", "--ckpt", dir.toString(), "--data", dir.toString(), "--threads", "0");
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("error: --threads must be at least 1, got 0"), r.err());
        Run device = calm("ae", "eval", "--ckpt", dir.toString(), "--data", dir.toString(), "--device", "tpu");
        assertTrue(device.err().contains("error: --device tpu is not a device"), device.err());
    }

    @Test
    void configMistakesAreErrorsThatNameTheKey(@TempDir Path dir) throws Exception {
        String[][] cases = {
            {"{\"modle\": {\"hidden_size\": 64}}", "unknown section \"modle\""},
            {"{\"train\": {\"batch_size\": 2.7}}", "\"batch_size\" in \"train\""},
            {"{\"train\": {\"lr\": 1e400}}", "\"lr\" in \"train\" is Infinity, which is not a finite number"},
            {"{\"model\": {\"vocab_size\": 100}}", "\"model.vocab_size\" cannot be set"},
            {"{\"model\": {\"pad_id\": 7}}", "\"model.pad_id\" cannot be set"},
            {"{\"model\": {\"hidden_sise\": 3}}", "unknown key \"hidden_sise\" in \"model\""},
        };
        Path corpus = calm4j.Fixtures.corpus(dir, 4, 2, 3);
        for (String[] c : cases) {
            Path cfg = Files.writeString(dir.resolve("ae.json"), c[0]);
            Run r = calm("ae", "train", "--data", corpus.toString(), "--config", cfg.toString(), "--out",
                    dir.resolve("run").toString());
            assertEquals(2, r.status(), c[0] + ": " + r.err());
            assertTrue(r.err().contains(c[1]), c[0] + " -> " + r.err());
            assertFalse(r.err().substring(r.err().indexOf(':')).contains("known keys: [hidden_sise")
                    || r.err().replaceAll(".*known keys", "").contains("hidden_sise"), "the typo is not a known key");
            assertFalse(Files.exists(dir.resolve("run")), "nothing is created for a bad config");
        }
    }

    @Test
    void theWholePipelineRunsFromTheCommandLine(@TempDir Path dir) throws Exception {
        Path corpus = calm4j.Fixtures.corpus(dir, 12, 3, 6);
        Path ae = dir.resolve("ae"), calm = dir.resolve("calm");
        Files.writeString(dir.resolve("ae.json"), "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, "
                + "\"latent_size\": 8}, \"train\": {\"max_steps\": 20, \"batch_size\": 32, \"eval_every\": 10, "
                + "\"eval_batches\": 2}}");
        Run train = calm("ae", "train", "--data", corpus.toString(), "--config", dir.resolve("ae.json").toString(),
                "--out", ae.toString(), "--quiet");
        assertEquals(0, train.status(), train.err());
        boolean drawn = calm4j.SystemPackages.present(calm4j.run.Plots.canDraw(), calm4j.SystemPackages.FONTS);
        assertEquals(drawn, Files.exists(ae.resolve("plots/loss.png")), "plots where fonts are installed");

        Run eval = calm("ae", "eval", "--ckpt", ae.toString(), "--data", corpus.toString());
        assertEquals(0, eval.status(), eval.err());
        assertTrue(eval.out().contains("token accuracy") && eval.out().contains("sigma=0.3"), eval.out());

        Path npy = dir.resolve("z.npy"), json = dir.resolve("z.json");
        assertEquals(0, calm("ae", "encode", "--ckpt", ae.toString(), "--text", "the people", "--out",
                npy.toString()).status());
        assertEquals(0, calm("ae", "encode", "--ckpt", ae.toString(), "--text", "the people", "--out",
                json.toString()).status());
        Run fromNpy = calm("ae", "decode", "--ckpt", ae.toString(), "--input", npy.toString());
        Run fromJson = calm("ae", "decode", "--ckpt", ae.toString(), "--input", json.toString());
        assertEquals(0, fromNpy.status(), fromNpy.err());
        assertEquals(fromNpy.out(), fromJson.out(), "the .npy and JSON latents decode alike");
        emptyInputsAreAClearErrorOrAnEmptyResult(dir, ae);
        Run notALanguageModel = calm("generate", "--ckpt", ae.toString(), "--prompt", "The people");
        assertEquals(2, notALanguageModel.status());
        assertTrue(notALanguageModel.err().contains("is an autoencoder run, not a language model"),
                notALanguageModel.err());

        Files.writeString(dir.resolve("calm.json"), "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, "
                + "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
                + "\"context_chunks\": 8, \"eval_block_chunks\": 8, \"num_mlp_layers\": 1, \"num_targets\": 8}, "
                + "\"train\": {\"max_steps\": 10, \"batch_size\": 4, \"eval_every\": 5, \"eval_batches\": 1}}");
        Run lm = calm("lm", "train", "--ae", ae.toString(), "--data", corpus.toString(), "--config",
                dir.resolve("calm.json").toString(), "--out", calm.toString(), "--quiet");
        assertEquals(0, lm.status(), lm.err());
        assertTrue(lm.out().contains("training FLOPs"), lm.out());
        assertEquals(drawn, Files.exists(calm.resolve("plots/brier_lm.png")));

        Run lmEval = calm("lm", "eval", "--ckpt", calm.toString(), "--data", corpus.toString(), "--batch-size", "2");
        assertEquals(0, lmEval.status(), lmEval.err());
        assertTrue(lmEval.out().contains("BrierLM") && lmEval.out().contains("blocks of 8 chunks"), lmEval.out());

        Run gen = calm("generate", "--ckpt", calm.toString(), "--prompt", "The people", "--max-tokens", "8",
                "--seed", "3", "--json");
        assertEquals(0, gen.status(), gen.err());
        assertTrue(gen.out().contains("\"chunk_ends\""), gen.out());
        assertEquals(gen.out().replaceAll("\"seconds\".*?,|\"tokens_per_second\".*?,", ""),
                calm("generate", "--ckpt", calm.toString(), "--prompt", "The people", "--max-tokens", "8", "--seed",
                        "3", "--json").out().replaceAll("\"seconds\".*?,|\"tokens_per_second\".*?,", ""),
                "the same seed gives the same output");

        Run longPrompt = calm("generate", "--ckpt", calm.toString(), "--prompt", "the people ".repeat(40));
        assertEquals(2, longPrompt.status());
        assertTrue(longPrompt.err().contains("context"), longPrompt.err());

        Run otherData = calm("lm", "train", "--ae", ae.toString(), "--data", calm4j.Fixtures.corpus(
                dir.resolve("other"), 6, 2, 4).toString(), "--out", dir.resolve("calm2").toString());
        assertEquals(2, otherData.status());
        assertTrue(otherData.err().contains("different tokenizer"), otherData.err());
        assertTrue(otherData.err().startsWith("calm lm train: error:"), "errors name the whole command: "
                + otherData.err());

        badGenerateRequestsAreRefusedBeforeAnyTextIsPrinted(dir, calm);
    }

    /** An empty text has no chunk to encode (exit 2, said so); no latent vectors decode to an empty text. */
    static void emptyInputsAreAClearErrorOrAnEmptyResult(Path dir, Path ae) throws Exception {
        Path empty = Files.writeString(dir.resolve("empty.txt"), "");
        for (String[] args : new String[][] {{"--text", ""}, {"--text", "", "--out", dir.resolve("e.npy").toString()},
                {"--input", empty.toString()}}) {
            String[] cmd = java.util.stream.Stream.concat(java.util.stream.Stream.of("ae", "encode", "--ckpt",
                    ae.toString()), java.util.Arrays.stream(args)).toArray(String[]::new);
            Run r = calm(cmd);
            assertEquals(2, r.status(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().contains("the text is empty"), r.err());
        }
        Path none = dir.resolve("none.npy");
        calm4j.io.Npy.write(none, new calm4j.io.Npy.Matrix(0, 8, new float[0]));
        Run decoded = calm("ae", "decode", "--ckpt", ae.toString(), "--input", none.toString());
        assertEquals(0, decoded.status(), decoded.err());
        assertEquals("", decoded.out().strip());
        Path noneJson = Files.writeString(dir.resolve("none.json"), "{\"mu\": []}");
        Run fromJson = calm("ae", "decode", "--ckpt", ae.toString(), "--input", noneJson.toString());
        assertEquals(0, fromJson.status(), fromJson.err());
    }

    /** What used to print text and then fail, or crash, is a clear error with exit 2 and nothing on stdout. */
    static void badGenerateRequestsAreRefusedBeforeAnyTextIsPrinted(Path dir, Path calm) throws Exception {
        Path notUtf8 = dir.resolve("prompts.txt");
        Files.write(notUtf8, new byte[] {'T', 'h', 'e', ' ', (byte) 0xC3, (byte) 0x28, '\n'});
        String[][] cases = {
            {"--temperature", "4.656612873077393e-10", "pool of 200"},
            {"--max-draws", "0", "--max-draws must be at least 1"},
            {"--max-draws", "-1", "--max-draws must be at least 1"},
            {"--max-tokens", "0", "--max-tokens must be at least 1"},
            {"--prompt-file", notUtf8.toString(), "is not valid UTF-8 (bytes at offset 4)"},
            {"--prompt", "the people ".repeat(40), "context"},
        };
        for (String[] c : cases) {
            boolean file = c[0].equals("--prompt-file"), prompt = c[0].equals("--prompt");
            Run r = file || prompt ? calm("generate", "--ckpt", calm.toString(), c[0], c[1])
                    : calm("generate", "--ckpt", calm.toString(), "--prompt", "The people", c[0], c[1]);
            assertEquals(2, r.status(), String.join(" ", c) + ": " + r.err());
            assertTrue(r.err().startsWith("calm generate: error:") && r.err().contains(c[2]), r.err());
            assertEquals("", r.out(), "nothing is printed before the error");
        }

        // A run whose tokenizer.json was swapped for one with another vocabulary would generate garbage.
        Path swapped = dir.resolve("swapped");
        try (var files = Files.walk(calm)) {
            for (Path f : files.toList()) {
                Path to = swapped.resolve(calm.relativize(f).toString());
                if (Files.isDirectory(f)) Files.createDirectories(to);
                else Files.copy(f, to);
            }
        }
        int trained, other;
        try (var t = calm4j.tokenize.Tokenizer.load(calm.resolve("tokenizer.json"));
             var o = calm4j.Fixtures.tokenizer(dir.resolve("tok-other"), calm4j.Fixtures.documents(20, 6, 1), 280)) {
            trained = t.vocabSize();
            other = o.vocabSize();
        }
        assertNotEquals(trained, other);
        Files.copy(dir.resolve("tok-other/tokenizer.json"), swapped.resolve("tokenizer.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Run r = calm("generate", "--ckpt", swapped.toString(), "--prompt", "The people");
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("has a vocabulary of " + other + " tokens")
                && r.err().contains("trained on " + trained), r.err());
        assertEquals("", r.out());
    }

    @Test
    void theTokenBaselineTrainsEvaluatesAndGeneratesFromTheCommandLine(@TempDir Path dir) throws Exception {
        Path corpus = calm4j.Fixtures.corpus(dir, 12, 3, 6);
        Path ar = dir.resolve("ar");
        Files.writeString(dir.resolve("ar.json"), "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, "
                + "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, "
                + "\"context_tokens\": 32, \"eval_block_tokens\": 32}, "
                + "\"train\": {\"max_steps\": 30, \"batch_size\": 4, \"eval_every\": 15, \"eval_batches\": 1, "
                + "\"lr\": 0.003}}");
        Run train = calm("ar", "train", "--data", corpus.toString(), "--config", dir.resolve("ar.json").toString(),
                "--out", ar.toString(), "--quiet");
        assertEquals(0, train.status(), train.err());
        assertTrue(train.out().contains("training FLOPs"), train.out());
        var losses = calm4j.run.MetricsLog.read(ar).stream().filter(r -> r.path("split").asText().equals("train"))
                .map(r -> r.path("loss").asDouble()).toList();
        assertTrue(losses.get(losses.size() - 1) < losses.get(0), "cross-entropy falls: " + losses);

        Run eval = calm("ar", "eval", "--ckpt", ar.toString(), "--data", corpus.toString(), "--batch-size", "2",
                "--batches", "2");
        assertEquals(0, eval.status(), eval.err());
        assertTrue(eval.out().contains("chunk-aligned positions") && eval.out().contains("BrierLM"), eval.out());
        for (String format : new String[] {"calm4j", "official"}) {
            Run export = calm("export", "--ckpt", ar.toString(), "--out", dir.resolve("hf").toString(), "--format",
                    format);
            assertEquals(2, export.status(), format);
            assertTrue(export.err().contains("is a token-lm run") && export.err().contains("CALMs and autoencoders"),
                    export.err());
        }

        Run gen = calm("ar", "generate", "--ckpt", ar.toString(), "--prompt", "The people", "--max-tokens", "6",
                "--top-k", "5", "--top-p", "0.9", "--seed", "2", "--batch", "2");
        assertEquals(0, gen.status(), gen.err());
        assertEquals(gen.out(), calm("ar", "generate", "--ckpt", ar.toString(), "--prompt", "The people",
                "--max-tokens", "6", "--top-k", "5", "--top-p", "0.9", "--seed", "2", "--batch", "2").out());

        Run compare = calm("compare", "--runs", ar.toString(), "--out", dir.resolve("report").toString());
        assertEquals(0, compare.status(), compare.err());
        assertTrue(compare.out().contains("| ar | token-lm |"), compare.out());
        assertTrue(compare.out().contains("| Brier-1 | Brier-2 | Brier-3 | Brier-4 | BrierLM |")
                && compare.out().contains("batch 16"), "the report gives Brier-1..4 and both speeds: "
                + compare.out());
        assertTrue(compare.out().contains("can be negative"), "the report says what a negative Brier-n means");
        if (calm4j.SystemPackages.present(calm4j.run.Plots.canDraw(), calm4j.SystemPackages.FONTS)) {
            assertTrue(Files.exists(dir.resolve("report/brier_vs_flops.png")), "two evaluations draw a curve");
        } else {
            assertTrue(compare.out().contains("No plot: this machine has no fonts"), compare.out());
        }
        Files.writeString(dir.resolve("ar.json"), Files.readString(dir.resolve("ar.json"))
                .replace("\"eval_every\": 15", "\"eval_every\": 30"));
        Path once = dir.resolve("ar-once");
        assertEquals(0, calm("ar", "train", "--data", corpus.toString(), "--config", dir.resolve("ar.json").toString(),
                "--out", once.toString(), "--quiet").status());
        Run single = calm("compare", "--runs", once.toString(), "--out", dir.resolve("report-once").toString());
        assertEquals(0, single.status(), single.err());
        assertFalse(Files.exists(dir.resolve("report-once/brier_vs_flops.png")), "no single-point chart");
        assertTrue(single.out().contains("No plot"), single.out());
    }
}
