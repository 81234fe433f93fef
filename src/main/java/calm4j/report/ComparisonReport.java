package calm4j.report;

import calm4j.app.LanguageModel;
import calm4j.engine.UserError;
import calm4j.eval.BrierLM;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.run.MetricsLog;
import calm4j.run.Plots;
import com.fasterxml.jackson.databind.JsonNode;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import javax.imageio.ImageIO;

/**
 * CALM against the token baseline on the same data (docs/method.md §5 at our scale): a Markdown table of parameters,
 * training and inference FLOPs, measured training and generation throughput and Brier-1..4 with BrierLM, and a PNG
 * of validation Brier-1..4 against training FLOPs from each run's metrics (BrierLM, their geometric mean, is 0
 * until all four are positive, so at small budgets only the Brier-n show progress).
 *
 * <p>FLOPs are counted analytically from the matmuls (2 per multiply-accumulate; training 3x forward), see
 * {@code CalmModel.trainingFlopsPerChunk} and {@code TokenLMConfig.trainingFlopsPerToken}; norms, softmax and
 * the energy distances are left out.
 */
public final class ComparisonReport {
    private ComparisonReport() {}

    /** The generation batches the report times, and the tokens each sequence generates. */
    static final int[] GENERATION_BATCHES = {1, 16};
    static final int GENERATION_TOKENS = 64;

    /**
     * One validation evaluation: Brier-1..4 with standard errors (NaN in metrics logs older than the errors), and
     * BrierLM. A token model's are at chunk-aligned positions, the positions a CALM is scored at.
     */
    public record Scores(double trainingFlops, double[] brier, double[] standardError, double brierLM,
                         double brierLMStandardError) {}

    /** One run's row; {@code generateTokensPerSecond[i]} at batch {@link #GENERATION_BATCHES}[i]. */
    /**
     * @param generateInt8TokensPerSecond as {@code generateTokensPerSecond}, the weights packed as int8
     * @param inferenceFlopsByPart        generation FLOPs per token by part of the model
     */
    public record Row(String name, String kind, long parameters, double trainingFlops, double inferenceFlopsPerToken,
                      double trainTokensPerSecond, double[] generateTokensPerSecond, Scores last, List<Scores> curve,
                      double[] generateInt8TokensPerSecond, java.util.Map<String, Double> inferenceFlopsByPart) {
        /** A row with only fp32 speeds and no split (tests, summaries). */
        public Row(String name, String kind, long parameters, double trainingFlops, double inferenceFlopsPerToken,
                   double trainTokensPerSecond, double[] generateTokensPerSecond, Scores last, List<Scores> curve) {
            this(name, kind, parameters, trainingFlops, inferenceFlopsPerToken, trainTokensPerSecond,
                    generateTokensPerSecond, last, curve, null, java.util.Map.of());
        }
    }

    public static Row measure(Path run) {
        List<JsonNode> rows = MetricsLog.read(run);
        if (rows.isEmpty()) throw new UserError(run + " has no metrics: train it first");
        List<JsonNode> train = rows.stream().filter(r -> r.path("split").asText().equals("train")).toList();
        double tps = train.stream().mapToDouble(r -> r.path("tokens_per_s").asDouble()).average().orElse(Double.NaN);
        double lastTokens = train.stream().mapToDouble(r -> r.path("tokens").asDouble()).max().orElse(0);
        double lastStep = train.stream().mapToDouble(r -> r.path("step").asDouble()).max().orElse(1);
        double flopsPerToken, inference;
        double[] generate, generateInt8;
        long params;
        String kind;
        java.util.Map<String, Double> split;
        try (LanguageModel lm = LanguageModel.load(run)) {
            kind = lm.kind();
            flopsPerToken = lm.trainingFlopsPerToken();
            inference = lm.inferenceFlopsPerToken();
            split = lm.inferenceFlopsByPart();
            params = lm.parameterCount();
            generate = IntStream.of(GENERATION_BATCHES).mapToDouble(b -> generationSpeed(lm, b)).toArray();
        }
        try (LanguageModel lm = LanguageModel.load(run, calm4j.nn.WeightType.INT8)) {
            generateInt8 = IntStream.of(GENERATION_BATCHES).mapToDouble(b -> generationSpeed(lm, b)).toArray();
        }
        double tokensPerStep = lastTokens / Math.max(1, lastStep);
        List<Scores> curve = new ArrayList<>();
        for (JsonNode row : rows) {
            if (row.path("split").asText().equals("val") && row.has("brier_1")) {
                curve.add(scores(row, row.path("step").asDouble() * tokensPerStep * flopsPerToken));
            }
        }
        if (curve.isEmpty()) throw new UserError(run + " has no validation BrierLM in its metrics: train it first");
        return new Row(run.getFileName().toString(), kind, params, lastTokens * flopsPerToken, inference, tps,
                generate, curve.get(curve.size() - 1), curve, generateInt8, split);
    }

