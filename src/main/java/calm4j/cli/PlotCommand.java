package calm4j.cli;

import calm4j.engine.UserError;
import calm4j.run.Plots;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "plot", mixinStandardHelpOptions = true,
        description = "Write PNG plots of a run's metrics to RUN/plots (also done at the end of training).")
final class PlotCommand implements Callable<Integer> {
    @Parameters(paramLabel = "RUN", description = "a run folder")
    Path run;

    @Override
    public Integer call() {
        if (!Plots.canDraw()) throw new UserError(Plots.NO_FONTS);
        for (Path p : Plots.write(run)) System.out.println("wrote " + p);
        return 0;
    }
}
