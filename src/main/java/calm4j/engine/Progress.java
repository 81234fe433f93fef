package calm4j.engine;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.time.Duration;

/**
 * A progress bar with rate and ETA (me.tongfei:progressbar) on standard error, or nothing when quiet.
 * Every long job (corpus preparation, training, evaluation) reports through this one type.
 */
public final class Progress implements AutoCloseable {
    private final ProgressBar bar;

    private Progress(ProgressBar bar) {
        this.bar = bar;
    }

    /**
     * @param total   the number of units, or -1 when unknown (the bar then shows count and rate only)
     * @param start   units already done (a resumed run starts its bar there)
     */
    public static Progress start(String task, long total, long start, String unit, boolean quiet) {
        if (quiet) return new Progress(null);
        ProgressBar bar = new ProgressBarBuilder()
                .setTaskName(task)
                .setInitialMax(total)
                .setUnit(" " + unit, 1)
                .showSpeed()
                .setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(500)
                .startsFrom(start, Duration.ZERO)
                .setMaxRenderedLength(120)
                .build();
        return new Progress(bar);
    }

    /** A progress that shows nothing (an evaluation inside training, whose bar is the training's). */
    public static Progress none() {
        return new Progress(null);
    }

    public void step(long n) {
        if (bar != null) bar.stepBy(n);
    }

    public void stepTo(long n) {
        if (bar != null) bar.stepTo(n);
    }

    public void message(String extra) {
        if (bar != null) bar.setExtraMessage(extra);
    }

    @Override
    public void close() {
        if (bar != null) bar.close();
    }
}
