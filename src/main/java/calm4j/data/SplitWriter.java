package calm4j.data;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Appends tokenized documents to one split's shards and document index; the reading side is {@link TokenStore}. */
final class SplitWriter implements AutoCloseable {
    private final Path dir;
    private final String name;
    private final boolean uint16;
    private final long shardTokens;
    private final List<Manifest.Shard> shards = new ArrayList<>();
    private final OutputStream docs;
    private OutputStream current;
    private long currentTokens;
    private long tokens;
    private long documents;
    private boolean inDocument; // the pieces of a long document so far did not end it
    private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

    SplitWriter(Path root, String name, boolean uint16, long shardTokens) throws IOException {
        this.dir = Files.createDirectories(root.resolve(name));
        this.name = name;
        this.uint16 = uint16;
        this.shardTokens = shardTokens;
        this.docs = new BufferedOutputStream(Files.newOutputStream(dir.resolve(TokenStore.DOCS_FILE)), 1 << 16);
        writeLong(docs, 0);
    }

    /**
     * Adds one document (its EOS already appended), or one piece of a long one ({@code endsDocument} false for all but
     * its last). A new shard starts only between documents: a document never straddles two shards unless it alone is
     * larger than a shard.
     */
    void add(int[] ids, boolean endsDocument) throws IOException {
        boolean atDocumentStart = !inDocument;
        inDocument = !endsDocument;
        if (current == null || (atDocumentStart && currentTokens > 0 && currentTokens + ids.length > shardTokens)) {
            nextShard();
        }
        int width = uint16 ? 2 : 4;
        for (int id : ids) {
            if (buf.remaining() < width) flushBuf();
            if (uint16) buf.putShort((short) id);
            else buf.putInt(id);
        }
        flushBuf();
        currentTokens += ids.length;
        tokens += ids.length;
        if (!endsDocument) return;
        documents++;
        writeLong(docs, tokens);
    }

    private void flushBuf() throws IOException {
        current.write(buf.array(), 0, buf.position());
        buf.clear();
    }

    private void nextShard() throws IOException {
        closeShard();
        String file = String.format("tokens-%05d.bin", shards.size());
        current = new BufferedOutputStream(Files.newOutputStream(dir.resolve(file)), 1 << 16);
        shards.add(new Manifest.Shard(file, 0));
        currentTokens = 0;
    }

    private void closeShard() throws IOException {
        if (current == null) return;
        current.close();
        int last = shards.size() - 1;
        shards.set(last, new Manifest.Shard(shards.get(last).file(), currentTokens));
        current = null;
    }

    long documents() {
        return documents;
    }

    long tokens() {
        return tokens;
    }

    Manifest.Split finish() throws IOException {
        closeShard();
        docs.close();
        return new Manifest.Split(name, documents, tokens, List.copyOf(shards));
    }

    @Override
    public void close() throws IOException {
        if (current != null) current.close();
        docs.close();
    }

    private static void writeLong(OutputStream out, long v) throws IOException {
        byte[] b = new byte[8];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
        out.write(b);
    }
}
