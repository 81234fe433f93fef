package calm4j.cli;

import calm4j.report.ComparisonReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "compare", mixinStandardHelpOptions = true,
        description = "Compare CALM and token-model runs: parameters, FLOPs, throughput, BrierLM, and BrierLM "
                + "against training FLOPs (Markdown report with a PNG plot).")
final class CompareCommand implements Callable<Integer> {
    @Option(names = "--runs", required = true, arity = "1..*", description = "CALM and token LM run folders")
    List<Path> runs;

    @Option(names = "--out", defaultValue = "runs/compare", description = "report folder")
    Path out;

    @Option(names = "--note", description = "a paragraph (Markdown) put at the top of the report")
    String note;

    @Mixin
    EngineOptions engine;

    @Override
    public Integer call() {
        engine.engine();
        System.out.println(ComparisonReport.write(runs.stream().map(ComparisonReport::measure).toList(), out, note));
        System.out.println("wrote " + out.resolve("report.md"));
        return 0;
    }
}
