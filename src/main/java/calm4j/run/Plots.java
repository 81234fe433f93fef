package calm4j.run;

import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Font;
import java.awt.GraphicsEnvironment;
import java.awt.font.FontRenderContext;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** PNG plots of a run's metrics (XChart): one chart per metric, train and validation series together. */
public final class Plots {
    /** Why nothing is drawn on a machine without fonts. */
    public static final String NO_FONTS = "this machine has no fonts to draw plots with: install one (Debian: "
            + "apt-get install fonts-dejavu-core)";

    private Plots() {}

    /** Whether charts can be drawn here: Java2D needs at least one installed font for their text. */
    public static boolean canDraw() {
        return Fonts.FOUND;
    }

    /**
     * Looked up once, by measuring a line of text as a chart's title does: without a font file the JDK's font manager
     * fails with "No physical fonts found". Listing the font families is not enough: fontconfig's cache can still
     * name fonts whose files are gone.
     */
    private static final class Fonts {
        static final boolean FOUND = found();

        private static boolean found() {
            try {
                if (GraphicsEnvironment.getLocalGraphicsEnvironment().getAvailableFontFamilyNames().length == 0) {
                    return false;
                }
                new Font(Font.SANS_SERIF, Font.PLAIN, 12).getLineMetrics("0.5", new FontRenderContext(null, true,
                        true));
                return true;
            } catch (Error noFonts) { // java.lang.Error from sun.font.SunFontManager: no font files at all
                return false;
            }
        }
    }

    /**
     * Writes {@code RUN/plots/<metric>.png} for every metric in metrics.jsonl; returns the files written (none, with a
     * line saying why, on a machine without fonts: training does not fail for want of a chart).
     */
    public static List<Path> write(Path runDir) {
        List<JsonNode> rows = MetricsLog.read(runDir);
        if (rows.isEmpty()) throw new UserError(runDir + " has no metrics yet (no " + MetricsLog.FILE + ")");
        if (!canDraw()) {
            System.err.println("plots skipped: " + NO_FONTS);
            return List.of();
        }
        // metric -> split -> (steps, values)
        Map<String, Map<String, List<double[]>>> series = new TreeMap<>();
        for (JsonNode row : rows) {
            String split = row.path("split").asText("train");
            double step = row.path("step").asDouble();
            row.fields().forEachRemaining(e -> {
                if (e.getKey().equals("step") || e.getKey().equals("split") || !e.getValue().isNumber()) return;
                if (e.getKey().contains("_se")) return; // a standard error is read beside its value, not plotted
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
                // a chart of one point per series shows nothing (e.g. a run evaluated once)
                if (metric.getValue().values().stream().allMatch(p -> p.size() < 2)) continue;
                XYChart chart = new XYChartBuilder().width(800).height(500).title(metric.getKey())
                        .xAxisTitle("step").yAxisTitle(metric.getKey()).build();
                chart.getStyler().setLegendVisible(metric.getValue().size() > 1);
                chart.getStyler().setyAxisTickLabelsFormattingFunction(Plots::human);
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

    /**
     * A number as people read it on an axis or in a table: {@code 4.2e12} and {@code 3.1e-5}, not
     * {@code 4.1731227648E12}; plain between 0.001 and 10,000 ({@code 0.0123}, {@code 250}).
     */
    public static String human(double v) {
        if (v == 0 || !Double.isFinite(v)) return v == 0 ? "0" : String.valueOf(v);
        double a = Math.abs(v);
        if (a >= 1e-3 && a < 1e4) {
            String s = String.format(java.util.Locale.ROOT, "%.3g", v);
            return s.contains(".") && !s.contains("e") ? s.replaceAll("0+$", "").replaceAll("\\.$", "") : s;
        }
        int exp = (int) Math.floor(Math.log10(a));
        double mantissa = v / Math.pow(10, exp);
        if (Math.abs(mantissa) >= 9.95) { // rounding carried into the next power
            mantissa /= 10;
            exp++;
        }
        String m = String.format(java.util.Locale.ROOT, "%.1f", mantissa);
        return (m.endsWith(".0") ? m.substring(0, m.length() - 2) : m) + "e" + exp;
    }
}
