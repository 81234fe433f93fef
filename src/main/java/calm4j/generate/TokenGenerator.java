package calm4j.generate;

import calm4j.ar.TokenLM;
import calm4j.engine.Engine;
import calm4j.engine.UserError;
import calm4j.generate.GenerationSession.Event;
import calm4j.nn.KVCache;
import org.bytedeco.pytorch.LongOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static calm4j.nn.Tensors.c;

/**
 * Generation with the token baseline, one token a step: prompts prefilled once into a KV cache (each row at its own
 * positions, as {@link CalmGenerator} does), then temperature, top-k and top-p sampling, each
 * sequence from its own seeded generator. Temperature 0 is greedy. Each prompt is preceded by the same boundary as
 * in training: EOS, then PAD up to the data's chunk size.
 */
public final class TokenGenerator {
    public record Output(int[] tokens, Finish finish) implements GenerationSession.Result {}

    private final TokenLM model;
    private final int eos, pad, boundary;
    private int prefillSlice = GenerationOptions.PREFILL_SLICE;
    private boolean stopAtEos = true;

    public TokenGenerator(TokenLM model, int eos, int pad, int boundary) {
        this.model = model;
        this.eos = eos;
        this.pad = pad;
        this.boundary = boundary;
    }

    /** Prefills at most {@code positions} prompt tokens per step (longer prompts in slices between steps). */
    public TokenGenerator prefillSlice(int positions) {
        if (positions < 1) throw UserError.badValue("prefill_slice", "must be at least 1, got " + positions);
        this.prefillSlice = positions;
        return this;
    }

    /** The most prompt tokens that leave room for the boundary and one generated token. */
    public int maxPromptTokens() {
        return model.contextTokens() - 1 - boundary;
    }

    /** The most tokens the context leaves for a prompt of {@code promptTokens}. */
    public int maxNewTokens(int promptTokens) {
        return Math.max(0, model.contextTokens() - boundary - promptTokens);
    }

    /** Whether EOS ends a sequence (benchmarks turn it off to measure a fixed number of steps). */
    public TokenGenerator stopAtEos(boolean stop) {
        this.stopAtEos = stop;
        return this;
    }

    /** Generates every request as one batch. */
    public List<Output> generate(List<GenerationRequest> requests) {
        try (Session session = session()) {
            List<Integer> ids = session.join(requests);
            Output[] outputs = new Output[requests.size()];
            while (!session.isEmpty()) {
                for (Event<Output> e : session.step()) if (e.finished() != null) outputs[ids.indexOf(e.id())] = e.finished();
            }
            return List.of(outputs);
        }
    }

    public Session session() {
        return new Session();
    }

    private static final class Seq {
        final int id;
        final GenerationRequest request;
        final SplittableRandom rng; // this sequence's own stream: its tokens never depend on the other rows
        final List<Integer> out = new ArrayList<>();
        int length; // tokens in the sequence so far (boundary + prompt + generated)
        long last;  // the token sampled last, fed back at the next step
        Finish finish;

        Seq(int id, GenerationRequest request, int length) {
            this.id = id;
            this.request = request;
            this.length = length;
            this.rng = new SplittableRandom(request.seed());
        }

        Output output() {
            return new Output(out.stream().mapToInt(Integer::intValue).toArray(), finish);
        }
    }

    /**
     * A batch that sequences join and leave between steps (continuous batching), as {@link CalmGenerator.Session}:
     * waiting prompts are prefilled a bounded number of positions per step ({@link PrefillQueue}), then every
     * running sequence gets one token. Not thread-safe: one thread drives a session.
     */
    public final class Session implements GenerationSession<Output> {
        /** The running sequences; each row's next tensor is its next-token logits. */
        private final RunningRows<Seq> rows = new RunningRows<>(model.newCache(), s -> s.id);
        private final PrefillQueue<Seq> prefill = new PrefillQueue<>(1, prefillSlice);
        private int nextId;

        private Session() {
            model.eval();
        }

        /** Running and waiting sequences. */
        @Override
        public int size() {
            return rows.size() + prefill.size();
        }

        @Override
        public long cacheBytes() {
            return rows.cache.bytes() + prefill.cacheBytes();
        }

