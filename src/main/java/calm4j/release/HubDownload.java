package calm4j.release;

import calm4j.engine.UserError;
import calm4j.fetch.Cache;
import calm4j.fetch.Download;
import calm4j.io.WeightFiles;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpHeaders;
import java.nio.channels.UnresolvedAddressException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
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
    private final Download download;

    public HubDownload(String endpoint, String token, Path cache, boolean quiet) {
        this.endpoint = endpoint.endsWith("/") ? endpoint.substring(0, endpoint.length() - 1) : endpoint;
        this.token = token == null || token.isBlank() ? null : token;
        this.cache = cache;
        this.quiet = quiet;
        // credentials go to the Hub only, not to the storage it redirects to
        this.download = new Download(Duration.ofSeconds(30), Duration.ofMinutes(10),
                uri -> this.token != null && uri.toString().startsWith(this.endpoint)
                        ? Map.of("Authorization", "Bearer " + this.token) : Map.of());
    }

    /** The Hub as the environment names it ({@code HF_ENDPOINT}, {@code HF_TOKEN}), caching under {@code cache}. */
    public static HubDownload fromEnvironment(Path cache, boolean quiet) {
        String ep = System.getenv("HF_ENDPOINT");
        return new HubDownload(ep != null && !ep.isBlank() ? ep : "https://huggingface.co", System.getenv("HF_TOKEN"),
                cache, quiet);
    }

    /**
     * The local folder {@code dirOrRepo} names: itself, or a Hub repository by name (owner/name) fetched into
     * {@code cache} (null: {@link Cache#hub()}) as the environment names the Hub, with a line on {@code log}.
     */
    public static Path local(String dirOrRepo, Path cache, boolean quiet, Consumer<String> log) {
        if (!isRepoName(dirOrRepo)) return Path.of(dirOrRepo);
        Path dir = fromEnvironment(cache != null ? cache : Cache.hub(), quiet).fetch(dirOrRepo);
        log.accept("downloaded " + dirOrRepo + " into " + dir);
        return dir;
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
        for (String index : WeightFiles.INDEXES) {
            if (file(repo, dir, index, false)) {
                weights.addAll(WeightFiles.shards(dir.resolve(index)));
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
        file(repo, dir, calm4j.chat.ChatTemplate.TOKENIZER_CONFIG, false); // a chat model's template
        return dir;
    }

    /**
     * Makes sure {@code dir/name} holds the repository's file; true when it does, false when the repository has no
     * such file (an error when {@code required}). Large (LFS) files are checked against the size and SHA-256 the Hub
     * gives in its {@code X-Linked-Size} and {@code X-Linked-Etag} headers (small files carry a git hash there, not
     * a SHA-256, and are checked by size).
     */
    boolean file(String repo, Path dir, String name, boolean required) {
        URI uri = URI.create(endpoint + "/" + repo + "/resolve/main/" + name);
        try {
            if (download.fetch(uri, dir.resolve(name), "download " + name, quiet, HubDownload::expected)) return true;
            if (required) throw new UserError("the Hub repository " + repo + " has no " + name + " (" + uri + ")");
            return false;
        } catch (Download.HttpStatus e) {
            throw new UserError(e.getMessage() + (e.status == 401 || e.status == 403 ? ": a gated or private "
                    + "repository needs HF_TOKEN set to a token that may read it" : ""));
        } catch (ConnectException | UnresolvedAddressException | HttpConnectTimeoutException e) {
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

    /** The size and SHA-256 the Hub's answers name (the first that names them: its redirect to storage). */
    private static Download.Expected expected(List<HttpHeaders> answers) {
        long size = -1;
        String sha256 = null;
        for (HttpHeaders h : answers) {
            if (sha256 == null) sha256 = h.firstValue("X-Linked-Etag").orElse(null);
            if (size < 0) size = h.firstValueAsLong("X-Linked-Size").orElse(-1);
        }
        if (sha256 != null) sha256 = sha256.replace("\"", "").toLowerCase(Locale.ROOT);
        return new Download.Expected(size, "SHA-256", sha256 != null && sha256.matches("[0-9a-f]{64}") ? sha256
                : null, false);
    }
}
