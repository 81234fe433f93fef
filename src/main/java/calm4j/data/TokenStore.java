package calm4j.data;

import calm4j.engine.UserError;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/**
 * One split of a prepared corpus, memory-mapped: the token shards and the document index.
 * Reading never loads the corpus into the heap; the OS pages it in as loaders touch it.
 */
public final class TokenStore {
    static final String DOCS_FILE = "docs.bin";

    private final Manifest manifest;
    private final MappedByteBuffer[] shards;
    private final long[] shardStart; // global token offset of each shard, plus the total at the end
    private final LongBuffer docStarts; // documents + 1 offsets
    private final long documents;
    private final int bytesPerToken;

    private TokenStore(Manifest manifest, MappedByteBuffer[] shards, long[] shardStart, LongBuffer docStarts,
                       long documents) {
        this.manifest = manifest;
        this.shards = shards;
        this.shardStart = shardStart;
        this.docStarts = docStarts;
        this.documents = documents;
        this.bytesPerToken = manifest.bytesPerToken();
    }

    public static TokenStore open(Path corpus, String splitName) {
        Manifest m = Manifest.read(corpus);
        Manifest.Split split = m.split(splitName);
        if (split == null || split.documents() == 0) {
            throw new UserError("corpus " + corpus + " has no " + splitName + " documents");
        }
        Path dir = corpus.resolve(split.name());
        int n = split.shards().size();
        MappedByteBuffer[] shards = new MappedByteBuffer[n];
        long[] starts = new long[n + 1];
        try {
            for (int i = 0; i < n; i++) {
                Manifest.Shard s = split.shards().get(i);
                shards[i] = map(dir.resolve(s.file()), s.tokens() * m.bytesPerToken());
                starts[i + 1] = starts[i] + s.tokens();
            }
            MappedByteBuffer docs = map(dir.resolve(DOCS_FILE), (split.documents() + 1) * 8);
            LongBuffer docStarts = docs.order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
            if (starts[n] != split.tokens() || docStarts.get((int) split.documents()) != split.tokens()) {
                throw new UserError("corpus " + corpus + " split " + splitName
                        + " is inconsistent with its manifest: prepare it again");
            }
            return new TokenStore(m, shards, starts, docStarts, split.documents());
        } catch (IOException e) {
            throw new UserError("cannot read corpus " + corpus + ": " + e.getMessage());
        }
    }

    private static MappedByteBuffer map(Path file, long expectedBytes) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() != expectedBytes) {
                throw new UserError(file + " has " + ch.size() + " bytes, the manifest says " + expectedBytes
                        + ": the corpus is truncated or was changed; prepare it again");
            }
            MappedByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, 0, expectedBytes);
            buf.order(ByteOrder.LITTLE_ENDIAN);
            return buf;
        }
    }

    public Manifest manifest() {
        return manifest;
    }

    public long tokens() {
        return shardStart[shardStart.length - 1];
    }

    public long documents() {
        return documents;
    }

    /** First token of document {@code d}. */
    public long docStart(long d) {
        return docStarts.get((int) d);
    }

    /** One past the last token (its EOS) of document {@code d}. */
    public long docEnd(long d) {
        return docStarts.get((int) d + 1);
    }

    /**
     * Chunks of {@code k} tokens before each document, each document's last chunk padded: {@code [documents + 1]},
     * entry d the chunks of documents 0..d-1 (the last entry all of them). Both loaders index the corpus by it.
     */
    public long[] chunksBefore(int k) {
        long[] before = new long[(int) documents + 1];
        for (int d = 0; d < documents; d++) before[d + 1] = before[d] + (docEnd(d) - docStart(d) + k - 1) / k;
        return before;
    }

    public int token(long pos) {
        int s = shardOf(pos);
        int i = (int) (pos - shardStart[s]);
        return bytesPerToken == 2 ? Short.toUnsignedInt(shards[s].getShort(i * 2)) : shards[s].getInt(i * 4);
    }

    /** Copies tokens [pos, pos + len) into {@code dst[off..]}. */
    public void read(long pos, long[] dst, int off, int len) {
        for (int k = 0; k < len; k++) dst[off + k] = token(pos + k);
    }

    private int shardOf(long pos) {
        int s = Arrays.binarySearch(shardStart, pos);
        return s >= 0 ? Math.min(s, shards.length - 1) : -s - 2;
    }
}
