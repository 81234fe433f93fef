package calm4j.generate;

import calm4j.ar.TokenLM;
import calm4j.engine.Engine;
import calm4j.engine.UserError;
import calm4j.nn.KVCache;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Generation with the token baseline, one token a step: prompts prefilled once into a KV cache (left-padded to a
 * common length and masked, as {@link CalmGenerator} does), then temperature, top-k and top-p sampling, each
 * sequence from its own seeded generator. Temperature 0 is greedy. Each prompt is preceded by the same boundary as
 * in training: EOS, then PAD up to the data's chunk size.
 */
public final class TokenGenerator {
    public record Request(int[] prompt, int maxTokens, double temperature, int topK, double topP, long seed) {}

    public record Output(int[] tokens, String finishReason) {}

    private final TokenLM model;
    private final int eos, pad, boundary;
    private boolean stopAtEos = true;

    public TokenGenerator(TokenLM model, int eos, int pad, int boundary) {
        this.model = model;
        this.eos = eos;
        this.pad = pad;
        this.boundary = boundary;
    }

    /** Whether EOS ends a sequence (benchmarks turn it off to measure a fixed number of steps). */
    public TokenGenerator stopAtEos(boolean stop) {
        this.stopAtEos = stop;
        return this;
    }

    public List<Output> generate(List<Request> requests) {
        model.eval();
        try (NoGradGuard ng = new NoGradGuard()) {
            return run(requests);
        }
    }

    private List<Output> run(List<Request> requests) {
        int n = requests.size();
        int[][] prompts = new int[n][];
        Generator[] gens = new Generator[n];
        for (int i = 0; i < n; i++) {
            Request r = requests.get(i);
            if (r.temperature() < 0 || r.topP() <= 0 || r.topP() > 1 || r.topK() < 0) {
                throw new UserError("temperature must be >= 0, top-p in (0, 1] and top-k >= 0 (0: off)");
            }
            int[] p = new int[boundary + r.prompt().length];
            Arrays.fill(p, 0, boundary, pad);
            p[0] = eos;
            System.arraycopy(r.prompt(), 0, p, boundary, r.prompt().length);
            if (p.length >= model.contextTokens()) {
                throw new UserError("the prompt is " + r.prompt().length + " tokens; the model's context is "
                        + model.contextTokens() + " tokens including the boundary and one to generate");
            }
            prompts[i] = p;
            gens[i] = torch.make_generator_cpu();
            gens[i].set_current_seed(r.seed());
        }
        int width = Arrays.stream(prompts).mapToInt(p -> p.length).max().orElse(0);
        long[] ids = new long[n * width];
        byte[] real = new byte[n * width];
        for (int i = 0; i < n; i++) {
            int off = width - prompts[i].length;
            Arrays.fill(ids, i * width, i * width + off, pad);
            for (int j = 0; j < prompts[i].length; j++) {
                ids[i * width + off + j] = prompts[i][j];
                real[i * width + off + j] = 1;
            }
        }
        List<List<Integer>> out = new ArrayList<>();
        String[] finish = new String[n];
        for (int i = 0; i < n; i++) out.add(new ArrayList<>());
        KVCache cache = model.newCache();
        try {
            Tensor promptMask = Tensor.create(real, n, width).to(torch.ScalarType.Bool).retainReference();
            Tensor last = Engine.step(() -> model.logits(Tensor.create(ids, n, width), cache, promptMask)
                    .select(1, width - 1).retainReference());
            Tensor mask = promptMask;
            for (int step = 0; ; step++) {
                Tensor logits = last;
                long[] next = Engine.step(() -> sample(logits, requests, gens));
                boolean running = false;
                for (int i = 0; i < n; i++) {
                    if (finish[i] != null) continue;
                    if (next[i] == eos && stopAtEos) {
                        finish[i] = "eos";
                        continue;
                    }
                    out.get(i).add((int) next[i]);
                    if (out.get(i).size() >= requests.get(i).maxTokens()) finish[i] = "length";
                    else if (width + step + 1 >= model.contextTokens()) finish[i] = "context";
                    else running = true;
                }
                if (!running) break;
                Tensor m = mask;
                Tensor[] stepped = Engine.step(() -> {
                    Tensor mm = torch.cat(new TensorVector(m, torch.ones(n, 1).to(torch.ScalarType.Bool)), 1);
                    Tensor l = model.logits(Tensor.create(next, n, 1), cache, mm).select(1, 0);
                    return new Tensor[] {l.retainReference(), mm.retainReference()};
                });
                last.releaseReference();
                mask.releaseReference();
                last = stepped[0];
                mask = stepped[1];
            }
            last.releaseReference();
            mask.releaseReference();
        } finally {
            cache.clear();
        }
        List<Output> result = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            result.add(new Output(out.get(i).stream().mapToInt(Integer::intValue).toArray(), finish[i]));
        }
        return result;
    }

    /** One next token per row from logits [rows, V], each row with its own settings and generator. */
    private static long[] sample(Tensor logits, List<Request> requests, Generator[] gens) {
        long[] out = new long[requests.size()];
        for (int i = 0; i < out.length; i++) {
            Request r = requests.get(i);
            Tensor l = logits.select(0, i);
            if (r.temperature() == 0) {
                out[i] = l.argmax().item_long();
                continue;
            }
            Tensor p = torch.softmax(l.div(new Scalar(r.temperature())), -1, new ScalarTypeOptional());
            if (r.topK() > 0 && r.topK() < p.size(0)) {
                Tensor kth = p.topk(r.topK()).get0().min();
                p = p.mul(p.ge(kth).to(torch.ScalarType.Float));
            }
            if (r.topP() < 1) {
                // keep the smallest set of most likely tokens whose mass reaches top-p
                var sorted = p.sort(0, true);
                Tensor cum = sorted.get0().cumsum(0, new ScalarTypeOptional());
                Tensor keepSorted = cum.sub(sorted.get0()).lt(new Scalar(r.topP()));
                Tensor keep = torch.zeros_like(p).scatter(0, sorted.get1(), keepSorted.to(torch.ScalarType.Float));
                p = p.mul(keep);
            }
            out[i] = torch.multinomial(p, 1, false, new GeneratorOptional(gens[i])).item_long();
        }
        return out;
    }
}
