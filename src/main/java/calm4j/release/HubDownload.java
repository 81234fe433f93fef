package calm4j.release;

import calm4j.engine.Configs;
import calm4j.engine.Progress;
import calm4j.engine.UserError;
import calm4j.io.WeightFiles;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.UnresolvedAddressException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * A model repository on the Hugging Face Hub, fetched by name into a local cache: {@code config.json}, the weights
 * (an index and its shards, or one file) and {@code tokenizer.json} when there is one, from the Hub's
 * {@code ENDPOINT/REPO/resolve/main/FILE} URLs. {@code HF_ENDPOINT} and {@code HF_TOKEN} are respected.
 *
 * <p>Downloads resume: bytes arrive in {@code FILE.incomplete} and a later run asks for the rest with a Range
 * request. A file is checked against the size and, for large (LFS) files, the SHA-256 that the Hub reports in its
 * {@code X-Linked-Size} and {@code X-Linked-Etag} headers; a file that does not match is deleted and refused.
 */
public final class HubDownload {
    /** owner/name, as the Hub spells repositories. */
    private static final Pattern REPO = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");

    private final String endpoint;
    private final String token;
    private final Path cache;
    private final boolean quiet;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(30))
            .followRedirects(HttpClient.Redirect.NEVER).build(); // the first answer carries the checksums

    public HubDownload(String endpoint, String token, Path cache, boolean quiet) {
        this.endpoint = endpoint.endsWith("/") ? endpoint.substring(0, endpoint.length() - 1) : endpoint;
        this.token = token == null || token.isBlank() ? null : token;
        this.cache = cache;
        this.quiet = quiet;
    }

    /** The Hub as the environment names it ({@code HF_ENDPOINT}, {@code HF_TOKEN}), caching under {@code cache}. */
    public static HubDownload fromEnvironment(Path cache, boolean quiet) {
        String ep = System.getenv("HF_ENDPOINT");
        return new HubDownload(ep != null && !ep.isBlank() ? ep : "https://huggingface.co", System.getenv("HF_TOKEN"),
                cache, quiet);
    }

    /** Whether {@code name} is a Hub repository name rather than a local directory. */
    public static boolean isRepoName(String name) {
        return REPO.matcher(name).matches() && !Files.exists(Path.of(name));
    }

    /** Fetches the repository's model files (those not cached already) and returns the local directory. */
    public Path fetch(String repo) {
        if (!REPO.matcher(repo).matches()) throw new UserError("'" + repo + "' is not a Hub repository (owner/name)");
        Path dir = cache.resolve(repo.replace("/", "--"));
        file(repo, dir, HuggingFaceLayout.CONFIG, true);
        List<String> weights = new ArrayList<>();
        for (String index : List.of(WeightFiles.SAFETENSORS + ".index.json",
                WeightFiles.PYTORCH_BIN + ".index.json")) {
            if (file(repo, dir, index, false)) {
                JsonNode map = Configs.readTree(dir.resolve(index)).path("weight_map");
                TreeSet<String> shards = new TreeSet<>();
                map.fields().forEachRemaining(e -> shards.add(e.getValue().asText()));
                weights.addAll(shards);
                break;
            }
        }
        if (weights.isEmpty()) {
            if (file(repo, dir, WeightFiles.SAFETENSORS, false)) return withTokenizer(repo, dir);
            file(repo, dir, WeightFiles.PYTORCH_BIN, true);
            return withTokenizer(repo, dir);
        }
        for (String shard : weights) {
            if (shard.contains("/") || shard.contains("..")) {
                throw new UserError(repo + "'s weight index names an unsafe shard path: " + shard);
            }
            file(repo, dir, shard, true);
        }
        return withTokenizer(repo, dir);
    }

    private Path withTokenizer(String repo, Path dir) {
        file(repo, dir, HuggingFaceLayout.TOKENIZER, false);
        return dir;
    }

    /**
     * Makes sure {@code dir/name} holds the repository's file; true when it does, false when the repository has no
     * such file (an error when {@code required}).
     */
    boolean file(String repo, Path dir, String name, boolean required) {
        Path done = dir.resolve(name);
        if (Files.isRegularFile(done)) return true;
        URI uri = URI.create(endpoint + "/" + repo + "/resolve/main/" + name);
        try {
            Files.createDirectories(dir);
            Path partial = dir.resolve(name + ".incomplete");
            long have = Files.isRegularFile(partial) ? Files.size(partial) : 0;
            HttpResponse<InputStream> res = get(uri, have);
            String sha256 = null;
            long size = -1;
            for (int hops = 0; res.statusCode() / 100 == 3; hops++) { // the Hub redirects LFS files to its storage
                sha256 = header(res, "X-Linked-Etag", sha256);
                size = Long.parseLong(header(res, "X-Linked-Size", String.valueOf(size)));
                String location = res.headers().firstValue("Location").orElseThrow(() -> new UserError(
                        uri + " redirected without a Location"));
                res.body().close();
                if (hops > 5) throw new UserError(uri + " redirects too often");
                res = get(res.uri().resolve(location), have);
            }
            if (res.statusCode() == 404) {
                res.body().close();
                if (required) throw new UserError("the Hub repository " + repo + " has no " + name + " (" + uri + ")");
                return false;
            }
            if (res.statusCode() == 401 || res.statusCode() == 403) {
                res.body().close();
                throw new UserError(uri + " answered HTTP " + res.statusCode() + ": a gated or private repository "
                        + "needs HF_TOKEN set to a token that may read it");
            }
            if (res.statusCode() == 200 && have > 0) have = 0; // the server ignored the Range: start over
            else if (res.statusCode() != 206 && res.statusCode() != 200) {
                res.body().close();
                throw new UserError(uri + " answered HTTP " + res.statusCode());
            }
            sha256 = header(res, "X-Linked-Etag", sha256);
            if (size < 0) {
                long length = res.headers().firstValueAsLong("Content-Length").orElse(-1);
                size = length < 0 ? -1 : have + length;
            }
            receive(res, partial, have, size, name);
            verify(partial, size, sha256 != null ? sha256.replace("\"", "").toLowerCase(Locale.ROOT) : null, uri);
            Files.move(partial, done, StandardCopyOption.ATOMIC_MOVE);
            return true;
        } catch (ConnectException | UnresolvedAddressException
                 | HttpConnectTimeoutException e) {
            throw new UserError("cannot reach the Hub at " + endpoint + " (" + e.getClass().getSimpleName()
                    + "): this machine may be offline; set HF_ENDPOINT for a mirror, or download the repository's "
                    + "files yourself and import from their directory");
        } catch (IOException e) {
            throw new UserError("downloading " + uri + " stopped: " + (e.getMessage() != null ? e.getMessage()
                    : e.getClass().getSimpleName()) + " (run the same command again: it resumes where it stopped)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while downloading " + uri + " (run the same command again to resume)");
        }
    }

    private static String header(HttpResponse<?> res, String name, String otherwise) {
        return res.headers().firstValue(name).orElse(otherwise);
    }

    private HttpResponse<InputStream> get(URI uri, long from) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(Duration.ofMinutes(10)).GET();
        if (from > 0) b.header("Range", "bytes=" + from + "-");
        if (token != null && uri.toString().startsWith(endpoint)) b.header("Authorization", "Bearer " + token);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
    }

    private void receive(HttpResponse<InputStream> res, Path partial, long have, long size, String name)
            throws IOException {
        try (InputStream in = res.body();
             OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                     have > 0 ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
             Progress bar = Progress.start("download " + name, size < 0 ? -1 : size / 1024, have / 1024, "KiB",
                     quiet)) {
            byte[] buf = new byte[1 << 16];
            long got = have;
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
                got += n;
                bar.stepTo(got / 1024);
            }
        }
    }

    /** Checks a downloaded file's size and SHA-256; a file that does not match is deleted. */
    private static void verify(Path file, long size, String sha256, URI uri) throws IOException {
        long got = Files.size(file);
        if (size >= 0 && got < size) {
            throw new IOException("the connection closed after " + got + " of " + size + " bytes");
        }
        if (size >= 0 && got != size) {
            Files.delete(file);
            throw new UserError(uri + " gave " + got + " bytes where the Hub reports " + size + ": the download was "
                    + "refused and deleted; run the command again");
        }
        if (sha256 == null || !sha256.matches("[0-9a-f]{64}")) return; // small files carry a git hash, not a SHA-256
        String actual = sha256(file);
        if (!actual.equals(sha256)) {
            Files.delete(file);
            throw new UserError(uri + " does not match the SHA-256 the Hub reports (expected " + sha256 + ", got "
                    + actual + "): the download was refused and deleted; run the command again");
        }
    }

    static String sha256(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
