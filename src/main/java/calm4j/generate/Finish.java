package calm4j.generate;

import java.util.Locale;

/**
 * Why a generated sequence ended. A generator ends it at {@link #EOS}, {@link #LENGTH} (the request's token limit)
 * or {@link #CONTEXT} (the model's context is full); {@link #STOP} is a stop string found in the decoded text; a server also ends it at {@link #TIMEOUT}, when its client
 * went away ({@link #CANCELLED}), when a generation step failed ({@link #ERROR}), or when it shut down before the
 * sequence ended ({@link #SHUTDOWN}).
 */
public enum Finish {
    EOS, STOP, LENGTH, CONTEXT, TIMEOUT, CANCELLED, ERROR, SHUTDOWN;

    /** How calm4j prints it: "eos", "length", ... */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** OpenAI's finish_reason: "stop" at the end of the text, "length" at a limit; calm4j's own otherwise. */
    public String openAi() {
        return switch (this) {
            case EOS, STOP -> "stop";
            case LENGTH, CONTEXT -> "length";
            default -> label();
        };
    }

    @Override
    public String toString() {
        return label();
    }
}
