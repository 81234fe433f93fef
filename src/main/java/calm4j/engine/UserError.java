package calm4j.engine;

/**
 * A failure the user can act on: bad input, a missing file, a mismatch between artefacts.
 * The CLI prints the message alone (no stack trace) and exits with status 2.
 *
 * <p>An error about one setting names it by its parameter or config key ({@code max_batch}), not by a command-line
 * flag: a library caller has no flags. {@link #parameter()} says which setting it is, so the command line can name
 * its own flag for it instead ({@code --max-batch}).
 */
public final class UserError extends RuntimeException {
    private final String parameter;
    private final String problem;

    public UserError(String message) {
        this(message, (Throwable) null);
    }

    public UserError(String message, Throwable cause) {
        super(message, cause);
        this.parameter = null;
        this.problem = message;
    }

    private UserError(String parameter, String problem) {
        super(parameter + " " + problem);
        this.parameter = parameter;
        this.problem = problem;
    }

    /**
     * An error about one setting: the message is {@code parameter + " " + problem}, e.g.
     * {@code badValue("max_batch", "must lie in [1, 1024], got 0")}.
     *
     * @param parameter the setting's name as the API or config file spells it (snake_case)
     */
    public static UserError badValue(String parameter, String problem) {
        return new UserError(parameter, problem);
    }

    /** The setting this error is about (snake_case), or null when it is not about one setting. */
    public String parameter() {
        return parameter;
    }

    /** The message without its leading parameter name (the whole message when it names none). */
    public String problem() {
        return problem;
    }
}