        @Override
        public long cacheBytesWith(List<GenerationRequest> requests) {
            return rows.bytesWith(prefill, requests, this::needed, s -> s.request, model.cacheBytesPerPosition());
        }

        /** The cache positions a request's sequence can reach: boundary, prompt and new tokens, in the context. */
        private long needed(GenerationRequest r) {
            return Math.min(model.contextTokens(), boundary + r.prompt().length + r.maxTokens());
        }

        /** Queues sequences (prefilled by the next steps); returns their ids in order. */
        @Override
        public List<Integer> join(List<GenerationRequest> requests) {
            List<int[]> prompts = new ArrayList<>();
            for (GenerationRequest r : requests) {
                int[] p = new int[boundary + r.prompt().length];
                Arrays.fill(p, 0, boundary, pad);
                p[0] = eos;
                System.arraycopy(r.prompt(), 0, p, boundary, r.prompt().length);
                if (p.length >= model.contextTokens()) {
                    throw new UserError("the prompt is " + r.prompt().length + " tokens; the model's context is "
                            + model.contextTokens() + " tokens including the boundary and one to generate: shorten "
                            + "the prompt to at most " + maxPromptTokens() + " tokens");
                }
                prompts.add(p);
            }
            // Made outside the per-step memory scope: each sequence's generator must outlive it.
            List<Integer> ids = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                Seq s = new Seq(nextId++, requests.get(i), prompts.get(i).length);
                ids.add(s.id);
                prefill.add(s, Arrays.stream(prompts.get(i)).asLongStream().toArray());
            }
            return ids;
        }

        /** Prefills what the step's budget allows, then one token for every running sequence. */
        @Override
        public List<Event<Output>> step() {
            try (NoGradGuard ng = new NoGradGuard()) {
                if (!prefill.isEmpty()) {
                    Engine.step(() -> {
                        var ready = prefill.step(model::hidden, model::newCache);
                        if (ready != null) {
                            long need = ready.sequences().stream().mapToLong(s -> needed(s.request)).max()
                                    .orElse(0);
                            rows.append(ready.sequences(), ready.cache(), model.project(ready.last()), need);
                            ready.cache().clear();
                        }
                        return null;
                    });
                }
                if (rows.size() == 0) return List.of();
                List<Seq> running = new ArrayList<>(rows.active);
                List<Sampling> reqs = running.stream().map(s -> s.request.sampling()).toList();
                SplittableRandom[] streams = running.stream().map(s -> s.rng).toArray(SplittableRandom[]::new);
                List<List<Integer>> generated = running.stream().map(s -> s.out).toList();
                long[] next = Engine.step(() -> sample(penalised(rows.next(), reqs, generated), reqs, streams));
                List<Event<Output>> events = new ArrayList<>();
                List<Integer> keep = new ArrayList<>();
                for (int i = 0; i < running.size(); i++) {
                    Seq s = running.get(i);
                    s.last = next[i];
                    int[] added = new int[0];
                    if (next[i] == eos && stopAtEos) {
                        s.finish = Finish.EOS;
                    } else {
                        s.out.add((int) next[i]);
                        s.length++;
                        added = new int[] {(int) next[i]};
                        if (s.out.size() >= s.request.maxTokens()) s.finish = Finish.LENGTH;
                        else if (s.length >= model.contextTokens()) s.finish = Finish.CONTEXT;
                    }
                    events.add(new Event<>(s.id, added, s.finish == null ? null : s.output()));
                    if (s.finish == null) keep.add(i);
                }
                rows.retain(keep);
                if (rows.size() > 0) {
                    long[] feed = rows.active.stream().mapToLong(s -> s.last).toArray();
                    Engine.step(() -> {
                        rows.set(model.logits(Tensor.create(feed, feed.length, 1), rows.cache).select(1, 0));
                        return null;
                    });
                }
                return events;
            }
        }

        /** Removes a running or waiting sequence; unknown ids are ignored. */
        @Override
        public void cancel(int id) {
            rows.cancel(id);
            prefill.removeIf(s -> s.id == id);
        }

