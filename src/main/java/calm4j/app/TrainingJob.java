package calm4j.app;

import calm4j.engine.Configs;
import calm4j.train.TrainConfig;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What a training run is asked for, whichever model it trains: the prepared corpus, the run folder, an optional
 * config file with "model" and "train" sections (keys left out take the model's preset), and overrides.
 *
 * @param maxSteps    overrides train.max_steps (null: the config's)
 * @param evalBatches overrides train.eval_batches (null: the config's; the demo's smoke run uses fewer)
 * @param quiet       no progress bars
 * @param model       "model" keys set over the config file's (e.g. the demo's choice of head); empty: none
 */
public record TrainingJob(Path data, Path out, Path config, Long maxSteps, Integer evalBatches, boolean quiet,
                          Map<String, Object> model) {

    public TrainingJob(Path data, Path out, Path config, Long maxSteps, Integer evalBatches, boolean quiet) {
        this(data, out, config, maxSteps, evalBatches, quiet, Map.of());
    }

    public TrainingJob withMaxSteps(long steps) {
        return new TrainingJob(data, out, config, steps, evalBatches, quiet, model);
    }

    /** This job with "model" key {@code key} set to {@code value}, over what the config file says. */
    public TrainingJob withModelKey(String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>(model);
        m.put(key, value);
        return new TrainingJob(data, out, config, maxSteps, evalBatches, quiet, Map.copyOf(m));
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

    /** The "model" section over {@code defaults}, then this job's own model keys. */
    public <T> T model(T defaults, Class<T> type) {
        T fromFile = Configs.section(root(), "model", defaults, type, where());
        Object[] pairs = model.entrySet().stream().flatMap(e -> Stream.of(e.getKey(), e.getValue())).toArray();
        return pairs.length == 0 ? fromFile : Configs.with(fromFile, pairs);
    }

    /** The "train" section over {@code defaults}, with this job's overrides. */
    public TrainConfig train(TrainConfig defaults) {
        TrainConfig t = Configs.section(root(), "train", defaults, TrainConfig.class, where());
        if (evalBatches != null) t = t.withEvalBatches(evalBatches);
        return maxSteps != null ? t.withMaxSteps(maxSteps) : t;
    }
}
