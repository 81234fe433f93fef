package calm4j.app;

import calm4j.engine.Configs;
import calm4j.train.TrainConfig;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.List;

/**
 * What a training run is asked for, whichever model it trains: the prepared corpus, the run folder, an optional
 * config file with "model" and "train" sections (keys left out take the model's preset), and overrides.
 *
 * @param maxSteps    overrides train.max_steps (null: the config's)
 * @param evalBatches overrides train.eval_batches (null: the config's; the demo's smoke run uses fewer)
 * @param quiet       no progress bars
 */
public record TrainingJob(Path data, Path out, Path config, Long maxSteps, Integer evalBatches, boolean quiet) {

    /** The job with nothing but the corpus and the run folder given. */
    public static TrainingJob of(Path data, Path out) {
        return new TrainingJob(data, out, null, null, null, true);
    }

    public TrainingJob withMaxSteps(long steps) {
        return new TrainingJob(data, out, config, steps, evalBatches, quiet);
    }

    /** The config file's JSON (an empty object without one); an unknown section is refused. */
    public JsonNode root() {
        if (config == null) return Configs.JSON.createObjectNode();
        JsonNode root = Configs.readTree(config);
        Configs.requireSections(root, List.of("model", "train"), where());
        return root;
    }

    /** Where the config came from, for messages. */
    public String where() {
        return config != null ? config.toString() : "default config";
    }

    /** The "model" section over {@code defaults}. */
    public <T> T model(T defaults, Class<T> type) {
        return Configs.section(root(), "model", defaults, type, where());
    }

    /** The "train" section over {@code defaults}, with this job's overrides. */
    public TrainConfig train(TrainConfig defaults) {
        TrainConfig t = Configs.section(root(), "train", defaults, TrainConfig.class, where());
        if (evalBatches != null) t = t.withEvalBatches(evalBatches);
        return maxSteps != null ? t.withMaxSteps(maxSteps) : t;
    }
}