        @Override
        public void close() {
            rows.clear();
            prefill.clear();
        }
    }

    /**
     * One next token per row from logits [rows, V], in a few batched operations whatever the batch size: rows at
     * temperature 0 take the argmax; the others are sampled from softmax(logits / T), with top-k and top-p applied
     * to the rows that ask for them, by the inverse CDF at a uniform drawn from the row's own stream.
     */
    static long[] sample(Tensor logits, List<Sampling> requests, SplittableRandom[] streams) {
        int n = requests.size();
        long vocab = logits.size(1);
        float[] inverseT = new float[n];
        float[] uniforms = new float[n];
        boolean anySampled = false, anyGreedy = false;
        for (int i = 0; i < n; i++) {
            Sampling r = requests.get(i);
            inverseT[i] = r.temperature() == 0 ? 1f : (float) (1 / r.temperature());
            // in (0, 1]: the first token whose cumulative mass reaches u is drawn with its own probability
            uniforms[i] = r.temperature() == 0 ? 1f : (float) (1 - streams[i].nextDouble());
            anySampled |= r.temperature() > 0;
            anyGreedy |= r.temperature() == 0;
        }
        long[] greedy = new long[n];
        if (anyGreedy) logits.argmax(new LongOptional(-1), false).contiguous().data_ptr_long().get(greedy);
        if (!anySampled) return greedy;

        Tensor p = torch.softmax(logits.mul(Tensor.create(inverseT, n, 1)), -1, new ScalarTypeOptional());
        for (int i = 0; i < n; i++) {
            Sampling r = requests.get(i);
            if (r.temperature() > 0 && (r.topK() > 0 && r.topK() < vocab || r.topP() < 1)) {
                Tensor row = p.select(0, i);
                row.copy_(filtered(row, r.topK(), r.topP()));
            }
        }
        Tensor cdf = p.cumsum(-1, new ScalarTypeOptional()); // [rows, V]; a filtered row's total is below 1
        Tensor u = Tensor.create(uniforms, n, 1).mul(cdf.narrow(1, vocab - 1, 1));
        long[] drawn = new long[n];
        cdf.lt(u).sum(new long[] {-1}, false, new ScalarTypeOptional(torch.ScalarType.Long))
                .clamp_max(c(vocab - 1)).contiguous().data_ptr_long().get(drawn);
        long[] out = new long[n];
        for (int i = 0; i < n; i++) out[i] = requests.get(i).temperature() == 0 ? greedy[i] : drawn[i];
        return out;
    }

    /**
     * Logits [rows, V] with OpenAI's penalties applied to each row that asks for them, over the tokens it generated
     * so far: {@code l[t] -= count(t) * frequency_penalty + (count(t) > 0) * presence_penalty}.
     */
    static Tensor penalised(Tensor logits, List<Sampling> requests, List<List<Integer>> generated) {
        if (requests.stream().noneMatch(Sampling::penalised)) return logits;
        int n = requests.size();
        int vocab = (int) logits.size(1);
        float[] delta = new float[n * vocab];
        for (int i = 0; i < n; i++) {
            Sampling r = requests.get(i);
            if (!r.penalised()) continue;
            int[] count = new int[vocab];
            for (int t : generated.get(i)) count[t]++;
            for (int t = 0; t < vocab; t++) {
                if (count[t] > 0) delta[i * vocab + t] = (float) (count[t] * r.frequencyPenalty() + r.presencePenalty());
            }
        }
        return logits.sub(Tensor.create(delta, n, vocab).to(logits.scalar_type()));
    }

    /** Probabilities {@code p} [V] with all but the top-k tokens, then all beyond the top-p mass, set to zero. */
    private static Tensor filtered(Tensor p, int topK, double topP) {
        if (topK > 0 && topK < p.size(0)) {
            Tensor kth = p.topk(topK).get0().min();
            p = p.mul(p.ge(kth).to(torch.ScalarType.Float));
        }
        if (topP < 1) {
            // keep the smallest set of most likely tokens whose mass reaches top-p
            var sorted = p.sort(0, true);
            Tensor cum = sorted.get0().cumsum(0, new ScalarTypeOptional());
            Tensor keepSorted = cum.sub(sorted.get0()).lt(c(topP));
            Tensor keep = torch.zeros_like(p).scatter(0, sorted.get1(), keepSorted.to(torch.ScalarType.Float));
            p = p.mul(keep);
        }
        return p;
    }
}
