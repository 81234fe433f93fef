package calm4j.cli;

import calm4j.Fixtures;
import calm4j.tokenize.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static calm4j.cli.CalmCliTest.calm;
import static org.junit.jupiter.api.Assertions.*;

/** The authors' releases, imported from the command line and used: here the tiny ones in shared/fixtures. */
class OfficialImportTest {
    static final Path FIXTURE = calm4j.Fixtures.OFFICIAL_TINY;

    /**
     * A tokenizer of exactly {@code vocab} tokens (the fixture models' ids mean nothing in particular): a small BPE,
     * topped up with placeholder special tokens.
     */
    static Path tokenizer(Path dir, int vocab) {
        int have;
        Path bpe;
        try (Tokenizer t = Fixtures.tokenizer(dir, Fixtures.documents(40, 8, 5), Math.min(vocab, 300))) {
            have = t.vocabSize();
            bpe = t.path();
        }
        try {
            for (int id = have; id < vocab; id++) Tokenizer.writeWithToken(bpe, "<|extra_" + id + "|>", id, bpe);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        try (Tokenizer t = Tokenizer.load(bpe)) {
            assertEquals(vocab, t.vocabSize());
        }
        return bpe;
    }

    @Test
    void anOfficialCalmImportsWithItsTokenizerPlusPadAndGenerates(@TempDir Path dir) throws Exception {
        Path tok = tokenizer(dir.resolve("tok511"), 511);
        for (String layout : new String[] {"calm", "calm-sharded", "calm-safetensors-bf16"}) {
            Path run = dir.resolve("run-" + layout);
            CalmCliTest.Run imp = calm("import", "--hf", FIXTURE.resolve(layout).toString(), "--tokenizer",
                    tok.toString(), "--out", run.toString());
            assertEquals(0, imp.status(), imp.err());
            assertTrue(imp.err().contains("added [PAD] as token 511"), imp.err());
            CalmCliTest.Run gen = calm("generate", "--ckpt", run.toString(), "--prompt", "the people", "--max-tokens",
                    "8", "--seed", "1", "--json");
            assertEquals(0, gen.status(), gen.err());
            assertTrue(gen.out().contains("\"token_ids\""), gen.out());
            assertTrue(java.nio.file.Files.readString(run.resolve("config.json")).contains("\"bos_id\" : 1"),
                    "an imported model's prompts begin with BOS, as the authors' documents did");
        }
        // Prompts shorter than a chunk (with BOS) are padded at their end, as the authors' generation does.
        CalmCliTest.Run tiny = calm("generate", "--ckpt", dir.resolve("run-calm").toString(), "--prompt", "a",
                "--max-tokens", "4", "--seed", "1");
        assertEquals(0, tiny.status(), tiny.err());
        CalmCliTest.Run ae = calm("import", "--hf", FIXTURE.resolve("autoencoder").toString(), "--tokenizer",
                tok.toString(), "--out", dir.resolve("ae").toString());
        assertEquals(0, ae.status(), ae.err());
        assertTrue(ae.out().contains("imported a autoencoder") || ae.out().contains("autoencoder"), ae.out());
    }

    @Test
    void aTokenizerThatDoesNotFitTheModelIsRefusedWithBothSizes(@TempDir Path dir) {
        Path tok = tokenizer(dir.resolve("tok300"), 300);
        CalmCliTest.Run r = calm("import", "--hf", FIXTURE.resolve("calm").toString(), "--tokenizer", tok.toString(),
                "--out", dir.resolve("run").toString());
        assertEquals(2, r.status(), r.err());
        assertTrue(r.err().contains("vocabulary of 300 tokens and the model 512"), r.err());
        CalmCliTest.Run none = calm("import", "--hf", FIXTURE.resolve("calm").toString(), "--out",
                dir.resolve("run2").toString());
        assertEquals(2, none.status());
        assertTrue(none.err().contains("--tokenizer"), none.err());
    }

    @Test
    void officialToCalm4jToOfficialIsBitIdenticalInFloat32(@TempDir Path dir) {
        Path tok = tokenizer(dir.resolve("tok511"), 511);
        Path run = dir.resolve("run"), back = dir.resolve("back");
        assertEquals(0, calm("import", "--hf", FIXTURE.resolve("calm").toString(), "--tokenizer", tok.toString(),
                "--out", run.toString()).status());
        CalmCliTest.Run exp = calm("export", "--ckpt", run.toString(), "--out", back.toString(), "--format", "official");
        assertEquals(0, exp.status(), exp.err());
        CalmCliTest.Run legacy = calm("export", "--hf", run.toString(), "--out", dir.resolve("legacy").toString());
        assertEquals(0, legacy.status(), legacy.err());
        assertTrue(legacy.err().contains("now --ckpt"), "the old spelling still works, with a note: " + legacy.err());
        var original = calm4j.io.WeightFiles.read(FIXTURE.resolve("calm"));
        var exported = calm4j.io.WeightFiles.read(back);
        assertEquals(new java.util.TreeSet<>(original.keySet()), new java.util.TreeSet<>(exported.keySet()),
                "the same names, aliases included");
        for (var e : original.entrySet()) {
            assertTrue(org.bytedeco.pytorch.global.torch.equal(e.getValue(), exported.get(e.getKey())), e.getKey());
        }
        var ae = calm4j.io.WeightFiles.read(back.resolve("autoencoder"));
        for (var e : ae.entrySet()) {
            assertTrue(org.bytedeco.pytorch.global.torch.equal(e.getValue(), original.get("ae_model." + e.getKey())),
                    e.getKey());
        }
        var cfg = calm4j.engine.Configs.readTree(back.resolve("config.json"));
        var was = calm4j.engine.Configs.readTree(FIXTURE.resolve("calm/config.json"));
        for (String f : new String[] {"model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "latent_size", "patch_size", "noise_size",
                "num_mlp_layers", "num_samples", "beta", "rope_theta", "rms_norm_eps", "vocab_size",
                "max_position_embeddings"}) {
            assertEquals(was.get(f).asText(), cfg.get(f).asText(), f);
        }
        // And back again: the exported release imports (it names its autoencoder by ae_path, never followed).
        assertEquals(0, calm("import", "--hf", back.toString(), "--out", dir.resolve("again").toString()).status());
    }

    /** The number that {@code pattern}'s group 1 finds in a command's output. */
    static double number(String out, String pattern) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(pattern).matcher(out);
        assertTrue(m.find(), out);
        return Double.parseDouble(m.group(1));
    }

