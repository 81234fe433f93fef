package calm4j.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Writes a prepared corpus straight from token ids, for tests that need an exactly known language. */
public final class SyntheticCorpus {
    private SyntheticCorpus() {}

    /** Documents are token ids without EOS (it is appended here, as preparation does). */
    public static Path write(Path out, int vocab, int eos, int pad, int mask, List<int[]> train, List<int[]> val)
            throws IOException {
        Files.createDirectories(out);
        Manifest.Split t = writeSplit(out, "train", train, eos), v = writeSplit(out, "val", val, eos);
        new Manifest(Manifest.FORMAT, "synthetic", vocab, eos, pad, mask, "uint16", t, v).write(out);
        return out;
    }

    private static Manifest.Split writeSplit(Path out, String name, List<int[]> docs, int eos) throws IOException {
        try (SplitWriter w = new SplitWriter(out, name, true, CorpusPreparer.SHARD_TOKENS)) {
            for (int[] d : docs) {
                int[] withEos = java.util.Arrays.copyOf(d, d.length + 1);
                withEos[d.length] = eos;
                w.add(withEos, true);
            }
            return w.finish();
        }
    }
}
