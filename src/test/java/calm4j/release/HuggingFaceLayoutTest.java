package calm4j.release;

import calm4j.Fixtures;
import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.app.AutoencoderRun;
import calm4j.app.CalmRun;
import calm4j.calm.CalmConfig;
import calm4j.calm.CalmModel;
import calm4j.engine.Engine;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.generate.CalmGenerator;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.Finish;
import calm4j.io.SafeTensors;
import calm4j.io.StateDict;
import calm4j.nn.RMSNorm;
import calm4j.nn.RotaryEmbedding;
import calm4j.run.Checkpoints;
import calm4j.run.RunFolder;
import calm4j.train.TrainConfig;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class HuggingFaceLayoutTest {
    @TempDir
    static Path dir;
    static Path calmRun;

    /** A CALM run with random weights (every tensor non-trivial), made as training would leave it. */
    @BeforeAll
    static void makeRun() throws Exception {
        Path corpus = Fixtures.corpus(dir.resolve("c"), 4, 2, 3);
        AutoencoderConfig ae = AutoencoderConfig.DEFAULTS.with("vocab_size", 300, "hidden_size", 32,
                "intermediate_size", 64, "latent_size", 8, "pad_id", 1, "mask_id", 2, "eos_id", 0);
        CalmConfig cc = CalmConfig.DEFAULTS.with("head_proposal", false, "hidden_size", 32, "intermediate_size", 64, "num_hidden_layers", 2,
                "num_key_value_heads", 2, "context_chunks", 8, "noise_size", 16, "num_mlp_layers", 2,
                "num_samples", 4, "num_targets", 8, "eval_block_chunks", 8);
        Engine.seed(5);
        CalmModel m = new CalmModel(cc, new ChunkAutoencoder(ae));
        try (NoGradGuard ng = new NoGradGuard()) {
            StateDict.of(m).values().forEach(t -> t.add_(torch.randn_like(t).mul(new org.bytedeco.pytorch.Scalar(0.05))));
        }
        calmRun = dir.resolve("calm");
        Map<String, Object> sections = new LinkedHashMap<>();
        sections.put("model", cc);
        sections.put("autoencoder", ae);
        RunFolder.createOrResume(calmRun, CalmRun.KIND, sections, Presets.section("calm", "train", TrainConfig.class),
                corpus.resolve("tokenizer.json"));
        Checkpoints.saveWeights(calmRun, 7, m);
    }

    static void assertSame(Tensor a, Tensor b, String what) {
        double diff = a.sub(b).abs().max().item_double(), scale = a.abs().max().item_double();
        assertTrue(diff <= 1e-6 * Math.max(1, scale), what + ": max difference " + diff);
    }

    @Test
    void aCalmWhoseHeadRefinesProposalsExportsItsMultiTokenHeadAndSamplesAlikeAfterImport() throws Exception {
        CalmModel b = exportAndImportProposing("proposal", c -> c.with("head_proposal", true, "aux_token_weight", 1.0,
                "proposal_rank", 0), true);
        assertTrue(b.config().refinesProposals());
    }

    @Test
    void aCalmWithALowRankProposalHeadLeavesTheTrainingOnlyMultiTokenHeadOutAndSamplesAlikeAfterImport()
            throws Exception {
        CalmModel b = exportAndImportProposing("low-rank", c -> c.with("head_proposal", true, "aux_token_weight", 1.0,
                "proposal_rank", 6), false);
        assertEquals(6, b.config().proposalRank(), "the proposal head's settings travel with the export");
    }

    /**
     * A proposing CALM made from {@link #calmRun}'s, exported and imported: the imported model, after checking that
     * the multi-token head was exported or not and that both sample alike for the same seed.
     */
    private static CalmModel exportAndImportProposing(String name, java.util.function.UnaryOperator<CalmConfig> recipe,
                                                      boolean multiTokenHeadExported) throws Exception {
        Path run = dir.resolve(name), hf = dir.resolve("hf-" + name), back = dir.resolve("back-" + name);
        CalmRun src = CalmRun.load(calmRun);
        CalmConfig cc = recipe.apply(src.model().config());
        Engine.seed(9);
        CalmModel m = new CalmModel(cc, src.model().autoencoder());
        try (NoGradGuard ng = new NoGradGuard()) {
            StateDict.of(m).values().forEach(t -> t.add_(torch.randn_like(t).mul(new org.bytedeco.pytorch.Scalar(0.05))));
        }
        Map<String, Object> sections = new LinkedHashMap<>();
        sections.put("model", cc);
        sections.put("autoencoder", src.model().autoencoder().config());
        RunFolder.createOrResume(run, CalmRun.KIND, sections, Presets.section("calm", "train", TrainConfig.class),
                src.tokenizer().path());
        Checkpoints.saveWeights(run, 3, m);
        HuggingFaceLayout.export(run, hf);
        assertEquals(multiTokenHeadExported, SafeTensors.read(hf.resolve("model.safetensors")).keySet().stream()
                .anyMatch(n -> n.startsWith(CalmModel.AUX_MODULE + ".")), "the multi-token head is exported "
                + "exactly when proposals are drawn from it");
        HuggingFaceLayout.importDir(hf, back);
        CalmModel a = CalmRun.load(run).model(), b = CalmRun.load(back).model();
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor h = a.hidden(torch.randint(300, new long[] {1, 6 * 4}), null).reshape(6, -1);
            org.bytedeco.pytorch.Generator[] ga = {torch.make_generator_cpu()}, gb = {torch.make_generator_cpu()};
            ga[0].set_current_seed(4);
            gb[0].set_current_seed(4);
            assertSame(a.head().sample(h.narrow(0, 5, 1), new int[] {5}, ga),
                    b.head().sample(h.narrow(0, 5, 1), new int[] {5}, gb), "samples for the same seed");
        }
        return b;
    }

    @Test
    void exportThenImportGivesIdenticalOutputs() {
        Path hf = dir.resolve("hf"), back = dir.resolve("back");
        HuggingFaceLayout.export(calmRun, hf);
        assertTrue(Files.exists(hf.resolve("config.json")) && Files.exists(hf.resolve("model.safetensors")));
        assertTrue(SafeTensors.read(hf.resolve("model.safetensors")).containsKey(
                "mlp_generator.mlp_blocks.0.linears.4.weight"));
        HuggingFaceLayout.Imported imp = HuggingFaceLayout.importDir(hf, back);
        assertEquals("calm", imp.kind());
        CalmModel a = CalmRun.load(calmRun).model(), b = CalmRun.load(back).model();
        assertEquals(calm4j.nn.Layers.parameterCount(b, false), imp.parameters());
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor tokens = torch.randint(300, new long[] {2, 6 * 4});
            var qa = a.autoencoder().encode(tokens.reshape(-1, 4));
            var qb = b.autoencoder().encode(tokens.reshape(-1, 4));
            assertSame(qa.mu(), qb.mu(), "latent means");
            assertSame(qa.logSigma(), qb.logSigma(), "latent log sigmas");
            assertSame(a.autoencoder().decode(qa.mu()), b.autoencoder().decode(qb.mu()), "decoder logits");
            Tensor ha = a.hidden(tokens, null), hb = b.hidden(tokens, null);
            assertSame(ha, hb, "backbone hidden states");
            Tensor noise = torch.rand(12, 16);
            var headA = (calm4j.calm.EnergyHead) a.head();
            var headB = (calm4j.calm.EnergyHead) b.head();
            assertSame(headA.forward(ha.reshape(12, 32), noise), headB.forward(hb.reshape(12, 32), noise),
                    "head outputs for fixed noise");
        }
        var out = new CalmGenerator(b, 0, 1, new GenerationOptions(10, false, 100)).generate(List.of(
                new GenerationRequest(new int[] {5, 6, 7, 8, 9}, 8, 1.0, 1)), null);
        assertEquals(8, out.get(0).tokens().length + (out.get(0).finish() == Finish.EOS ? 8
                - out.get(0).tokens().length : 0), "the imported model generates");
    }

    @Test
    void aChatModelsTokenizerConfigAndItsTemplateSurviveExportAndImport() throws Exception {
        Path run = dir.resolve("chat-run"), hf = dir.resolve("hf-chat"), back = dir.resolve("back-chat");
        HuggingFaceLayout.export(calmRun, hf);
        String template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>";
        Files.writeString(hf.resolve("tokenizer_config.json"), calm4j.engine.Configs.JSON.writeValueAsString(
                java.util.Map.of("chat_template", template, "eos_token", "<|end|>")));
        HuggingFaceLayout.importDir(hf, run);
        assertTrue(Files.isRegularFile(run.resolve("tokenizer_config.json")), "the import keeps it");
        var chat = calm4j.chat.ChatTemplate.of(run);
        assertEquals("<|user|>hi<|assistant|>", chat.render(List.of(new calm4j.chat.ChatTemplate.Message("user",
                "hi"))));
        HuggingFaceLayout.export(run, dir.resolve("hf-chat-again"));
        assertTrue(Files.isRegularFile(dir.resolve("hf-chat-again/tokenizer_config.json")), "and the export");
        // A template that cannot render is refused at import, naming the file, not when the model is served.
        Files.writeString(hf.resolve("tokenizer_config.json"), "{\"chat_template\": \"{% for %}\"}");
        var e = assertThrows(calm4j.engine.UserError.class, () -> HuggingFaceLayout.importDir(hf, back));
        assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
        assertFalse(Files.exists(back), "nothing is written for a refused import");
    }

    @Test
    void theTrainingOnlyAuxiliaryTokenHeadIsLeftOutOfAnExport() throws Exception {
        CalmRun src = CalmRun.load(calmRun);
        CalmConfig withAux = src.model().config().with("aux_token_weight", 1.0);
        CalmModel m = new CalmModel(withAux, src.model().autoencoder());
        Path run = dir.resolve("calm-aux"), hf = dir.resolve("hf-aux"), back = dir.resolve("back-aux");
        Map<String, Object> sections = new LinkedHashMap<>();
        sections.put("model", withAux);
        sections.put("autoencoder", src.model().autoencoder().config());
        RunFolder.createOrResume(run, CalmRun.KIND, sections, Presets.section("calm", "train", TrainConfig.class),
                src.tokenizer().path());
        Checkpoints.saveWeights(run, 3, m);
        CalmModel loaded = CalmRun.load(run).model();
        assertTrue(StateDict.of(loaded).keySet().stream().anyMatch(loaded::isTrainingOnly),
                "the run keeps it (a resume needs it)");
        HuggingFaceLayout.export(run, hf);
        assertFalse(SafeTensors.read(hf.resolve("model.safetensors")).keySet().stream()
                .anyMatch(name -> name.startsWith(CalmModel.AUX_MODULE + ".")));
        HuggingFaceLayout.importDir(hf, back);
        CalmModel imported = CalmRun.load(back).model();
        assertFalse(imported.config().hasAuxTokenHead());
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor tokens = torch.randint(300, new long[] {1, 5 * 4});
            assertSame(m.hidden(tokens, null), imported.hidden(tokens, null), "backbone hidden states");
        }
    }

    @Test
    void anAutoencoderAloneRoundTripsToo() {
        Path hf = dir.resolve("hf-ae"), back = dir.resolve("back-ae");
        CalmRun calm = CalmRun.load(calmRun);
        Path aeRun = dir.resolve("ae");
        RunFolder.createOrResume(aeRun, AutoencoderRun.KIND, Map.of("model", calm.model().autoencoder().config()),
                Presets.section("calm", "train", TrainConfig.class), calm.tokenizer().path());
        Checkpoints.saveWeights(aeRun, 1, calm.model().autoencoder());
        HuggingFaceLayout.export(aeRun, hf);
        assertEquals("autoencoder", HuggingFaceLayout.importDir(hf, back).kind());
        Tensor tokens = torch.randint(300, new long[] {5, 4});
        try (NoGradGuard ng = new NoGradGuard()) {
            assertSame(AutoencoderRun.load(aeRun).model().encode(tokens).mu(),
                    AutoencoderRun.load(back).model().encode(tokens).mu(), "latents");
        }
    }

    @Test
    void aMissingTensorOrAShapeMismatchIsNamed() throws Exception {
        Path hf = dir.resolve("hf-bad");
        HuggingFaceLayout.export(calmRun, hf);
        Map<String, Tensor> t = new LinkedHashMap<>(SafeTensors.read(hf.resolve("model.safetensors")));
        t.remove("transformer.layers.1.self_attn.k_proj.weight");
        SafeTensors.write(hf.resolve("model.safetensors"), t, null);
        UserError missing = assertThrows(UserError.class, () -> HuggingFaceLayout.importDir(hf, dir.resolve("x1")));
        assertTrue(missing.getMessage().contains("transformer.layers.1.self_attn.k_proj.weight")
                && missing.getMessage().contains("[16, 32]"), missing.getMessage());

        t.put("transformer.layers.1.self_attn.k_proj.weight", torch.randn(32, 32));
        SafeTensors.write(hf.resolve("model.safetensors"), t, null);
        UserError shape = assertThrows(UserError.class, () -> HuggingFaceLayout.importDir(hf, dir.resolve("x2")));
        assertTrue(shape.getMessage().contains("has shape [32, 32], expected [16, 32]"), shape.getMessage());
        assertFalse(Files.exists(dir.resolve("x2")), "nothing is written for a bad import");
    }

    @Test
    void rmsNormUsesEpsilonOneInAMillion() {
        RMSNorm n = new RMSNorm(2);
        float[] y = new float[2];
        n.forward(Tensor.create(new float[] {3f, 4f}, 1, 2)).contiguous().data_ptr_float().get(y);
        double rms = Math.sqrt((9 + 16) / 2.0 + 1e-6);
        assertEquals(3 / rms, y[0], 1e-6);
        assertEquals(4 / rms, y[1], 1e-6);
    }

    @Test
    void rotaryEmbeddingRotatesHalvesAsLlamaDoes() {
        // head dim 4: frequencies theta^(-0/4) = 1 and theta^(-2/4) = 0.01; x = [1, 0, 0, 0] at position 1.
        // rotate_half(x) = [-x2, x1] = [0, 0, 1, 0], so y = x cos + rotate_half(x) sin = [cos 1, 0, sin 1, 0].
        RotaryEmbedding rope = new RotaryEmbedding(4, 8, 10000.0);
        float[] y = new float[4];
        rope.apply(Tensor.create(new float[] {1f, 0f, 0f, 0f}, 1, 1, 1, 4), 1).contiguous().data_ptr_float().get(y);
        assertArrayEquals(new float[] {(float) Math.cos(1), 0f, (float) Math.sin(1), 0f}, y, 1e-6f);
        float[] z = new float[4];
        rope.apply(Tensor.create(new float[] {0f, 1f, 0f, 0f}, 1, 1, 1, 4), 1).contiguous().data_ptr_float().get(z);
        assertArrayEquals(new float[] {0f, (float) Math.cos(0.01), 0f, (float) Math.sin(0.01)}, z, 1e-6f);
    }

    @Test
    void aTokenizerLargerThanTheModelVocabularyIsRefused() throws Exception {
        Path hf = dir.resolve("hf-tok");
        HuggingFaceLayout.export(calmRun, hf);
        String cfg = Files.readString(hf.resolve("config.json")).replace("\"vocab_size\" : 300", "\"vocab_size\" : 200");
        Files.writeString(hf.resolve("config.json"), cfg);
        UserError e = assertThrows(UserError.class, () -> HuggingFaceLayout.importDir(hf, dir.resolve("x3")));
        assertTrue(e.getMessage().contains("do not belong together") || e.getMessage().contains("shape"),
                e.getMessage());
    }
}
