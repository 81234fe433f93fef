package calm4j.run;

import calm4j.engine.Configs;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;

/**
 * A run folder: {@code config.json} ({"kind", "model", "train"}), the {@code tokenizer.json} it was trained with,
 * {@code checkpoints/}, {@code metrics.jsonl} and {@code plots/}. Everything needed to use the model is inside.
 */
public final class RunFolder {
    public static final String CONFIG = "config.json";
    public static final String TOKENIZER = "tokenizer.json";

    private RunFolder() {}

    /**
     * Creates the run, or checks that an existing one was made for the same kind, model and tokenizer (a resume).
     * {@code sections} are the model's configs ("model", and for a CALM its "autoencoder"); the "train" section is
     * rewritten, so a resumed run can be given more steps. A folder whose earlier attempt stopped before its first
     * checkpoint has nothing to resume: it is set up afresh with what is given now, and the message says so.
     * {@code train} is the training settings record (written as it serialises to JSON).
     */
    public static void createOrResume(Path run, String kind, Map<String, Object> sections, Record train,
                                      Path tokenizer) {
        ObjectNode root = Configs.JSON.createObjectNode();
        root.put("kind", kind);
        sections.forEach((name, value) -> root.set(name, Configs.JSON.valueToTree(value)));
        root.set("train", Configs.JSON.valueToTree(train));
        try (RunLock lock = RunLock.acquire(run)) { // refused at once if another process trains this run
            boolean resumable = Files.isRegularFile(run.resolve(CONFIG))
                    && new Checkpoints(run, 1).latest().isPresent();
            if (resumable) {
                JsonNode old = Configs.readTree(run.resolve(CONFIG));
                String difference = old.path("kind").asText().equals(kind) ? null
                        : "it is a " + old.path("kind").asText() + " run";
                for (String name : sections.keySet()) {
                    if (difference == null) difference = difference(name, old.path(name), root.get(name));
                }
                if (difference != null) {
                    throw new UserError("run " + run + " exists with a different " + old.path("kind").asText()
                            + " model config (" + difference + "): choose a new run folder, or resume with the same "
                            + "config");
                }
                Path had = run.resolve(TOKENIZER);
                if (Files.isRegularFile(had) && Files.mismatch(had, tokenizer) != -1) {
                    throw new UserError("run " + run + " was trained with another tokenizer than " + tokenizer
                            + ": its token ids mean other things; resume it on a corpus prepared with "
                            + had + ", or choose a new run folder");
                }
            } else {
                List<Path> damaged = new Checkpoints(run, 1).incomplete();
                if (!damaged.isEmpty()) {
                    throw new UserError("run " + run + " has no complete checkpoint, but " + damaged.get(
                            damaged.size() - 1) + " lacks its state.json (damaged or cut short): it may hold the "
                            + "run's weights, so nothing was changed. Restore that state.json, or move the folder "
                            + "out of " + run.resolve(Checkpoints.DIR) + " to start the run afresh.");
                }
                if (Files.isRegularFile(run.resolve(CONFIG))) {
                    // An earlier attempt stopped before its first checkpoint: start afresh, its log kept aside.
                    Path log = run.resolve(MetricsLog.FILE);
                    String kept = "";
                    if (Files.exists(log)) {
                        Path aside = run.resolve(MetricsLog.FILE + ".before-" + System.currentTimeMillis());
                        Files.move(log, aside);
                        kept = " (its metrics so far kept as " + aside.getFileName() + ")";
                    }
                    System.err.println("run " + run + " has a config but no checkpoint (an earlier attempt stopped "
                            + "before its first): starting it afresh" + kept);
                }
                Files.createDirectories(run);
                Files.copy(tokenizer, run.resolve(TOKENIZER), StandardCopyOption.REPLACE_EXISTING);
            }
            Configs.write(run.resolve(CONFIG), root);
        } catch (IOException e) {
            throw new UserError("cannot set up run folder " + run + ": " + e.getMessage());
        }
    }

    /**
     * How section {@code name} of an existing run differs from the one given now, or null if it does not. A key the
     * run lacks is no difference: a later calm4j added it, and the value given now applies from here on.
     */
    private static String difference(String name, JsonNode old, JsonNode now) {
        if (!old.isObject()) return "it has no \"" + name + "\" section";
        for (var it = old.fields(); it.hasNext(); ) {
            var e = it.next();
            if (!e.getValue().equals(now.get(e.getKey()))) {
                return name + "." + e.getKey() + " is " + e.getValue() + " there, " + now.get(e.getKey()) + " now";
            }
        }
        return null;
    }

    /** The config of a run, checked to be of {@code kind} (any kind when null). */
    public static JsonNode config(Path run, String kind) {
        if (!Files.isRegularFile(run.resolve(CONFIG))) {
            throw new UserError(run + " is not a calm4j run (no " + CONFIG + ")");
        }
        JsonNode root = Configs.readTree(run.resolve(CONFIG));
        if (kind != null && !root.path("kind").asText().equals(kind)) {
            throw new UserError(run + " is a " + root.path("kind").asText("unknown") + " run, not " + kind);
        }
        return root;
    }
}