    static double energyLoss(String out) {
        return number(out, "energy loss ([0-9.]+)");
    }

    /** Imports the fixture's {@code layout} with a 511-token tokenizer into {@code dir/name}. */
    static Path importFixture(Path dir, String layout, String name) {
        Path run = dir.resolve(name);
        CalmCliTest.Run r = calm("import", "--hf", FIXTURE.resolve(layout).toString(), "--tokenizer",
                tokenizer(dir.resolve("tok511"), 511).toString(), "--out", run.toString());
        assertEquals(0, r.status(), r.err());
        return run;
    }

    /** A corpus of generated documents prepared with {@code run}'s tokenizer. */
    static Path corpusFor(Path run, Path dir, List<String> docs) throws java.io.IOException {
        Path corpus = dir.resolve("corpus");
        CalmCliTest.Run prep = calm("data", "prepare", "--input", Fixtures.writeTxt(dir.resolve("texts"), docs)
                .toString(), "--tokenizer", run.resolve("tokenizer.json").toString(), "--out", corpus.toString(),
                "--val-fraction", "0.2", "--quiet");
        assertEquals(0, prep.status(), prep.err());
        return corpus;
    }

    @Test
    void fineTuningTheImportedCalmLowersItsLossOnTheUsersCorpus(@TempDir Path dir) throws Exception {
        Path run = importFixture(dir, "calm", "release");
        Path corpus = corpusFor(run, dir, Fixtures.documents(60, 10, 3));
        String[] eval = {"--data", corpus.toString(), "--block-chunks", "16", "--batches", "8", "--samples", "2"};
        double before = energyLoss(calm(concat(new String[] {"lm", "eval", "--ckpt", run.toString()}, eval)).out());

        Path cfg = java.nio.file.Files.writeString(dir.resolve("ft.json"), "{\"model\": {\"context_chunks\": 16, "
                + "\"eval_block_chunks\": 16}, \"train\": {\"max_steps\": 60, \"batch_size\": 8, \"lr\": 0.003, "
                + "\"warmup_steps\": 5, \"eval_every\": 60, \"eval_batches\": 1}}");
        Path tuned = dir.resolve("tuned");
        CalmCliTest.Run ft = calm("lm", "train", "--init", run.toString(), "--data", corpus.toString(), "--config",
                cfg.toString(), "--out", tuned.toString(), "--quiet");
        assertEquals(0, ft.status(), ft.err());
        double after = energyLoss(calm(concat(new String[] {"lm", "eval", "--ckpt", tuned.toString()}, eval)).out());
        System.out.printf("fine-tuning the imported CALM: energy loss %.4f before, %.4f after%n", before, after);
        assertTrue(after < before - 0.1, "energy loss on the corpus: " + before + " before, " + after + " after");
        assertTrue(java.nio.file.Files.readString(tuned.resolve("config.json")).contains(run.toAbsolutePath()
                .normalize().toString()), "the source is recorded");

        Path wider = java.nio.file.Files.writeString(dir.resolve("wider.json"), "{\"model\": {\"hidden_size\": 128}}");
        CalmCliTest.Run refused = calm("lm", "train", "--init", run.toString(), "--data", corpus.toString(),
                "--config", wider.toString(), "--out", dir.resolve("x").toString());
        assertEquals(2, refused.status());
        assertTrue(refused.err().contains("model.hidden_size is 64"), refused.err());
    }

