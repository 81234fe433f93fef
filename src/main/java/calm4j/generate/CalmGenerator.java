package calm4j.generate;

import calm4j.calm.CalmModel;
import calm4j.engine.Configs;
import calm4j.engine.Engine;
import calm4j.engine.UserError;
import calm4j.generate.GenerationSession.Event;
import calm4j.nn.KVCache;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Text generation with a CALM, K tokens a step (docs/method.md §3): the prompts are prefilled once into a KV cache,
 * then each step runs the backbone on one chunk per sequence, draws the next latent from the energy head, decodes
 * it by argmax and feeds the K new tokens back as the next input chunk.
 *
 * <p>How prompts become chunks. In calm4j's training, documents start at a chunk boundary right after a chunk that
 * ends the previous document, so every prompt is preceded by one boundary chunk (EOS then PAD). A model trained as the
 * authors train theirs saw documents that begin with the tokenizer's BOS instead: its prompts are preceded by BOS
 * alone ({@link #withPrefix}); a prompt that then fills no whole chunk is padded at its end, as their generation
 * pads it. A prompt whose length is not
 * a multiple of K ends in a partial chunk of r tokens; it is not padded or cut (either would show the model a chunk
 * it never saw). Instead the first generated chunk is drawn conditioned on starting with those r tokens, by
 * rejection: candidates are drawn until one begins with them (at most {@code maxDraws}); if none does, the best
 * candidate's first r tokens are overwritten with the prompt's and {@link Output#forcedPrefix} says so.
 *
 * <p>Prompts of different lengths are left-padded to the same number of chunks and the padding is masked out;
 * rotary attention depends only on position differences, and each sequence draws from its own random generator
 * seeded by its request, so a sequence comes out the same alone or in any batch. A sequence stops at EOS, at its
 * token limit or at the model's context, independently of the others; finished sequences leave the batch.
 */
public final class CalmGenerator {
    /** What was generated: the new tokens, where each step's chunk ended, and why it stopped. */
    public record Output(int[] tokens, int[] chunkEnds, Finish finish, boolean forcedPrefix, int steps)
            implements GenerationSession.Result {
        /**
         * This output as JSON: its text, token ids, where each chunk ends, the steps taken, why it finished and
         * whether the prompt's partial last chunk was forced (docs/method.md).
         */
        public ObjectNode json(calm4j.tokenize.Tokenizer tokenizer) {
            ObjectNode n = Configs.JSON.createObjectNode();
            n.put("text", tokenizer.decode(tokens));
            ArrayNode ids = n.putArray("token_ids");
            for (int t : tokens) ids.add(t);
            ArrayNode ends = n.putArray("chunk_ends");
            for (int e : chunkEnds) ends.add(e);
            n.put("steps", steps);
            n.put("finish_reason", finish.label());
            n.put("forced_prompt_prefix", forcedPrefix);
            return n;
        }
    }

    /** Called after every step with the tokens each still-running sequence gained. */
    public interface Listener {
        void onTokens(int request, int[] tokens);
    }

    private final CalmModel model;
    private final int eos, pad, k;
    private final int pool;
    private final boolean exact;
    private final int maxDraws;
    private final int prefillSlice;
    private boolean stopAtEos = true;
    private int[] prefix; // the tokens before every prompt

    /** A generator with calm4j's boundary chunk (EOS, PAD, ...) before every prompt. */
    public CalmGenerator(CalmModel model, int eos, int pad, GenerationOptions options) {
        this.model = model;
        this.eos = eos;
        this.pad = pad;
        this.k = model.patchSize();
        this.pool = options.pool();
        this.exact = options.exact();
        this.maxDraws = options.maxDraws();
        this.prefillSlice = options.prefillSlice();
        this.prefix = new int[k];
        Arrays.fill(prefix, pad);
        prefix[0] = eos;
    }

    /** Puts {@code tokens} before every prompt instead of calm4j's boundary chunk (EOS, PAD, ...). */
    public CalmGenerator withPrefix(int[] tokens) {
        this.prefix = tokens.clone();
        return this;
    }

    /** The most prompt tokens that leave room for one generated chunk in the model's context. */
    public int maxPromptTokens() {
        return (model.contextChunks() - 1) * k - prefix.length;
    }

    /**
     * The most tokens the context leaves for a prompt of {@code promptTokens}: generation ends with
     * {@link Finish#CONTEXT} there, whatever max_tokens asked.
     */
    public int maxNewTokens(int promptTokens) {
        return Math.max(0, model.contextChunks() * k - Math.max(prefix.length + promptTokens, k));
    }

    /** Refuses sampling settings this generator cannot serve, naming the reason ({@link Temperature#check}). */
    public void checkSampling(Sampling sampling) {
        Temperature.check(sampling, pool);
    }

    /** Whether EOS ends a sequence (benchmarks turn it off to measure a fixed number of steps). */
    public CalmGenerator stopAtEos(boolean stop) {
        this.stopAtEos = stop;
        return this;
    }

    /** Generates every request as one batch; the listener sees each step's new tokens as they come. */
    public List<Output> generate(List<GenerationRequest> requests, Listener listener) {
        try (Session session = session()) {
            List<Integer> ids = session.join(requests);
            Output[] outputs = new Output[requests.size()];
            while (!session.isEmpty()) {
                for (Event<Output> e : session.step()) {
                    int i = ids.indexOf(e.id());
                    if (listener != null && e.tokens().length > 0) listener.onTokens(i, e.tokens());
                    if (e.finished() != null) outputs[i] = e.finished();
                }
            }
            return List.of(outputs);
        }
    }

    /** A live batch for continuous batching; see {@link Session}. */
    public Session session() {
        return new Session();
    }

    /**
     * A batch that sequences join and leave between steps (continuous batching). {@link #join} queues new prompts;
     * every {@link #step} first prefills waiting prompts (short ones together, a long one a slice at a time:
     * {@link PrefillQueue}), then gives every running sequence its next chunk; finished and {@link #cancel}led
     * sequences leave. A sequence's result does not depend on what else is in the batch (its own generator, its own
     * positions in the cache). Not thread-safe: one thread drives a session.
     */
    public final class Session implements GenerationSession<Output> {
        /** The running sequences; each row's next tensor is its last hidden state. */
        private final RunningRows<Seq> rows = new RunningRows<>(model.newCache(), s -> s.id);
        private final PrefillQueue<Seq> prefill = new PrefillQueue<>(k, prefillSlice);
        private int nextId;

        private Session() {
            model.eval();
        }

        /** Running and waiting sequences. */
        @Override
        public int size() {
            return rows.size() + prefill.size();
        }

        /** Sequences generating (their prompts prefilled). */
        public int running() {
            return rows.size();
        }

        @Override
        public long cacheBytes() {
            return rows.cache.bytes() + prefill.cacheBytes();
        }

        @Override
        public long cacheBytesWith(List<GenerationRequest> requests) {
            return rows.bytesWith(prefill, requests, CalmGenerator.this::positionsNeeded, s -> s.request,
                    model.cacheBytesPerPosition());
        }

        /**
         * Queues sequences; their prompts are prefilled by the next steps. Returns their ids. Refuses prompts the
         * context cannot fit, before queueing any.
         */
        @Override
        public List<Integer> join(List<GenerationRequest> requests) {
            List<Seq> joined = new ArrayList<>();
            List<long[]> prefixes = new ArrayList<>();
            for (GenerationRequest r : requests) {
                checkSampling(r.sampling());
                int[] withBoundary = withBoundary(r.prompt());
                int complete = withBoundary.length / k;
                Seq s = new Seq(r, Arrays.copyOfRange(withBoundary, complete * k, withBoundary.length));
                s.positions = complete;
                joined.add(s);
                prefixes.add(Arrays.stream(Arrays.copyOf(withBoundary, complete * k)).asLongStream().toArray());
            }
            List<Integer> ids = new ArrayList<>();
            for (int i = 0; i < joined.size(); i++) {
                Seq s = joined.get(i);
                s.id = nextId++;
                ids.add(s.id);
                prefill.add(s, prefixes.get(i));
            }
            return ids;
        }

        /** Prefills what the step's budget allows, then one chunk for every running sequence. */
        @Override
        public List<Event<Output>> step() {
            try (NoGradGuard ng = new NoGradGuard()) {
                if (!prefill.isEmpty()) {
                    Engine.step(() -> {
                        var ready = prefill.step(model::hidden, model::newCache);
                        if (ready != null) {
                            long need = ready.sequences().stream().mapToLong(s -> positionsNeeded(s.request)).max()
                                    .orElse(0);
                            rows.append(ready.sequences(), ready.cache(), ready.last(), need);
                            ready.cache().clear();
                        }
                        return null;
                    });
                }
                if (rows.size() == 0) return List.of();
                List<Seq> running = new ArrayList<>(rows.active);
                long[][] chunks = Engine.step(() -> nextChunks(rows.next(), running));
                List<Event<Output>> events = new ArrayList<>();
                List<Integer> keep = new ArrayList<>();
                for (int i = 0; i < running.size(); i++) {
                    Seq s = running.get(i);
                    s.last = chunks[i];
                    int[] added = emit(s, chunks[i]);
                    events.add(new Event<>(s.id, added, s.finish == null ? null : s.output()));
                    if (s.finish == null) keep.add(i);
                }
                rows.retain(keep);
                if (rows.size() > 0) {
                    long[] feed = new long[rows.size() * k];
                    for (int j = 0; j < rows.size(); j++) System.arraycopy(rows.active.get(j).last, 0, feed, j * k, k);
                    Engine.step(() -> {
                        rows.set(model.hidden(Tensor.create(feed, rows.size(), k), rows.cache).select(1, 0));
                        return null;
                    });
                }
                return events;
            }
        }

        /** Removes a running or waiting sequence (its client went away, or its time ran out); unknown ids are ignored. */
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

    /** The cache positions a request's sequence can reach: its prompt's chunks and its new tokens', in the context. */
    long positionsNeeded(GenerationRequest r) {
        int prompt = prefix.length + r.prompt().length;
        return Math.min(model.contextChunks(), (prompt + r.maxTokens() + k - 1) / k + 1);
    }

    /**
     * {@code prompt} after the tokens before every prompt, padded at its end when it fills no whole chunk (as the
     * authors pad); refused when it leaves no chunk to generate in the context.
     */
    private int[] withBoundary(int[] prompt) {
        int[] withBoundary = new int[prefix.length + prompt.length];
        System.arraycopy(prefix, 0, withBoundary, 0, prefix.length);
        System.arraycopy(prompt, 0, withBoundary, prefix.length, prompt.length);
        if (withBoundary.length < k) { // no whole chunk to start from: pad the end, as the authors do
            int n = withBoundary.length;
            withBoundary = Arrays.copyOf(withBoundary, k);
            Arrays.fill(withBoundary, n, k, pad);
        }
        int context = model.contextChunks();
        if (withBoundary.length / k >= context) {
            throw new UserError("the prompt is " + prompt.length + " tokens; with the " + prefix.length
                    + " token(s) before it that is " + withBoundary.length / k + " chunks of " + k + ", and the "
                    + "model's context is " + context + " chunks (" + context * k + " tokens) including at least one "
                    + "to generate: shorten the prompt to at most " + maxPromptTokens() + " tokens");
        }
        return withBoundary;
    }

    private final class Seq {
        int id;
        final GenerationRequest request;
        final Sampling sampling;
        final int n; // 1/T when that is an integer (exact agreement applies), else 0
        final int[] partial;
        final Generator generator;
        final SplittableRandom rng;
        final List<Integer> out = new ArrayList<>();
        final List<Integer> chunkEnds = new ArrayList<>();
        Finish finish;
        boolean forced;
        int steps;
        int positions; // chunks in the sequence so far (boundary + prompt + generated)
        long[] last;   // the chunk sampled last, fed back at the next step

        Seq(GenerationRequest request, int[] partial) {
            this.request = request;
            this.sampling = request.sampling();
            this.n = Temperature.inverseInteger(sampling.temperature());
            this.partial = partial;
            this.generator = torch.make_generator_cpu();
            this.generator.set_current_seed(request.seed());
            this.rng = new SplittableRandom(request.seed() ^ 0x5DEECE66DL);
        }

        Output output() {
            return new Output(out.stream().mapToInt(Integer::intValue).toArray(),
                    chunkEnds.stream().mapToInt(Integer::intValue).toArray(), finish, forced, steps);
        }
    }

    /** Appends a sampled chunk's new tokens to {@code s}, decides whether it stops, and returns the new tokens. */
    private int[] emit(Seq s, long[] chunk) {
        int from = s.steps == 0 ? s.partial.length : 0; // the prompt's partial chunk is not output again
        s.steps++;
        s.positions++;
        List<Integer> added = new ArrayList<>();
        for (int j = from; j < k && s.finish == null; j++) {
            int t = (int) chunk[j];
            if (t == eos && stopAtEos) {
                s.finish = Finish.EOS;
                break;
            }
            s.out.add(t);
            added.add(t);
            if (s.out.size() >= s.request.maxTokens()) s.finish = Finish.LENGTH;
        }
        if (s.finish == null && s.positions >= model.contextChunks()) s.finish = Finish.CONTEXT;
        s.chunkEnds.add(s.out.size());
        return added.stream().mapToInt(Integer::intValue).toArray();
    }

    /** One chunk per running sequence: [rows][K]. */
    private long[][] nextChunks(Tensor h, List<Seq> running) {
        int rows = running.size();
        Generator[] gens = running.stream().map(s -> s.generator).toArray(Generator[]::new);
        int[] counts = running.stream().mapToInt(s -> s.steps == 0 && s.partial.length > 0
                ? Math.min(pool, partialBudget(s)) : tempersItself(s) || !Temperature.needsPool(s.sampling) ? 1
                : pool).toArray();
        // Rows that pick from their pool by counting need only the chunks that repeat in it; the others need all.
        boolean[] whole = new boolean[rows];
        double[] temperatures = new double[rows];
        for (int i = 0; i < rows; i++) {
            whole[i] = !countsPool(running.get(i));
            temperatures[i] = tempersItself(running.get(i)) ? running.get(i).sampling.temperature() : 1;
        }
        Tensor z = model.sampler().sample(h, counts, gens, temperatures); // [sum(counts), l]
        long[][] decoded = decode(z, counts, whole, gens);
        long[][] out = new long[rows][];
        for (int i = 0, at = 0; i < rows; at += counts[i++]) {
            Seq s = running.get(i);
            List<long[]> cands = Arrays.asList(decoded).subList(at, at + counts[i]);
            if (s.steps == 0 && s.partial.length > 0) {
                out[i] = matchPartial(s, cands, h.narrow(0, i, 1));
            } else if (!Temperature.needsPool(s.sampling) || tempersItself(s)) {
                out[i] = cands.get(0);
            } else if (usesExact(s)) {
                out[i] = exactAgreement(s, h.narrow(0, i, 1), cands);
            } else {
                int chosen = Temperature.pick(cands, s.sampling, s.rng);
                out[i] = cands.get(chosen) != null ? cands.get(chosen) : decodeOne(z.narrow(0, at + chosen, 1));
            }
        }
        return out;
    }

    /** Whether {@code s} picks this step's chunk from its pool by the batch rule (counting repeated chunks). */
    private boolean countsPool(Seq s) {
        return Temperature.needsPool(s.sampling) && !usesExact(s) && !(s.steps == 0 && s.partial.length > 0)
                && !tempersItself(s);
    }

    /**
     * Whether {@code s}'s temperature is applied by the head itself, to its proposals' softmaxes (a head that refines
     * proposals, T != 1, no top-p or top-k; not the first chunk of a partial prompt): one candidate a step then,
     * sharpened where a pool would often hold no repeated chunk to count (docs/method.md §3).
     */
    private boolean tempersItself(Seq s) {
        return model.sampler().tempers() && s.sampling.temperature() != 1 && s.sampling.topP() == 1
                && s.sampling.topK() == 0 && !usesExact(s) && !(s.steps == 0 && s.partial.length > 0);
    }

    /** Exact agreement applies to T = 1/n for an integer n >= 2 without a nucleus; other settings use the pool. */
    private boolean usesExact(Seq s) {
        return exact && s.n >= 2 && s.sampling.topP() == 1 && s.sampling.topK() == 0;
    }

    /**
     * Candidates that may be drawn to continue a prompt's partial last chunk: as many as the request's aligned steps
     * would draw in all (one per step at T = 1, a pool per step otherwise), at most maxDraws. The search then costs
     * at most what the rest of the request costs, so an unaligned prompt takes at most about twice an aligned one.
     */
    private int partialBudget(Seq s) {
        int steps = Math.max(1, Math.min((s.partial.length + s.request.maxTokens() + k - 1) / k,
                model.contextChunks() - s.positions));
        long perStep = Temperature.needsPool(s.sampling) ? pool : 1;
        return (int) Math.max(1, Math.min(maxDraws, perStep * steps));
    }

    /**
     * The chunks of latents z [sum(counts), l] grouped by row, null where only repeats are needed and the chunk is
     * unique in its group ({@link calm4j.ae.ChunkAutoencoder#decodeRepeated}); decoded by drawing tokens, every
     * chunk (a drawn chunk is known only once drawn).
     */
    private long[][] decode(Tensor z, int[] counts, boolean[] whole, Generator[] gens) {
        if (!model.decodesBySampling()) return model.autoencoder().decodeRepeated(z, counts, whole);
        Tensor tokens = model.decode(z, counts, gens).to(torch.ScalarType.Long).contiguous();
        long[] flat = new long[(int) tokens.numel()];
        tokens.data_ptr_long().get(flat);
        long[][] out = new long[(int) tokens.size(0)][];
        for (int i = 0; i < out.length; i++) out[i] = Arrays.copyOfRange(flat, i * k, (i + 1) * k);
        return out;
    }

    /** The K tokens of one latent [1, l] (a chunk drawn once, picked when no chunk of the pool repeated). */
    private long[] decodeOne(Tensor z) {
        return model.autoencoder().decodeRepeated(z, new int[] {1}, new boolean[] {true})[0];
    }

    /** {@code count} more decoded samples for {@code s}'s row (its hidden state {@code h}, [1, d]). */
    private List<long[]> drawMore(Seq s, Tensor h, int count) {
        Tensor z = model.sampler().sample(h, new int[] {count}, new Generator[] {s.generator}); // [count, l]
        return Arrays.asList(decode(z, new int[] {count}, new boolean[] {true}, new Generator[] {s.generator}));
    }

    private long[] matchPartial(Seq s, List<long[]> candidates, Tensor h) {
        int tried = 0;
        int budget = partialBudget(s);
        long[] best = candidates.get(0); // the candidate agreeing longest with the partial chunk, over every round
        int bestLen = -1;
        List<long[]> pool = new ArrayList<>(candidates);
        while (true) {
            List<long[]> matching = new ArrayList<>();
            for (long[] c : pool) {
                int m = agreement(c, s.partial);
                if (m == s.partial.length) matching.add(c);
                if (m > bestLen) {
                    bestLen = m;
                    best = c;
                }
            }
            if (!matching.isEmpty()) {
                return Temperature.needsPool(s.sampling) ? matching.get(Temperature.pick(matching, s.sampling, s.rng))
                        : matching.get(0);
            }
            tried += pool.size();
            if (tried >= budget) break;
            pool = drawMore(s, h, Math.min(this.pool, budget - tried));
        }
        // No candidate continues the partial chunk: keep the one agreeing longest with it, prompt tokens forced.
        long[] forced = best.clone();
        for (int j = 0; j < s.partial.length; j++) forced[j] = s.partial[j];
        s.forced = true;
        return forced;
    }

    /** How many leading tokens of {@code chunk} equal {@code prefix}. */
    private static int agreement(long[] chunk, int[] prefix) {
        int m = 0;
        while (m < prefix.length && chunk[m] == prefix[m]) m++;
        return m;
    }

    /** Exact T = 1/n: rounds of n draws until all n agree; after maxDraws draws, the batch rule on what was seen. */
    private long[] exactAgreement(Seq s, Tensor h, List<long[]> firstRound) {
        List<long[]> seen = new ArrayList<>(firstRound);
        for (int start = 0; start + s.n <= seen.size() || seen.size() < maxDraws; start += s.n) {
            if (start + s.n > seen.size()) {
                seen.addAll(drawMore(s, h, Math.max(s.n, pool)));
            }
            long[] first = seen.get(start);
            boolean agree = true;
            for (int j = 1; j < s.n && agree; j++) agree = Arrays.equals(first, seen.get(start + j));
            if (agree) return first;
            if (seen.size() >= maxDraws && start + 2 * s.n > seen.size()) break;
        }
        return seen.get(Temperature.pick(seen, s.sampling, s.rng));
    }

    private static Tensor boolTensor(boolean[] values, int rows, int cols) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < values.length; i++) b[i] = (byte) (values[i] ? 1 : 0);
        return Tensor.create(b, rows, cols).to(torch.ScalarType.Bool);
    }
}
