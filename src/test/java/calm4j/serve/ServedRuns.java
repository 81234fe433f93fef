package calm4j.serve;

import calm4j.cli.Calm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Small trained runs to serve in tests: a CALM (with its autoencoder) and a token model, trained for a few steps. */
public final class ServedRuns {
    public final Path calm, tokenLm;

    private ServedRuns(Path calm, Path tokenLm) {
        this.calm = calm;
        this.tokenLm = tokenLm;
    }

    public static ServedRuns train(Path dir) throws IOException {
        Path corpus = calm4j.Fixtures.corpus(dir, 12, 3, 6);
        Path ae = dir.resolve("ae"), calm = dir.resolve("calm"), ar = dir.resolve("token-lm");
        Files.writeString(dir.resolve("ae.json"), "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, "
                + "\"latent_size\": 8}, \"train\": {\"max_steps\": 300, \"warmup_steps\": 20, \"lr\": 0.003, \"batch_size\": 32, \"eval_every\": 300, "
                + "\"eval_batches\": 1}}");
        Files.writeString(dir.resolve("calm.json"), "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, "
                + "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, "
                + "\"context_chunks\": 32, \"eval_block_chunks\": 8, \"num_mlp_layers\": 1, \"num_targets\": 8}, "
                + "\"train\": {\"max_steps\": 60, \"warmup_steps\": 10, \"batch_size\": 4, \"eval_every\": 60, \"eval_batches\": 1}}");
        Files.writeString(dir.resolve("ar.json"), "{\"model\": {\"hidden_size\": 32, \"intermediate_size\": 64, "
                + "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 2, "
                + "\"context_tokens\": 512, \"eval_block_tokens\": 32}, "
                + "\"train\": {\"max_steps\": 2, \"batch_size\": 2, \"eval_every\": 2, \"eval_batches\": 1}}");
        check(Calm.run("ae", "train", "--data", corpus.toString(), "--config", dir.resolve("ae.json").toString(),
                "--out", ae.toString(), "--quiet"));
        check(Calm.run("lm", "train", "--ae", ae.toString(), "--data", corpus.toString(), "--config",
                dir.resolve("calm.json").toString(), "--out", calm.toString(), "--quiet"));
        check(Calm.run("ar", "train", "--data", corpus.toString(), "--config", dir.resolve("ar.json").toString(),
                "--out", ar.toString(), "--quiet"));
        return new ServedRuns(calm, ar);
    }

    private static void check(int status) {
        if (status != 0) throw new IllegalStateException("training a run to serve failed with status " + status);
    }

    public static CompletionServer.Options options(int maxBatch, int queue, double timeoutSeconds) {
        return new CompletionServer.Options("127.0.0.1", 0, maxBatch, queue, 400, timeoutSeconds, 4096, 50, 50);
    }
}
