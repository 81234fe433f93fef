package calm4j.report;

import calm4j.app.LanguageModel;
import calm4j.engine.UserError;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import calm4j.generate.Sampling;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Samples of several runs from one prompt, side by side at each temperature, saved as Markdown: what a reader of a
 * comparison wants to see beside the scores. Seeds 1..n, so a second run of the same models gives the same text.
 */
public final class Samples {
    private Samples() {}

    /**
     * Generates {@code perTemperature} continuations of {@code prompt} (at most {@code maxTokens} new tokens, EOS
     * ending one) from every run at every temperature, writes them to {@code out/samples.md} and returns the
     * Markdown.
     */
    public static String write(List<Path> runs, String prompt, int maxTokens, List<Double> temperatures,
                               int perTemperature, Path out) {
        StringBuilder md = new StringBuilder("# Samples\n\nPrompt: `" + prompt + "`, at most " + maxTokens
                + " new tokens, seeds 1.." + perTemperature + ". A CALM at T < 1 chooses among a pool of "
                + GenerationOptions.DEFAULT.pool() + " candidate chunks per step (docs/method.md §3).\n");
        for (Path run : runs) {
            try (LanguageModel lm = LanguageModel.load(run)) {
                int[] ids = lm.tokenizer().encode(prompt);
                for (double t : temperatures) {
                    lm.checkSampling(Sampling.at(t), GenerationOptions.DEFAULT);
                    List<GenerationRequest> requests = new ArrayList<>();
                    for (int s = 1; s <= perTemperature; s++) requests.add(new GenerationRequest(ids, maxTokens, t, s));
                    List<int[]> outs = lm.generate(requests, GenerationOptions.DEFAULT, true);
                    md.append(String.format("%n## %s (%s), temperature %s%n%n", run.getFileName(), lm.kind(),
                            t == 0.5 ? "1/2" : String.valueOf(t)));
                    for (int s = 0; s < outs.size(); s++) {
                        int[] all = IntStream.concat(IntStream.of(ids), IntStream.of(outs.get(s))).toArray();
                        md.append(s + 1).append(". ").append(lm.tokenizer().decode(all).strip()
                                .replaceAll("\\s+", " ")).append("\n");
                    }
                }
            }
        }
        try {
            Files.createDirectories(out);
            Files.writeString(out.resolve("samples.md"), md.toString());
        } catch (IOException e) {
            throw new UserError("cannot write the samples under " + out + ": " + e.getMessage());
        }
        return md.toString();
    }
}
