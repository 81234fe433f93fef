package calm4j.run;

import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** PNG plots of a run's metrics (XChart): one chart per metric, train and validation series together. */
public final class Plots {
    private Plots() {}

    /** Writes {@code RUN/plots/<metric>.png} for every metric in metrics.jsonl; returns the files written. */
    public static List<Path> write(Path runDir) {
        List<JsonNode> rows = MetricsLog.read(runDir);
        if (rows.isEmpty()) throw new UserError(runDir + " has no metrics yet (no " + MetricsLog.FILE + ")");
        // metric -> split -> (steps, values)
        Map<String, Map<String, List<double[]>>> series = new TreeMap<>();
        for (JsonNode row : rows) {
            String split = row.path("split").asText("train");
            double step = row.path("step").asDouble();
            row.fields().forEachRemaining(e -> {
                if (e.getKey().equals("step") || e.getKey().equals("split") || !e.getValue().isNumber()) return;
                double v = e.getValue().asDouble();
                if (!Double.isFinite(v)) return;
                series.computeIfAbsent(e.getKey(), k -> new TreeMap<>())
                        .computeIfAbsent(split, k -> new ArrayList<>()).add(new double[] {step, v});
            });
        }
        Path dir = runDir.resolve("plots");
        List<Path> written = new ArrayList<>();
        try {
            Files.createDirectories(dir);
            for (var metric : series.entrySet()) {
                XYChart chart = new XYChartBuilder().width(800).height(500).title(metric.getKey())
                        .xAxisTitle("step").yAxisTitle(metric.getKey()).build();
                chart.getStyler().setLegendVisible(metric.getValue().size() > 1);
                for (var split : metric.getValue().entrySet()) {
                    List<double[]> pts = split.getValue();
                    double[] x = pts.stream().mapToDouble(p -> p[0]).toArray();
                    double[] y = pts.stream().mapToDouble(p -> p[1]).toArray();
                    var s = chart.addSeries(split.getKey(), x, y);
                    s.setMarker(pts.size() > 50 ? SeriesMarkers.NONE : SeriesMarkers.CIRCLE);
                }
                Path png = dir.resolve(metric.getKey().replaceAll("[^A-Za-z0-9_.-]", "_") + ".png");
                BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
                written.add(png);
            }
        } catch (IOException e) {
            throw new UserError("could not write plots under " + dir + ": " + e.getMessage());
        }
        return written;
    }
}
