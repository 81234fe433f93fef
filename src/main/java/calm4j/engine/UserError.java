package calm4j.engine;

/**
 * A failure the user can act on: bad input, a missing file, a mismatch between artefacts.
 * The CLI prints the message alone (no stack trace) and exits with status 2.
 */
public final class UserError extends RuntimeException {
    public UserError(String message) {
        super(message);
    }

    public UserError(String message, Throwable cause) {
        super(message, cause);
    }
}
