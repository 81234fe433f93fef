package calm4j.engine;

import java.util.function.Supplier;

/**
 * The one place where libtorch's exceptions become messages a user can act on.
 * libtorch reports everything (shape mismatch, out of memory, bad index) as a plain RuntimeException whose message
 * carries a C++ backtrace; the JVM carries on, so we catch at the command boundary and say what it means.
 */
public final class LibtorchErrors {
    private LibtorchErrors() {}

    /** Runs {@code body}, translating a libtorch failure into a {@link UserError} that names {@code what}. */
    public static <T> T guard(String what, Supplier<T> body) {
        try {
            return body.get();
        } catch (UserError e) {
            throw e;
        } catch (RuntimeException e) {
            if (!isLibtorch(e)) throw e;
            throw translate(what, e);
        }
    }

    public static void guard(String what, Runnable body) {
        guard(what, () -> {
            body.run();
            return null;
        });
    }

    public static boolean isLibtorch(RuntimeException e) {
        // JavaCPP rethrows C++ exceptions as java.lang.RuntimeException (exactly that class, with no Java cause).
        return e.getClass() == RuntimeException.class && e.getCause() == null && e.getMessage() != null;
    }

    public static UserError translate(String what, RuntimeException e) {
        String raw = e.getMessage();
        String first = firstLine(raw);
        String hint;
        if (raw.contains("out of memory") || raw.contains("DefaultCPUAllocator: can't allocate")) {
            hint = "the model or batch does not fit in memory: lower batch_size or the model size in the config";
        } else if (raw.contains("CUDA") && (raw.contains("not available") || raw.contains("no CUDA"))) {
            hint = "this build or machine has no CUDA: run on the cpu device, or build with -Pcuda on a GPU machine";
        } else if (raw.contains("PytorchStreamReader") || raw.contains("archive") || raw.contains("file not found")
                || raw.contains("zip")) {
            hint = "the file is not a complete libtorch archive (truncated or corrupt?): use an earlier checkpoint";
        } else if (raw.contains("index out of range") || raw.contains("out of bounds")) {
            hint = "a token id is outside the model's vocabulary: the tokenizer or data does not match the model";
        } else if (raw.contains("shape") || raw.contains("size mismatch") || raw.contains("must match the size")) {
            hint = "tensor shapes disagree: the checkpoint or data was made with a different configuration";
        } else {
            hint = "libtorch reported an error (details above)";
        }
        return new UserError(what + " failed: " + first + "\n  what to do: " + hint, e);
    }

    /** The first line of an error message, trimmed ("no message" for none): libtorch's carry a stack below it. */
    public static String firstLine(String s) {
        if (s == null) return "no message";
        int nl = s.indexOf('\n');
        return (nl < 0 ? s : s.substring(0, nl)).trim();
    }
}
