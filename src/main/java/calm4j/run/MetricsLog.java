package calm4j.run;

import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code metrics.jsonl}: one JSON object per line, each with "step" and "split" ("train" or "val"). */
public final class MetricsLog {
    public static final String FILE = "metrics.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;

    public MetricsLog(Path runDir) {
        this.file = runDir.resolve(FILE);
    }

    public void append(long step, String split, Map<String, Double> values) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("step", step);
        row.put("split", split);
        row.putAll(values);
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            w.write(JSON.writeValueAsString(row));
            w.write('\n');
        } catch (IOException e) {
            throw new UserError("could not append to " + file + ": " + e.getMessage());
        }
    }

    /** All rows; a torn last line (a crash mid-write) is ignored. */
    public static List<JsonNode> read(Path runDir) {
        Path f = runDir.resolve(FILE);
        List<JsonNode> rows = new ArrayList<>();
        if (!Files.exists(f)) return rows;
        try {
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                if (line.isBlank()) continue;
                try {
                    rows.add(JSON.readTree(line));
                } catch (IOException torn) {
                    // only the last line can be torn; it is dropped by truncateAfter on resume
                }
            }
        } catch (IOException e) {
            throw new UserError("cannot read " + f + ": " + e.getMessage());
        }
        return rows;
    }

    /** Drops rows logged after {@code step}: a resumed run re-logs them, so the curve has no duplicates. */
    public void truncateAfter(long step) {
        if (!Files.exists(file)) return;
        StringBuilder kept = new StringBuilder();
        for (JsonNode row : read(file.getParent())) {
            if (row.path("step").asLong() <= step) kept.append(row).append('\n');
        }
        try {
            Path tmp = file.resolveSibling(FILE + ".tmp");
            Files.writeString(tmp, kept.toString(), StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UserError("could not rewrite " + file + ": " + e.getMessage());
        }
    }
}