    static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static double tokenAccuracy(String out) {
        return number(out, "token accuracy +([0-9.]+)%");
    }

    @Test
    void fineTuningTheImportedAutoencoderRaisesItsAccuracyOnTheUsersCorpus(@TempDir Path dir) throws Exception {
        Path run = importFixture(dir, "autoencoder", "ae-release");
        Path corpus = corpusFor(run, dir, Fixtures.documents(30, 8, 4));
        double before = tokenAccuracy(calm("ae", "eval", "--ckpt", run.toString(), "--data", corpus.toString()).out());
        Path cfg = java.nio.file.Files.writeString(dir.resolve("ft.json"), "{\"model\": {\"token_drop\": 0.0, "
                + "\"latent_drop\": 0.0}, \"train\": {\"max_steps\": 150, \"batch_size\": 64, \"lr\": 0.003, "
                + "\"warmup_steps\": 10, \"eval_every\": 150, \"eval_batches\": 1}}");
        Path tuned = dir.resolve("tuned");
        CalmCliTest.Run ft = calm("ae", "train", "--init", run.toString(), "--data", corpus.toString(), "--config",
                cfg.toString(), "--out", tuned.toString(), "--quiet");
        assertEquals(0, ft.status(), ft.err());
        double after = tokenAccuracy(calm("ae", "eval", "--ckpt", tuned.toString(), "--data", corpus.toString())
                .out());
        System.out.printf("fine-tuning the imported autoencoder: token accuracy %.2f%% before, %.2f%% after%n",
                before, after);
        assertTrue(after > before + 20, before + "% before, " + after + "% after");
    }

    @Test
    void theAuthorsEvaluationProtocolRunsOnAWikiTextStyleFile(@TempDir Path dir) throws Exception {
        Path run = importFixture(dir, "calm", "release");
        StringBuilder jsonl = new StringBuilder();
        for (String d : Fixtures.documents(40, 12, 9)) {
            jsonl.append("{\"text\": ").append(calm4j.engine.Configs.JSON.writeValueAsString(d)).append("}\n");
        }
        Path test = java.nio.file.Files.writeString(dir.resolve("wikitext_document_level-test.json"), jsonl);
        CalmCliTest.Run r = calm("lm", "eval", "--ckpt", run.toString(), "--data", test.toString(), "--protocol",
                "official", "--batches", "3");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.out().contains("the authors' protocol") && r.out().contains("40 documents with BOS")
                && r.out().contains("blocks of 1024 tokens (3 evaluated"), r.out());
        assertTrue(r.out().contains("BrierLM"), r.out());
    }
}
