package calm4j.release;

import calm4j.engine.UserError;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Releases by name from a server in the Hub's URL layout (here on loopback, serving the official tiny fixture):
 * {@code /REPO/resolve/main/FILE}, large files redirected to storage with their size and SHA-256 in headers.
 */
class HubDownloadTest {
    static final Path FIXTURE = calm4j.Fixtures.OFFICIAL_TINY;
    static final String REPO = "authors/CALM-tiny";

    @TempDir
    Path dir;
    HttpServer server;
    String endpoint;
    /** What each file's storage answers: the bytes, and how many of them the next answer stops after. */
    final Map<String, byte[]> storage = new ConcurrentHashMap<>();
    final Map<String, Integer> cutAfter = new ConcurrentHashMap<>();
    final List<String> ranges = new CopyOnWriteArrayList<>();
    Path source = FIXTURE.resolve("calm-sharded");

    @BeforeEach
    void serve() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::answer);
        server.start();
        endpoint = "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    void answer(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        try (ex) {
            if (path.startsWith("/" + REPO + "/resolve/main/")) {
                String name = path.substring(("/" + REPO + "/resolve/main/").length());
                Path f = source.resolve(name);
                if (!Files.isRegularFile(f)) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                byte[] real = Files.readAllBytes(f);
                if (name.endsWith(".json")) { // small files: served directly, with a git hash as their ETag
                    ex.getResponseHeaders().set("ETag", "\"0123abcd\"");
                    ex.sendResponseHeaders(200, real.length);
                    ex.getResponseBody().write(real);
                    return;
                }
                storage.putIfAbsent(name, real);
                ex.getResponseHeaders().set("X-Linked-Etag", "\"" + calm4j.fetch.Download.digest(f, "SHA-256", false) + "\"");
                ex.getResponseHeaders().set("X-Linked-Size", String.valueOf(real.length));
                ex.getResponseHeaders().set("Location", "/storage/" + name);
                ex.sendResponseHeaders(302, -1);
            } else if (path.startsWith("/storage/")) {
                String name = path.substring("/storage/".length());
                byte[] bytes = storage.get(name);
                String range = ex.getRequestHeaders().getFirst("Range");
                int from = range == null ? 0 : Integer.parseInt(range.replaceAll("bytes=(\\d+)-", "$1"));
                ranges.add(name + " from " + from);
                int cut = cutAfter.getOrDefault(name, bytes.length - from);
                cutAfter.remove(name);
                if (from > 0) ex.getResponseHeaders().set("Content-Range", "bytes " + from + "-" + (bytes.length - 1)
                        + "/" + bytes.length);
                ex.sendResponseHeaders(from > 0 ? 206 : 200, bytes.length - from);
                ex.getResponseBody().write(bytes, from, Math.min(cut, bytes.length - from));
                if (cut < bytes.length - from) {
                    // Let what was sent arrive, then close mid-body: the client sees a stopped download.
                    ex.getResponseBody().flush();
                    try {
                        Thread.sleep(300);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            } else {
                ex.sendResponseHeaders(404, -1);
            }
        }
    }

    HubDownload hub() {
        return new HubDownload(endpoint, null, dir.resolve("cache"), true);
    }

    @Test
    void aReleaseByNameIsDownloadedWithItsShardsVerifiedAndImports() throws Exception {
        Path local = hub().fetch(REPO);
        for (String f : List.of("config.json", "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin",
                "pytorch_model-00002-of-00002.bin")) {
            assertEquals(-1, Files.mismatch(local.resolve(f), source.resolve(f)), f);
        }
        assertEquals(calm4j.io.WeightFiles.read(source).keySet(), calm4j.io.WeightFiles.read(local).keySet());
        ranges.clear();
        hub().fetch(REPO);
        assertEquals(List.of(), ranges, "cached files are not downloaded again");
    }

    @Test
    void anInterruptedDownloadResumesWhereItStopped() throws Exception {
        String shard = "pytorch_model-00001-of-00002.bin";
        cutAfter.put(shard, 300_000);
        UserError e = assertThrows(UserError.class, () -> hub().fetch(REPO));
        assertTrue(e.getMessage().contains("run the same command again"), e.getMessage());
        Path partial = dir.resolve("cache/authors--CALM-tiny/" + shard + ".incomplete");
        long kept = Files.size(partial);
        assertTrue(kept > 0 && kept < Files.size(source.resolve(shard)), "the bytes that arrived are kept: " + kept);
        Path local = hub().fetch(REPO);
        assertTrue(ranges.contains(shard + " from " + kept), "asked for the rest only: " + ranges);
        assertEquals(-1, Files.mismatch(local.resolve(shard), source.resolve(shard)));
    }

    @Test
    void aFileThatDoesNotMatchTheHubsChecksumIsRefusedAndDeleted() throws Exception {
        String shard = "pytorch_model-00002-of-00002.bin";
        byte[] bad = Files.readAllBytes(source.resolve(shard));
        bad[1000] ^= 1;
        storage.put(shard, bad);
        UserError e = assertThrows(UserError.class, () -> hub().fetch(REPO));
        assertTrue(e.getMessage().contains("does not match the SHA-256"), e.getMessage());
        Path cached = dir.resolve("cache/authors--CALM-tiny");
        assertFalse(Files.exists(cached.resolve(shard)) || Files.exists(cached.resolve(shard + ".incomplete")),
                "nothing of it is kept");
    }

    @Test
    void aRepositoryWithoutWeightsOrUnknownToTheHubIsAClearError() {
        source = dir.resolve("empty");
        UserError e = assertThrows(UserError.class, () -> hub().fetch(REPO));
        assertTrue(e.getMessage().contains("has no config.json"), e.getMessage());
        assertTrue(HubDownload.isRepoName("cccczshao/CALM-M"));
        assertFalse(HubDownload.isRepoName("runs/../x y"));
    }
}
