package calm4j.serve;

import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.BufferUtil;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/**
 * One HTTP request and its response, as the completion handlers use them: blocking reads and writes on the handler's
 * thread over Jetty's request and response. Jetty enforces the connection-level limits (header size, idle
 * timeouts, connection count); this class only carries the exchange.
 */
final class Exchange {
    private final Request request;
    private final Response response;
    private boolean pipelined; // bytes of a next request arrived while this one ran: see clientGone()
    private int status;        // what was answered, 0 before an answer or while it streams
    private String error;      // the error answered, "type: message", or null
    boolean logged;            // the server's log has this request's line

    Exchange(Request request, Response response) {
        this.request = request;
        this.response = response;
    }

    String method() {
        return request.getMethod();
    }

    String path() {
        return request.getHttpURI().getPath();
    }

    /** A request header, or null. */
    String requestHeader(String name) {
        return request.getHeaders().get(name);
    }

    /** The status answered (0 before an answer, 200 once a stream started). */
    int status() {
        return status;
    }

    /** The error answered, as "code or type: message", or null. */
    String error() {
        return error;
    }

    /** The declared body length, or -1 when the client did not say (chunked). */
    long declaredLength() {
        return request.getLength();
    }

    /** Up to {@code max + 1} bytes of the body, so that a caller can tell a body over {@code max} bytes. */
    byte[] readBody(int max) throws IOException {
        try (InputStream in = Content.Source.asInputStream(request)) {
            return in.readNBytes(max + 1);
        } catch (IOException e) {
            throw new BadBody(e);
        }
    }

    /**
     * The body could not be read to its end: malformed chunked encoding, or fewer bytes than Content-Length before
     * the read timeout. The answer is a 400 on a connection then closed, never a success.
     */
    static final class BadBody extends IOException {
        BadBody(IOException cause) {
            super(cause.getCause() != null && cause.getCause().getMessage() != null ? cause.getCause().getMessage()
                    : String.valueOf(cause.getMessage()), cause);
        }
    }

    /** Answers an error and closes the connection after it (its stream is unusable). */
    void sendErrorAndClose(int status, String type, String message) {
        pipelined = true; // adds Connection: close
        try {
            sendError(status, type, message);
        } catch (IOException | RuntimeException e) {
            // the client is gone or its connection broken: nothing more to tell it
        }
    }

    void header(String name, String value) {
        response.getHeaders().put(name, value);
    }

    /** A whole response with a body of known length. */
    void send(int status, String contentType, byte[] body) throws IOException {
        this.status = status;
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
        if (pipelined) response.getHeaders().put(HttpHeader.CONNECTION, "close");
        Content.Sink.write(response, true, ByteBuffer.wrap(body));
    }

    /** A whole response with a JSON body (one of {@link OpenAiWire}'s records). */
    void sendJson(int status, Object body) throws IOException {
        send(status, "application/json", OpenAiWire.bytes(body));
    }

    /** An error in OpenAI's shape: {@code {"error": {"message": ..., "type": ...}}}. */
    void sendError(int status, String type, String message) throws IOException {
        error = type + ": " + message;
        sendJson(status, OpenAiWire.ErrorBody.of(type, message));
    }

    /** An error with OpenAI's {@code code} and {@code param} (null where there is none). */
    void sendError(int status, String type, String message, String code, String param) throws IOException {
        error = (code != null ? code : type) + ": " + message;
        sendJson(status, OpenAiWire.ErrorBody.of(type, message, code, param));
    }

    /** Starts a streamed 200 response (its length unknown); {@link #write} sends each piece at once. */
    void startStream(String contentType) {
        status = 200;
        response.setStatus(200);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
    }

    void write(byte[] piece) throws IOException {
        Content.Sink.write(response, false, ByteBuffer.wrap(piece));
    }

    void end() throws IOException {
        Content.Sink.write(response, true, BufferUtil.EMPTY_BUFFER);
    }

    /**
     * Whether the client closed its connection while a non-streamed answer is being generated. HTTP/1.1 gives no
     * signal until the server reads or writes, so this reads from the connection without blocking: end of stream
     * means the client is gone. A client that already sent its next request (pipelining) is not gone; that
     * request's bytes cannot be handed back, so the connection is closed after this response.
     */
    boolean clientGone() {
        if (pipelined) return false;
        EndPoint endPoint = request.getConnectionMetaData().getConnection().getEndPoint();
        if (!endPoint.isOpen()) return true;
        ByteBuffer probe = BufferUtil.allocate(64);
        try {
            int n = endPoint.fill(probe);
            if (n > 0) pipelined = true;
            return n < 0;
        } catch (IOException e) {
            return true;
        }
    }
}