    /** A validation row's scores: the chunk-aligned ones where the run logs both (a token model). */
    private static Scores scores(JsonNode row, double flops) {
        String suffix = row.has("brier_1_aligned") ? "_aligned" : "";
        double[] brier = new double[BrierLM.MAX_N], se = new double[BrierLM.MAX_N];
        for (int n = 0; n < BrierLM.MAX_N; n++) {
            brier[n] = row.path("brier_" + (n + 1) + suffix).asDouble();
            se[n] = row.path("brier_" + (n + 1) + "_se" + suffix).asDouble(Double.NaN);
        }
        return new Scores(flops, brier, se, row.path("brier_lm" + suffix).asDouble(),
                row.path("brier_lm_se" + suffix).asDouble(Double.NaN));
    }

    /**
     * Tokens per second generating {@code batch} sequences of {@link #GENERATION_TOKENS} at T = 1 from random
     * 16-token prompts, EOS not stopping them, after a short warm-up.
     */
    static double generationSpeed(LanguageModel lm, int batch) {
        Random random = new Random(0);
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            requests.add(new GenerationRequest(random.ints(16, 3, lm.tokenizer().vocabSize()).toArray(),
                    GENERATION_TOKENS, 1.0, i));
        }
        GenerationOptions plain = new GenerationOptions(1, false, 100);
        lm.generate(requests, plain, false); // a whole run first: the JIT compiles the path on it
        double[] rates = new double[TIMED_RUNS];
        for (int r = 0; r < TIMED_RUNS; r++) {
            long t0 = System.nanoTime();
            long tokens = lm.generate(requests, plain, false).stream().mapToLong(t -> t.length).sum();
            rates[r] = tokens / ((System.nanoTime() - t0) / 1e9);
        }
        java.util.Arrays.sort(rates);
        return rates[TIMED_RUNS / 2]; // the median: one slow run on a shared core does not decide the ratio
    }

    /** Timed generation runs per model and batch size, after one untimed. */
    static final int TIMED_RUNS = 3;

    /** Writes {@code out/report.md} and {@code out/brier_vs_flops.png}; returns the Markdown. */
    public static String write(List<Row> rows, Path out) {
        return write(rows, out, null);
    }

    /** As {@link #write(List, Path)}, with {@code note} (Markdown, may be null) as the report's first paragraph. */
    public static String write(List<Row> rows, Path out, String note) {
        StringBuilder md = new StringBuilder("# calm4j comparison\n\n");
        if (note != null && !note.isBlank()) md.append(note.strip()).append("\n\n");
        md.append("| run | kind | parameters | training FLOPs | inference FLOPs/token | train tokens/s | "
                + "generate tokens/s, batch 1 | batch 16 | Brier-1 | Brier-2 | Brier-3 | Brier-4 | BrierLM |\n"
                + "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (Row r : rows) {
            md.append(String.format("| %s | %s | %,d | %s | %s | %,.0f | %,.0f | %,.0f |", r.name(), r.kind(),
                    r.parameters(), Plots.human(r.trainingFlops()), Plots.human(r.inferenceFlopsPerToken()),
                    r.trainTokensPerSecond(), r.generateTokensPerSecond()[0], r.generateTokensPerSecond()[1]));
            for (int n = 0; n < BrierLM.MAX_N; n++) {
                md.append(' ').append(withError(r.last().brier()[n], r.last().standardError()[n])).append(" |");
            }
            md.append(' ').append(withError(r.last().brierLM(), r.last().brierLMStandardError())).append(" |\n");
        }
        md.append("\nFLOPs are counted from the matmuls (2 per multiply-accumulate, training 3x forward; attention "
                + "over half the context in training and all of it in inference). Generation is timed at T = 1, "
                + GENERATION_TOKENS + " new tokens per sequence. Brier-n is the last validation evaluation's, at "
                + "chunk boundaries for both models, with its standard error; BrierLM (x100) is the geometric mean "
                + "of Brier-1..4, so it is 0 until all four are positive. An estimate of Brier-n can be negative: it "
                + "is twice the rate at which a sample matches the true n tokens minus the rate at which two samples "
                + "match each other, so a model whose samples agree with each other more often than with the text "
                + "scores below 0, and one that knows nothing scores about 0.\n\n");
        md.append(goals(rows));
        boolean plotted = Plots.canDraw() && writeChart(rows, out.resolve("brier_vs_flops.png"));
        md.append(plotted ? "![Brier-1..4 against training FLOPs](brier_vs_flops.png)\n"
                : !Plots.canDraw() ? "(No plot: " + Plots.NO_FONTS + ".)\n"
                : "(No plot: no run logged two validation evaluations; lower train.eval_every for a curve.)\n");
        try {
            Files.createDirectories(out);
            Files.writeString(out.resolve("report.md"), md.toString());
        } catch (IOException e) {
            throw new UserError("cannot write the report under " + out + ": " + e.getMessage());
        }
        return md.toString();
    }

    /**
     * One sentence on the method's two promises as measured: a CALM's Brier-1 as a share of a token model's (with its
     * standard error, and only when both can be told from zero: more than two standard errors above it), and its
     * generation speed as a multiple of the token model's at each timed batch.
     *
     * @param k the CALM's tokens per step
     */
    public static String versus(Row calm, Row token, int k) {
        double c = calm.last().brier()[0], cse = calm.last().standardError()[0];
        double t = token.last().brier()[0], tse = token.last().standardError()[0];
        String scores = String.format("%s against %s at %s FLOPs, both at chunk boundaries", withError(c, cse),
                withError(t, tse), Plots.human(token.trainingFlops()));
        String quality;
        if (!(t > 2 * tse)) {
            quality = "the token model's Brier-1 cannot be told from zero at this budget, so no share is given ("
                    + scores + ")";
        } else if (!(c > 2 * cse)) {
            quality = "the CALM's Brier-1 cannot be told from zero at this budget (" + scores + ")";
        } else {
            double[] share = ratio(c, cse, t, tse);
            quality = String.format("the CALM's Brier-1 is %.0f%% +- %.0f%% of the token model's (%s)", 100 * share[0],
                    100 * share[1], scores);
        }
        return String.format("At %s training FLOPs %s, and it generates %.1fx the token model's tokens/s at batch %d "
                        + "and %.1fx at batch %d (K = %d tokens per step).", Plots.human(calm.trainingFlops()), quality,
                calm.generateTokensPerSecond()[0] / token.generateTokensPerSecond()[0], GENERATION_BATCHES[0],
                calm.generateTokensPerSecond()[1] / token.generateTokensPerSecond()[1], GENERATION_BATCHES[1], k);
    }

    /**
     * The method's two promises for each CALM against the first token model: quality (each Brier-n and BrierLM as a
     * share of the token model's, with its standard error, where both stand out from zero), speed (tokens/s at each
     * batch in fp32 and int8) and inference FLOPs per token, with the split by part.
     */
    /** A speed goal's verdict: at least {@code wanted} times the token model's tokens/s. */
    private static String speedGoal(double ratio, double wanted) {
        return String.format(">= %.0fx: %s", wanted, ratio >= wanted ? "met" : "not met");
    }

    static String goals(List<Row> rows) {
        Row token = rows.stream().filter(r -> !r.kind().equals("calm")).findFirst().orElse(null);
        if (token == null) return "";
        StringBuilder md = new StringBuilder();
        for (Row calm : rows) {
            if (!calm.kind().equals("calm")) continue;
            md.append(String.format("**%s against %s** (training FLOPs %s against %s)%n%n", calm.name(), token.name(),
                    Plots.human(calm.trainingFlops()), Plots.human(token.trainingFlops())));
            md.append("| | CALM | token model | CALM / token | goal |\n|---|---|---|---|---|\n");
            for (int n = 0; n <= BrierLM.MAX_N; n++) {
                boolean lm = n == BrierLM.MAX_N;
                double c = lm ? calm.last().brierLM() : calm.last().brier()[n];
                double cs = lm ? calm.last().brierLMStandardError() : calm.last().standardError()[n];
                double t = lm ? token.last().brierLM() : token.last().brier()[n];
                double ts = lm ? token.last().brierLMStandardError() : token.last().standardError()[n];
                String share = !(t > 2 * ts) ? "token model's cannot be told from zero"
                        : !(c > 2 * cs) ? "CALM's cannot be told from zero" : shareOf(c, cs, t, ts);
                String goal = !lm ? "positive beyond 2 SE: " + (c > 2 * cs ? "met" : "not met")
                        : !(t > 2 * ts) ? ">= 75%: the token model's cannot be told from zero"
                        : ">= 75%: " + (c >= 0.75 * t ? "met" : "not met");
                md.append(String.format("| %s | %s | %s | %s | %s |%n", lm ? "BrierLM" : "Brier-" + (n + 1),
                        withError(c, cs), withError(t, ts), share, goal));
            }
            for (int i = 0; i < GENERATION_BATCHES.length; i++) {
                double wanted = GENERATION_BATCHES[i] == 1 ? 2 : 3; // K = 4: the ideal is 4x
                double fp32 = calm.generateTokensPerSecond()[i] / token.generateTokensPerSecond()[i];
                md.append(String.format("| tokens/s, batch %d, fp32 | %,.0f | %,.0f | %.2fx | %s |%n",
                        GENERATION_BATCHES[i], calm.generateTokensPerSecond()[i], token.generateTokensPerSecond()[i],
                        fp32, speedGoal(fp32, wanted)));
                if (calm.generateInt8TokensPerSecond() != null && token.generateInt8TokensPerSecond() != null) {
                    double int8 = calm.generateInt8TokensPerSecond()[i] / token.generateInt8TokensPerSecond()[i];
                    md.append(String.format("| tokens/s, batch %d, int8 | %,.0f | %,.0f | %.2fx | %s |%n",
                            GENERATION_BATCHES[i], calm.generateInt8TokensPerSecond()[i],
                            token.generateInt8TokensPerSecond()[i], int8, speedGoal(int8, wanted)));
                }
            }
            double flops = calm.inferenceFlopsPerToken() / token.inferenceFlopsPerToken();
            md.append(String.format("| inference FLOPs/token | %s | %s | %.2f | <= 0.5: %s |%n", Plots.human(
                    calm.inferenceFlopsPerToken()), Plots.human(token.inferenceFlopsPerToken()), flops,
                    flops <= 0.5 ? "met" : "not met"));
            calm.inferenceFlopsByPart().forEach((part, f) -> md.append(String.format(
                    "| - %s | %s | | %.2f | |%n", part, Plots.human(f), f / token.inferenceFlopsPerToken())));
            token.inferenceFlopsByPart().forEach((part, f) -> md.append(String.format(
                    "| - token model's %s | | %s | | |%n", part, Plots.human(f))));
            md.append('\n');
        }
        return md.toString();
    }

    private static String shareOf(double c, double cs, double t, double ts) {
        double[] r = ratio(c, cs, t, ts);
        return String.format("%.0f%% +- %.0f%%", 100 * r[0], 100 * r[1]);
    }

    /**
     * {@code a / b} and its standard error for independent estimates {@code a +- sa} and {@code b +- sb} (first
     * order: {@code (a/b) sqrt((sa/a)^2 + (sb/b)^2)}).
     */
    public static double[] ratio(double a, double sa, double b, double sb) {
        double r = a / b;
        return new double[] {r, Math.abs(r) * Math.hypot(sa / a, sb / b)};
    }

    /** {@code 0.0123 +- 0.0011}, three significant digits (Brier-4 is of order 1e-5 at small budgets). */
    static String withError(double value, double se) {
        return Double.isNaN(se) ? String.format("%.3g", value) : String.format("%.3g +- %.2g", value, se);
    }

    /**
     * Four panels (Brier-1..4 against training FLOPs, each run a series with its standard errors as bars) in one
     * PNG; false, writing nothing, when no run has two evaluations to draw a line through.
     */
    private static boolean writeChart(List<Row> rows, Path png) {
        if (rows.stream().noneMatch(r -> r.curve().size() >= 2)) return false;
        int w = 640, h = 420;
        BufferedImage grid = new BufferedImage(2 * w, 2 * h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = grid.createGraphics();
        for (int n = 0; n < BrierLM.MAX_N; n++) {
            XYChart chart = new XYChartBuilder().width(w).height(h).title("validation Brier-" + (n + 1))
                    .xAxisTitle("training FLOPs").yAxisTitle("Brier-" + (n + 1)).build();
            chart.getStyler().setxAxisTickLabelsFormattingFunction(Plots::human);
            chart.getStyler().setyAxisTickLabelsFormattingFunction(Plots::human);
            for (Row r : rows) {
                if (r.curve().isEmpty()) continue;
                int i = n;
                double[] x = r.curve().stream().mapToDouble(Scores::trainingFlops).toArray();
                double[] y = r.curve().stream().mapToDouble(s -> s.brier()[i]).toArray();
                double[] se = r.curve().stream().mapToDouble(s -> s.standardError()[i]).toArray();
                boolean bars = java.util.Arrays.stream(se).noneMatch(Double::isNaN);
                var series = bars ? chart.addSeries(r.name(), x, y, se) : chart.addSeries(r.name(), x, y);
                series.setMarker(SeriesMarkers.CIRCLE);
            }
            g.drawImage(BitmapEncoder.getBufferedImage(chart), (n % 2) * w, (n / 2) * h, null);
        }
        g.dispose();
        try {
            Files.createDirectories(png.getParent());
            ImageIO.write(grid, "png", png.toFile());
        } catch (IOException e) {
            throw new UserError("cannot write " + png + ": " + e.getMessage());
        }
        return true;
    }
}
