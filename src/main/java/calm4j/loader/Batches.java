package calm4j.loader;

/** An endless, resumable source of training batches; the training loop needs nothing else from data. */
public interface Batches {
    TokenBatch next();

    LoaderState state();

    void restore(LoaderState state);

    /** Tokens of real text in one batch (for tokens/s). */
    long tokensPerBatch();
}
