package calm4j.app;

import calm4j.engine.Configs;
import calm4j.engine.Engine;
import calm4j.run.RunFolder;
import calm4j.train.DataParallel;
import calm4j.train.TrainConfig;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What a training run is asked for, whichever model it trains: the prepared corpus, the run folder, an optional
 * config file with "model" and "train" sections (keys left out take the model's preset), and overrides of either
 * section's keys, named as in the JSON files.
 *
 * @param quiet no progress bars
 * @param model "model" keys set over the config file's (e.g. the demo's choice of head); empty: none
 * @param train "train" keys set over the config file's (e.g. {@code max_steps} from the command line); empty: none
 */
public record TrainingJob(Path data, Path out, Path config, boolean quiet, Map<String, Object> model,
                          Map<String, Object> train) {

    public TrainingJob(Path data, Path out, Path config, boolean quiet) {
        this(data, out, config, quiet, Map.of(), Map.of());
    }

    /** This job with train.max_steps set to {@code steps}. */
    public TrainingJob withMaxSteps(long steps) {
        return withTrainKey("max_steps", steps);
    }

    /** This job with "model" key {@code key} set to {@code value}, over what the config file says. */
    public TrainingJob withModelKey(String key, Object value) {
        return new TrainingJob(data, out, config, quiet, put(model, key, value), train);
    }

    /** This job with "train" key {@code key} set to {@code value}, over what the config file says. */
    public TrainingJob withTrainKey(String key, Object value) {
        return new TrainingJob(data, out, config, quiet, model, put(train, key, value));
    }

    /**
     * Creates this job's run folder, or checks it to resume, on the rank that writes (the others wait until it is
     * there), then seeds every rank alike: what each model's training does before it builds the model.
     *
     * @param sections  the config.json sections besides "train" ("model", and what else the kind records)
     * @param tokenizer the tokenizer.json the run keeps a copy of
     */
    public void openRun(String kind, Map<String, Object> sections, TrainConfig train, Path tokenizer,
                        DataParallel dist) {
        if (dist.isWriter()) RunFolder.createOrResume(out, kind, sections, train, tokenizer);
        dist.barrier();
        Engine.seed(train.seed());
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
        return with(Configs.section(root(), "model", defaults, type, where()), model);
    }

    /** The "train" section over {@code defaults}, then this job's own train keys. */
    public TrainConfig train(TrainConfig defaults) {
        return with(Configs.section(root(), "train", defaults, TrainConfig.class, where()), train);
    }

    private static Map<String, Object> put(Map<String, Object> keys, String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>(keys);
        m.put(key, value);
        return Map.copyOf(m);
    }

    private static <T> T with(T section, Map<String, Object> keys) {
        if (keys.isEmpty()) return section;
        return Configs.with(section, keys.entrySet().stream().flatMap(e -> Stream.of(e.getKey(), e.getValue()))
                .toArray());
    }
}
