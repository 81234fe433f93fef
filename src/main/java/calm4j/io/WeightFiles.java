package calm4j.io;

import calm4j.engine.Configs;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The weights of a Hugging Face model folder, however they are stored: {@code model.safetensors} or
 * {@code pytorch_model.bin}, or their shards listed by {@code model.safetensors.index.json} /
 * {@code pytorch_model.bin.index.json}.
 */
public final class WeightFiles {
    public static final String SAFETENSORS = "model.safetensors";
    public static final String PYTORCH_BIN = "pytorch_model.bin";
    /** The index files a sharded folder may have, in the order they are looked for. */
    public static final List<String> INDEXES = List.of(SAFETENSORS + ".index.json", PYTORCH_BIN + ".index.json");

    private WeightFiles() {}

    /** Every tensor of the folder {@code dir}, by name; floating tensors come back as float32. */
    public static Map<String, Tensor> read(Path dir) {
        for (String index : INDEXES) {
            Path indexFile = dir.resolve(index);
            if (Files.isRegularFile(indexFile)) return readShards(dir, indexFile);
        }
        for (String single : List.of(SAFETENSORS, PYTORCH_BIN)) {
            if (Files.isRegularFile(dir.resolve(single))) return StateDict.readFile(dir.resolve(single));
        }
        throw new UserError(dir + " holds no weights: expected " + SAFETENSORS + ", " + PYTORCH_BIN
                + " or a sharded set with its .index.json");
    }

    /** The shard files an index's {@code weight_map} names, each once, sorted. */
    public static Set<String> shards(Path indexFile) {
        return shardsOf(weightMap(indexFile));
    }

    private static JsonNode weightMap(Path indexFile) {
        JsonNode map = Configs.readTree(indexFile).path("weight_map");
        if (!map.isObject() || map.isEmpty()) throw new UserError(indexFile + " has no \"weight_map\"");
        return map;
    }

    private static Set<String> shardsOf(JsonNode map) {
        Set<String> shards = new TreeSet<>();
        map.fields().forEachRemaining(e -> shards.add(e.getValue().asText()));
        return shards;
    }

    /** The shards an index's {@code weight_map} names, each inside {@code dir}, holding every tensor it lists. */
    private static Map<String, Tensor> readShards(Path dir, Path indexFile) {
        JsonNode map = weightMap(indexFile);
        Map<String, Tensor> all = new LinkedHashMap<>();
        for (String shard : shardsOf(map)) {
            Path f = dir.resolve(shard).normalize();
            if (!f.startsWith(dir.normalize()) || !Files.isRegularFile(f)) {
                throw new UserError(indexFile + " names the shard " + shard + ", which is not in " + dir);
            }
            all.putAll(StateDict.readFile(f));
        }
        for (var it = map.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (!all.containsKey(name)) {
                throw new UserError(indexFile + " lists tensor " + name + " in " + map.get(name).asText()
                        + ", which does not hold it");
            }
        }
        return all;
    }
}
