package calm4j.loader;

/** Where a loader is: the epoch and how many items of this rank's share of it were consumed. Saved in checkpoints. */
public record LoaderState(long epoch, long cursor) {
    public static final LoaderState START = new LoaderState(0, 0);
}
