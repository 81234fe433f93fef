package calm4j.fetch;

import calm4j.engine.Progress;
import calm4j.engine.UserError;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * One file fetched over HTTP, verified and resumable, the way every download of calm4j goes (npm tarballs of the
 * built-in corpora, Hugging Face Hub repositories): bytes arrive in {@code FILE.incomplete}, a later attempt asks for
 * the rest with a Range request, redirects are followed by hand so that the first answers' headers (where the Hub
 * puts its checksums) are seen, and the file is checked against the size and digest its source gives before it is
 * moved into place. A file that does not match is deleted and refused.
 */
public final class Download {
    /** The most redirects followed. */
    static final int MAX_REDIRECTS = 5;

    /**
     * What a downloaded file must be: its size in bytes (-1: unknown) and its digest (null: none given).
     *
     * @param algorithm a {@link MessageDigest} name ("SHA-256", "SHA-512", "SHA-1")
     * @param base64    whether {@code digest} is base64 (npm's Subresource Integrity) rather than hex
     */
    public record Expected(long size, String algorithm, String digest, boolean base64) {
        public static final Expected ANY = new Expected(-1, null, null, false);
    }

    /** An answer other than success or "not found"; the caller says what it means for its source. */
    public static final class HttpStatus extends IOException {
        public final int status;
        public final URI uri;

        HttpStatus(int status, URI uri) {
            super(uri + " answered HTTP " + status);
            this.status = status;
            this.uri = uri;
        }
    }

    private final HttpClient http;
    private final Duration timeout;
    private final Function<URI, Map<String, String>> headers;

    /**
     * @param headers the request headers for a URI (credentials go only to the source's own host)
     */
    public Download(Duration connectTimeout, Duration timeout, Function<URI, Map<String, String>> headers) {
        this.http = HttpClient.newBuilder().connectTimeout(connectTimeout).followRedirects(HttpClient.Redirect.NEVER)
                .build();
        this.timeout = timeout;
        this.headers = headers;
    }

    /**
     * Makes sure {@code target} holds the file at {@code uri}: already there, or fetched (resuming a partial file).
     *
     * @param expected what the file must be, from the headers of every answer on the way (redirects first)
     * @return false when the source has no such file (HTTP 404)
     * @throws HttpStatus for any other answer than success
     */
    public boolean fetch(URI uri, Path target, String label, boolean quiet,
                         Function<List<HttpHeaders>, Expected> expected) throws IOException, InterruptedException {
        if (Files.isRegularFile(target)) return true;
        Files.createDirectories(target.toAbsolutePath().getParent());
        Path partial = target.resolveSibling(target.getFileName() + ".incomplete");
        long have = Files.isRegularFile(partial) ? Files.size(partial) : 0;
        List<HttpHeaders> seen = new ArrayList<>();
        HttpResponse<InputStream> res = get(uri, have);
        for (int hops = 0; res.statusCode() / 100 == 3; hops++) {
            seen.add(res.headers());
            URI from = res.uri();
            String location = res.headers().firstValue("Location").orElseThrow(() -> new UserError(
                    from + " redirected without a Location"));
            res.body().close();
            if (hops >= MAX_REDIRECTS) throw new UserError(uri + " redirects too often");
            res = get(from.resolve(location), have);
        }
        seen.add(res.headers());
        if (res.statusCode() == 404) {
            res.body().close();
            return false;
        }
        if (res.statusCode() == 200 && have > 0) {
            have = 0; // the server ignored the Range: start over
        } else if (res.statusCode() != 206 && res.statusCode() != 200) {
            res.body().close();
            throw new HttpStatus(res.statusCode(), res.uri());
        }
        Expected want = expected.apply(seen);
        long size = want.size();
        if (size < 0) {
            long length = res.headers().firstValueAsLong("Content-Length").orElse(-1);
            size = length < 0 ? -1 : have + length;
        }
        receive(res, partial, have, size, label, quiet);
        verify(partial, new Expected(size, want.algorithm(), want.digest(), want.base64()), uri);
        Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
        return true;
    }

    private HttpResponse<InputStream> get(URI uri, long from) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(timeout).GET();
        if (from > 0) b.header("Range", "bytes=" + from + "-");
        headers.apply(uri).forEach(b::header);
        return http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
    }

    private static void receive(HttpResponse<InputStream> res, Path partial, long have, long size, String label,
                                boolean quiet) throws IOException {
        try (InputStream in = res.body();
             OutputStream out = Files.newOutputStream(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                     have > 0 ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
             Progress bar = Progress.start(label, size < 0 ? -1 : size / 1024, have / 1024, "KiB", quiet)) {
            byte[] buf = new byte[1 << 16];
            long got = have;
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
                got += n;
                bar.stepTo(got / 1024);
            }
        }
    }

    /** Checks a downloaded file's size and digest; a file that does not match is deleted. */
    static void verify(Path file, Expected want, URI uri) throws IOException {
        long got = Files.size(file);
        if (want.size() >= 0 && got < want.size()) {
            throw new IOException("the connection closed after " + got + " of " + want.size() + " bytes");
        }
        if (want.size() >= 0 && got != want.size()) {
            Files.delete(file);
            throw new UserError(uri + " gave " + got + " bytes where its source reports " + want.size() + ": the "
                    + "download was refused and deleted; run the command again");
        }
        if (want.digest() == null) return;
        String actual = digest(file, want.algorithm(), want.base64());
        if (!actual.equals(want.digest())) {
            Files.delete(file);
            throw new UserError(uri + " does not match the " + want.algorithm() + " its source gives (expected "
                    + want.digest() + ", got " + actual + "): the download was refused and deleted; run the command "
                    + "again");
        }
    }

    /** The {@code algorithm} digest of a file, hex or base64. */
    public static String digest(Path file, String algorithm, boolean base64) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance(algorithm);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(algorithm + " is a standard JDK algorithm", e);
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) md.update(buf, 0, n);
        }
        byte[] h = md.digest();
        return base64 ? Base64.getEncoder().encodeToString(h) : HexFormat.of().formatHex(h);
    }
}
