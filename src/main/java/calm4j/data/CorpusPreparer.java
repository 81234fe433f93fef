package calm4j.data;

import calm4j.engine.Folders;
import calm4j.engine.Progress;
import calm4j.engine.UserError;
import calm4j.tokenize.Tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Turns text into a prepared corpus: documents are tokenized in parallel (in order-preserving batches, so the output
 * is the same for any thread count), EOS is appended to each, and the ids are streamed to token shards.
 *
 * <p>Everything is written under a temporary sibling folder that is renamed to {@code out} only when complete, so an
 * interrupted or failed run never leaves something that looks like a corpus.
 */
public final class CorpusPreparer {
    /** Documents tokenized per parallel batch: large enough to keep every worker busy, small enough to stream. */
    static final int BATCH = 64;
    static final long SHARD_TOKENS = 1L << 26;

    /** How the held-out split is chosen. */
    public sealed interface Holdout permits ValInputs, ValFraction {
        /** The documents of {@code valInputs} when given (warnings to {@code warn}), else {@code fraction}. */
        static Holdout of(List<Path> valInputs, Double fraction, Consumer<Documents.Warning> warn) {
            return valInputs != null ? new ValInputs(Documents.of(valInputs, warn)) : new ValFraction(fraction);
        }
    }

    /** Validation documents come from separate inputs. */
    public record ValInputs(Documents documents) implements Holdout {}

    /** A fraction of whole documents, picked by a hash of the document's source name (stable across runs). */
    public record ValFraction(double fraction) implements Holdout {
        public ValFraction {
            if (!(fraction > 0 && fraction < 1)) {
                throw UserError.badValue("val_fraction", "must lie in (0, 1), got " + fraction);
            }
        }

        boolean isVal(String source) {
            long h = 1125899906842597L;
            for (byte b : source.getBytes(StandardCharsets.UTF_8)) h = 31 * h + b;
            h ^= (h >>> 33);
            h *= 0xff51afd7ed558ccdL;
            h ^= (h >>> 33);
            return (double) (h >>> 11) / (1L << 53) < fraction;
        }
    }

    public record Result(Manifest manifest, double seconds) {
        public double tokensPerSecond() {
            return (manifest.train().tokens() + manifest.val().tokens()) / seconds;
        }

        /** One line: what the corpus in {@code out} holds and how fast it was prepared. */
        public String summary(Path out) {
            Manifest m = manifest;
            return String.format("prepared %s: train %,d documents / %,d tokens, val %,d documents / %,d tokens "
                    + "(%s, vocabulary %d) in %.1f s, %,.0f tokens/s", out, m.train().documents(), m.train().tokens(),
                    m.val().documents(), m.val().tokens(), m.dtype(), m.vocabSize(), seconds, tokensPerSecond());
        }
    }

    private final Tokenizer tokenizer;
    private final int threads;
    private final boolean quiet;

    public CorpusPreparer(Tokenizer tokenizer, int threads, boolean quiet) {
        this.tokenizer = tokenizer;
        this.threads = Math.max(1, threads);
        this.quiet = quiet;
    }

