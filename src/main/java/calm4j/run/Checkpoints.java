package calm4j.run;

import calm4j.engine.Folders;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import calm4j.io.TorchArchive;
import calm4j.loader.LoaderState;
import calm4j.nn.Layers;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.ArchiveWriter;
import org.bytedeco.pytorch.InputArchive;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Optimizer;
import org.bytedeco.pytorch.OutputArchive;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * A run's checkpoints: {@code RUN/checkpoints/step-NNNNNNNN/} holding {@code model.pt} and {@code optimizer.pt}
 * (libtorch archives) and {@code state.json} (step, data position, checksums of the two archives).
 *
 * <p>A checkpoint is written into a temporary folder, every file is fsynced, and the folder is renamed into place;
 * only then are old checkpoints beyond {@code keep} deleted. A crash at any point leaves the previous checkpoint
 * intact, and a half-written folder never has a name that {@link #latest} would pick.
 */
public final class Checkpoints {
    static final String DIR = "checkpoints";
    static final String PREFIX = "step-";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a checkpoint records besides the tensors. */
    public record State(long step, LoaderState loader, long tokensSeen, double trainSeconds,
                        Map<String, String> sha256) {}

    private final Path dir;
    private final int keep;

    public Checkpoints(Path runDir, int keep) {
        this.dir = runDir.resolve(DIR);
        this.keep = keep;
    }

    public Path save(State state, Module model, Optimizer optimizer) {
        String name = String.format("%s%08d", PREFIX, state.step());
        Path target = dir.resolve(name);
        Path tmp = dir.resolve(".tmp-" + name);
        try {
            Files.createDirectories(dir);
            Folders.delete(tmp);
            Files.createDirectories(tmp);
            OutputArchive m = new OutputArchive();
            LibtorchErrors.guard("saving checkpoint " + target, () -> model.save(m));
            writeArchive(m, tmp.resolve("model.pt"));
            OutputArchive o = new OutputArchive();
            LibtorchErrors.guard("saving checkpoint " + target, () -> optimizer.save(o));
            writeArchive(o, tmp.resolve("optimizer.pt"));
            State withSums = new State(state.step(), state.loader(), state.tokensSeen(), state.trainSeconds(),
                    Map.of("model.pt", sha256(tmp.resolve("model.pt")),
                            "optimizer.pt", sha256(tmp.resolve("optimizer.pt"))));
            JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve("state.json").toFile(), withSums);
            for (String f : List.of("model.pt", "optimizer.pt", "state.json")) fsync(tmp.resolve(f));
            fsync(tmp);
            if (Files.exists(target)) Folders.delete(target); // re-saving the same step after a resume
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            fsync(dir);
        } catch (IOException e) {
            Folders.delete(tmp);
            throw new UserError("could not write checkpoint " + target + ": " + e.getMessage()
                    + " (the previous checkpoint is untouched)");
        }
        prune();
        return target;
    }

    /**
     * Writes weights alone as the checkpoint of {@code step} (an imported model): no optimizer state, so training
     * from it starts a fresh optimizer, and the data from the start.
     */
    public static Path saveWeights(Path runDir, long step, Module model) {
        Path dir = runDir.resolve(DIR);
        String name = String.format("%s%08d", PREFIX, step);
        Path tmp = dir.resolve(".tmp-" + name), target = dir.resolve(name);
        try {
            Files.createDirectories(tmp);
            OutputArchive m = new OutputArchive();
            LibtorchErrors.guard("saving " + target, () -> model.save(m));
            writeArchive(m, tmp.resolve("model.pt"));
            State state = new State(step, LoaderState.START, 0, 0, Map.of("model.pt", sha256(tmp.resolve("model.pt"))));
            JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve("state.json").toFile(), state);
            for (String f : List.of("model.pt", "state.json")) fsync(tmp.resolve(f));
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            return target;
        } catch (IOException e) {
            Folders.delete(tmp);
            throw new UserError("could not write " + target + ": " + e.getMessage());
        }
    }

    /**
     * Writes an archive through Java's file API. libtorch's own file writer turns a failed write (a full disk) into
     * an exception it raises where it cannot be caught, which aborts the JVM; here every byte is accepted from
     * libtorch and the first I/O error is thrown afterwards, as an ordinary IOException.
     */
    static void writeArchive(OutputArchive archive, Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            IOException[] failure = {null};
            ArchiveWriter writer = new ArchiveWriter() {
                @Override
                public long call(Pointer data, long size) {
                    if (failure[0] != null) return size;
                    try {
                        ByteBuffer bytes = new BytePointer(data).position(0).capacity(size).limit(size)
                                .asByteBuffer();
                        while (bytes.hasRemaining()) ch.write(bytes);
                    } catch (IOException e) {
                        failure[0] = e;
                    }
                    return size; // a short count would make libtorch abort; the failure is reported below
                }
            };
            try {
                LibtorchErrors.guard("writing " + file, () -> archive.save_to(writer));
            } finally {
                writer.close();
            }
            if (failure[0] != null) throw failure[0];
        }
    }

    /**
     * Deletes complete checkpoints beyond the newest {@code keep}, then folders of earlier steps that are not
     * complete: a kill during pruning (state.json goes first) or during a write leaves them, and nothing else would
     * ever remove them.
     */
    void prune() {
        List<Path> all = list();
        for (int i = 0; i < all.size() - keep; i++) Folders.delete(all.get(i));
        if (all.isEmpty()) return;
        String newest = all.get(all.size() - 1).getFileName().toString();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) {
                String name = p.getFileName().toString();
                String step = name.startsWith(".tmp-") ? name.substring(".tmp-".length()) : name;
                boolean incomplete = !Files.exists(p.resolve("state.json")) || name.startsWith(".tmp-");
                if (step.startsWith(PREFIX) && incomplete && step.compareTo(newest) < 0) Folders.delete(p);
            }
        } catch (IOException e) {
            throw new UserError("cannot list " + dir + ": " + e.getMessage());
        }
    }

    /** Complete checkpoints, oldest first. */
    public List<Path> list() {
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith(PREFIX))
                    .filter(p -> Files.exists(p.resolve("state.json")))
                    .sorted(Comparator.comparing(p -> p.getFileName().toString()))
                    .toList();
        } catch (IOException e) {
            throw new UserError("cannot list " + dir + ": " + e.getMessage());
        }
    }

    public Optional<Path> latest() {
        List<Path> all = list();
        return all.isEmpty() ? Optional.empty() : Optional.of(all.get(all.size() - 1));
    }

    /** Reads and verifies {@code state.json} of a checkpoint: both archives must match their recorded checksums. */
    public static State verify(Path checkpoint) {
        State state;
        try {
            state = JSON.readValue(checkpoint.resolve("state.json").toFile(), State.class);
        } catch (IOException e) {
            throw corrupt(checkpoint, "state.json is unreadable (" + e.getMessage().split("\n")[0] + ")");
        }
        for (var e : state.sha256().entrySet()) {
            Path f = checkpoint.resolve(e.getKey());
            if (!Files.isRegularFile(f)) throw corrupt(checkpoint, e.getKey() + " is missing");
            if (!sha256(f).equals(e.getValue())) {
                throw corrupt(checkpoint, e.getKey() + " does not match its checksum (truncated or changed)");
            }
        }
        return state;
    }

    private static UserError corrupt(Path checkpoint, String why) {
        return new UserError("checkpoint " + checkpoint + " is corrupt: " + why + ". Delete that folder to fall "
                + "back to the previous checkpoint, or start a new run.");
    }

    /** Loads a verified checkpoint's weights into {@code model} (and optimizer state, if given). */
    public static State load(Path checkpoint, Module model, Optimizer optimizerOrNull) {
        State state = verify(checkpoint);
        // The checksums catch damage; a file forged with matching ones must still not make libtorch read past a
        // record: every tensor's extent is checked against its storage first.
        TorchArchive.verify(checkpoint.resolve("model.pt"));
        if (optimizerOrNull != null && state.sha256().containsKey("optimizer.pt")) {
            TorchArchive.verify(checkpoint.resolve("optimizer.pt"));
        }
        List<String> missing = new ArrayList<>();
        LibtorchErrors.guard("loading checkpoint " + checkpoint, () -> {
            InputArchive m = new InputArchive();
            m.load_from(checkpoint.resolve("model.pt").toString());
            readInto(model, m, "", missing);
        });
        for (String name : missing) {
            if (!name.endsWith("squeeze_layer.bias") && !name.endsWith("expand_layer.bias")) {
                throw corrupt(checkpoint, "model.pt has no tensor " + name);
            }
        }
        if (!missing.isEmpty()) {
            // Runs saved before the autoencoder's squeeze and expand layers had biases (the authors' layers do):
            // a zero bias is exactly the model they trained.
            try (NoGradGuard ng = new NoGradGuard()) {
                Layers.namedParameters(model).forEach((name, t) -> {
                    if (missing.contains(name)) t.zero_();
                });
            }
            System.err.println("note: " + checkpoint + " was saved before the autoencoder's squeeze and expand "
                    + "layers had biases: they are zero, which is the model it saved"
                    + (optimizerOrNull != null ? "; its optimizer state starts afresh" : ""));
            return state;
        }
        if (optimizerOrNull != null && state.sha256().containsKey("optimizer.pt")) {
            LibtorchErrors.guard("loading checkpoint " + checkpoint, () -> {
                InputArchive o = new InputArchive();
                o.load_from(checkpoint.resolve("optimizer.pt").toString());
                optimizerOrNull.load(o);
            });
        }
        return state;
    }

    /**
     * Reads a module's parameters and buffers from its archive, as Module.load does, but collects the names the
     * archive lacks instead of failing at the first.
     */
    private static void readInto(Module module, InputArchive archive, String prefix, List<String> missing) {
        var params = module.named_parameters(false);
        for (long i = 0; i < params.size(); i++) {
            String name = params.get(i).key().getString();
            if (!archive.try_read(name, params.get(i).value(), false)) missing.add(prefix + name);
        }
        var buffers = module.named_buffers(false);
        for (long i = 0; i < buffers.size(); i++) {
            String name = buffers.get(i).key().getString();
            if (!archive.try_read(name, buffers.get(i).value(), true)) missing.add(prefix + name);
        }
        var children = module.named_children();
        for (long i = 0; i < children.size(); i++) {
            String name = children.get(i).key().getString();
            InputArchive sub = new InputArchive();
            if (archive.try_read(name, sub)) {
                readInto(children.get(i).value(), sub, prefix + name + ".", missing);
            } else {
                for (String n : Layers.namedParameters(children.get(i).value()).keySet()) {
                    missing.add(prefix + name + "." + n);
                }
            }
        }
    }

    /**
     * Loads the newest complete checkpoint of {@code runDir} into {@code model} (no optimizer): what a reader of a
     * run does (generate, evaluate, serve). A training process of the same run may prune a checkpoint between this
     * reader's listing and its reading; then the next newest is taken, a few times over, instead of failing.
     */
    public static State loadLatest(Path runDir, Module model) {
        for (int attempt = 1; ; attempt++) {
            Path ckpt;
            try {
                ckpt = latestOf(runDir);
            } catch (UserError e) {
                // A listing made while training renames a new checkpoint in and prunes the previous one can see
                // neither (a directory lists in hash order, not by age): list again before saying there is none.
                if (attempt == 10 || !Files.isDirectory(runDir.resolve(DIR))) throw e;
                pause(10);
                continue;
            }
            try {
                return load(ckpt, model, null);
            } catch (UserError e) {
                if (Files.exists(ckpt.resolve("state.json")) || attempt == 10) throw e;
                // pruned while being read: a newer checkpoint has been written, take that one
            }
        }
    }

    private static void pause(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Folders that look like a checkpoint of {@code runDir} but are not complete (no state.json), named for the
     * message that refuses to start such a run afresh: they may hold its weights.
     */
    public List<Path> incomplete() {
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().startsWith(PREFIX))
                    .filter(p -> !Files.exists(p.resolve("state.json"))).sorted().toList();
        } catch (IOException e) {
            throw new UserError("cannot list " + dir + ": " + e.getMessage());
        }
    }

    /** The newest checkpoint of a run, or a clear error. */
    public static Path latestOf(Path runDir) {
        if (!Files.isDirectory(runDir)) throw new UserError("run " + runDir + " does not exist");
        return new Checkpoints(runDir, 1).latest().orElseThrow(() -> new UserError(
                "run " + runDir + " has no checkpoint yet (no " + DIR + "/" + PREFIX + "*): train it first"));
    }

    static String sha256(Path file) {
        try (InputStream in = new DigestInputStream(Files.newInputStream(file),
                MessageDigest.getInstance("SHA-256"))) {
            byte[] buf = new byte[1 << 16];
            while (in.read(buf) >= 0) { /* digest as we read */ }
            return HexFormat.of().formatHex(((DigestInputStream) in).getMessageDigest().digest());
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void fsync(Path p) throws IOException {
        if (Files.isDirectory(p)) {
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                ch.force(true);
            } catch (IOException ignored) {
                // some filesystems refuse to fsync a directory; the file fsyncs above still hold
            }
            return;
        }
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }
}
