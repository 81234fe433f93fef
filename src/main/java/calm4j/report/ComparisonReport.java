package calm4j.report;

import calm4j.app.LanguageModel;
import calm4j.engine.UserError;
import calm4j.eval.BrierLM;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.run.MetricsLog;
import calm4j.run.RunFolder;
import com.fasterxml.jackson.databind.JsonNode;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * CALM against the token baseline on the same data (docs/method.md §5 at our scale): a Markdown table of parameters,
 * training and inference FLOPs, measured training and generation throughput and BrierLM, and a PNG of validation
 * BrierLM against training FLOPs from each run's metrics.
 *
 * <p>FLOPs are counted analytically from the matmuls (2 per multiply-accumulate; training 3x forward), see
 * {@code CalmConfig.trainingFlopsPerChunk} and {@code TokenLMConfig.trainingFlopsPerToken}; norms, softmax and
 * the energy distances are left out.
 */
public final class ComparisonReport {
    private ComparisonReport() {}

    /** One run's row. */
    public record Row(String name, String kind, long parameters, double trainingFlops, double inferenceFlopsPerToken,
                      double trainTokensPerSecond, double generateTokensPerSecond, double brierLM, double brierLMSe,
                      List<double[]> curve) {}

    public static Row measure(Path run) {
        String kind = RunFolder.config(run, null).path("kind").asText();
        List<JsonNode> rows = MetricsLog.read(run);
        if (rows.isEmpty()) throw new UserError(run + " has no metrics: train it first");
        double tps = rows.stream().filter(r -> r.path("split").asText().equals("train"))
                .mapToDouble(r -> r.path("tokens_per_s").asDouble()).average().orElse(Double.NaN);
        double lastTokens = rows.stream().filter(r -> r.path("split").asText().equals("train"))
                .mapToDouble(r -> r.path("tokens").asDouble()).max().orElse(0);
        JsonNode lastVal = rows.stream().filter(r -> r.path("split").asText().equals("val"))
                .reduce((a, b) -> b).orElseThrow(() -> new UserError(run + " has no validation metrics"));
        double flopsPerToken, inference, genTps;
        long params;
        try (LanguageModel lm = LanguageModel.load(run)) {
            flopsPerToken = lm.trainingFlopsPerToken();
            inference = lm.inferenceFlopsPerToken();
            params = lm.parameterCount();
            // Batch-1 generation speed at T = 1 from a random 16-token prompt, EOS not stopping it.
            int[] prompt = new Random(0).ints(16, 3, lm.tokenizer().vocabSize()).toArray();
            var request = List.of(new GenerationRequest(prompt, 64, 1.0, 1));
            GenerationOptions plain = new GenerationOptions(1, false, 100);
            long t0 = System.nanoTime();
            int tokens = lm.generate(request, plain, false).get(0).length;
            genTps = tokens / ((System.nanoTime() - t0) / 1e9);
        }
        List<double[]> curve = new ArrayList<>();
        double perStep = lastTokens / Math.max(1, rows.stream().filter(x -> x.path("split").asText().equals("train"))
                .mapToDouble(x -> x.path("step").asDouble()).max().orElse(1));
        for (JsonNode row : rows) {
            if (row.path("split").asText().equals("val") && row.has("brier_lm")) {
                curve.add(new double[] {row.path("step").asDouble() * perStep * flopsPerToken,
                        row.path("brier_lm").asDouble()});
            }
        }
        return new Row(run.getFileName().toString(), kind, params, lastTokens * flopsPerToken, inference, tps, genTps,
                lastVal.path("brier_lm").asDouble(), lastVal.path("brier_lm_se").asDouble(), curve);
    }

    /** Writes {@code out/report.md} and {@code out/brier_vs_flops.png}; returns the Markdown. */
    public static String write(List<Row> rows, Path out) {
        return write(rows, out, null);
    }

    /** As {@link #write(List, Path)}, with {@code note} (Markdown, may be null) as the report's first paragraph. */
    public static String write(List<Row> rows, Path out, String note) {
        StringBuilder md = new StringBuilder("# calm4j comparison\n\n");
        if (note != null && !note.isBlank()) md.append(note.strip()).append("\n\n");
        md.append("| run | kind | parameters | training FLOPs | inference FLOPs/token | train tokens/s | "
                + "generate tokens/s (batch 1) | BrierLM |\n|---|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            md.append(String.format("| %s | %s | %,d | %.3g | %.3g | %,.0f | %,.0f | %.2f +- %.2f |%n", r.name(),
                    r.kind(), r.parameters(), r.trainingFlops(), r.inferenceFlopsPerToken(), r.trainTokensPerSecond(),
                    r.generateTokensPerSecond(), r.brierLM(), r.brierLMSe()));
        }
        md.append("\nFLOPs are counted from the matmuls (2 per multiply-accumulate, training 3x forward; attention "
                + "over half the context in training and all of it in inference). BrierLM is x100 on held-out "
                + "blocks, with a delta-method standard error; it depends on the evaluation block size.\n\n"
                + "![BrierLM against training FLOPs](brier_vs_flops.png)\n");
        XYChart chart = new XYChartBuilder().width(800).height(500).title("validation BrierLM vs training FLOPs")
                .xAxisTitle("training FLOPs").yAxisTitle("BrierLM").build();
        for (Row r : rows) {
            if (r.curve().isEmpty()) continue;
            chart.addSeries(r.name(), r.curve().stream().mapToDouble(p -> p[0]).toArray(),
                    r.curve().stream().mapToDouble(p -> p[1]).toArray());
        }
        try {
            Files.createDirectories(out);
            Files.writeString(out.resolve("report.md"), md.toString());
            BitmapEncoder.saveBitmap(chart, out.resolve("brier_vs_flops.png").toString(),
                    BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UserError("cannot write the report under " + out + ": " + e.getMessage());
        }
        return md.toString();
    }
}