    public Result prepare(Documents train, Holdout holdout, Path out) {
        if (Files.exists(out)) {
            throw new UserError(out + " already exists: remove it or choose another output folder (nothing was "
                    + "changed)");
        }
        Path abs = out.toAbsolutePath();
        removeStalePartials(abs);
        Path tmp = abs.resolveSibling(abs.getFileName() + ".partial-" + ProcessHandle.current().pid());
        long t0 = System.nanoTime();
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "tokenize");
            t.setDaemon(true);
            return t;
        });
        boolean uint16 = tokenizer.vocabSize() <= 65536;
        try (Progress bar = Progress.start("prepare", -1, 0, "docs", quiet)) {
            Files.createDirectories(tmp);
            Manifest.Split trainSplit, valSplit;
            try (SplitWriter tw = new SplitWriter(tmp, "train", uint16, SHARD_TOKENS);
                 SplitWriter vw = new SplitWriter(tmp, "val", uint16, SHARD_TOKENS)) {
                Counter counter = new Counter(bar, t0);
                if (holdout instanceof ValInputs v) {
                    write(train, d -> tw, pool, counter);
                    write(v.documents(), d -> vw, pool, counter);
                } else {
                    ValFraction f = (ValFraction) holdout;
                    write(train, d -> f.isVal(d.source()) ? vw : tw, pool, counter);
                }
                trainSplit = tw.finish();
                valSplit = vw.finish();
            }
            if (trainSplit.documents() == 0) {
                throw new UserError(holdout instanceof ValInputs
                        ? "the training split is empty: the training inputs hold no non-blank documents (the "
                        + valSplit.documents() + " held-out document(s) come from the validation inputs)"
                        : valSplit.documents() == 0
                        ? "the training split is empty: the inputs hold no non-blank documents"
                        : "the training split is empty: all " + valSplit.documents() + " document(s) were held out "
                        + "(the validation fraction holds out whole documents): give more documents, a smaller "
                        + "validation fraction, or the held-out text as validation inputs");
            }
            if (valSplit.documents() == 0) {
                throw new UserError("the validation split is empty: give validation inputs, or raise the validation "
                        + "fraction (documents are held out whole, and there are only " + trainSplit.documents() + ")");
            }
            Manifest m = new Manifest(Manifest.FORMAT, tokenizer.sha256(), tokenizer.vocabSize(), tokenizer.eosId(),
                    tokenizer.padIdOrMinusOne(), tokenizer.maskIdOrMinusOne(), uint16 ? "uint16" : "int32",
                    trainSplit, valSplit);
            m.write(tmp);
            Files.copy(tokenizer.path(), tmp.resolve("tokenizer.json"), StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE);
            return new Result(m, (System.nanoTime() - t0) / 1e9);
        } catch (IOException e) {
            throw new UserError("could not write the corpus under " + tmp + ": " + e.getMessage());
        } finally {
            pool.shutdownNow();
            Folders.deleteQuietly(tmp);
        }
    }

    private final class Counter {
        final Progress bar;
        final long t0;
        long docs, tokens;

        Counter(Progress bar, long t0) {
            this.bar = bar;
            this.t0 = t0;
        }

        void add(int[] ids, boolean endsDocument) {
            tokens += ids.length;
            if (!endsDocument) return;
            docs++;
            bar.step(1);
            if (docs % 16 == 0) {
                double s = (System.nanoTime() - t0) / 1e9;
                bar.message(String.format(" %,d tokens, %,.0f tok/s", tokens, tokens / s));
            }
        }
    }

    private interface Route {
        SplitWriter of(Documents.Document d);
    }

    private void write(Documents docs, Route route, ExecutorService pool, Counter counter) throws IOException {
        int eos = tokenizer.eosId();
        Iterator<Documents.Document> it = docs.iterator();
        while (it.hasNext()) {
            List<Documents.Document> batch = new ArrayList<>(BATCH);
            while (it.hasNext() && batch.size() < BATCH) batch.add(it.next());
            List<Future<int[]>> futures = new ArrayList<>(batch.size());
            for (Documents.Document d : batch) {
                futures.add(pool.submit(() -> {
                    int[] ids = tokenizer.encode(d.text());
                    return d.last() ? withEos(ids, eos) : ids; // a long document's pieces: EOS after the last
                }));
            }
            for (int i = 0; i < batch.size(); i++) {
                Documents.Document d = batch.get(i);
                int[] ids = get(futures.get(i), d);
                route.of(d).add(ids, d.last());
                counter.add(ids, d.last());
            }
        }
    }

    private static int[] withEos(int[] ids, int eos) {
        int[] out = Arrays.copyOf(ids, ids.length + 1);
        out[ids.length] = eos;
        return out;
    }

    private static int[] get(Future<int[]> f, Documents.Document d) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while tokenizing " + d.source());
        } catch (ExecutionException e) {
            throw new UserError("tokenizing " + d.source() + " failed: " + e.getCause().getMessage());
        }
    }

    /**
     * Removes {@code out.partial-PID} folders whose process is gone: a preparation that was killed leaves one, and
     * nothing else would ever remove it. A folder of a live process (a preparation running now) is left alone.
     */
    static void removeStalePartials(Path out) {
        String prefix = out.getFileName() + ".partial-";
        Path parent = out.getParent();
        if (parent == null || !Files.isDirectory(parent)) return;
        try (Stream<Path> s = Files.list(parent)) {
            for (Path p : s.toList()) {
                String name = p.getFileName().toString();
                if (!name.startsWith(prefix)) continue;
                long pid;
                try {
                    pid = Long.parseLong(name.substring(prefix.length()));
                } catch (NumberFormatException e) {
                    continue; // not one of ours
                }
                if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) continue;
                Folders.deleteQuietly(p);
                System.err.println("removed " + p + ", left by a preparation (process " + pid + ") that was stopped");
            }
        } catch (IOException e) {
            // a leftover folder is clutter, not a reason to stop
        }
    }
}
