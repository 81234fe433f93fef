package calm4j.calm;

import calm4j.ae.ChunkAutoencoder;
import calm4j.nn.LayerNorm;
import calm4j.nn.Layers;
import calm4j.nn.Linear;
import calm4j.nn.PackedLinear;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.StringViewOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;

import static calm4j.nn.Tensors.c;

/**
 * The energy-based generative head (docs/method.md §2): one forward pass turns a hidden state and uniform noise into a
 * sample of the next latent vector.
 *
 * <pre>
 * e0 = LayerNorm(Linear(eps)), eps ~ U[-0.5, 0.5]^noise        (noise_embd, norm_noise)
 * c  = LayerNorm(Linear(h))                                      (hidden_embd, norm_hidden)
 * B times: (g, u) = chunk(L4(silu(L2(silu(L0([LayerNorm(e); c])))))),  e = e + down(silu(g) * u)
 * z  = L2(silu(L0(LayerNorm(e))))                                (final_layer; L2 starts at zero)
 * </pre>
 * Named as the reference's {@code mlp_generator}.
 */
public final class EnergyHead extends GenerativeHead {
    static final class Block extends Module {
        final LayerNorm inLn;
        final Module linearList;
        final Linear l0, l2, l4, down;

        Block(int d) {
            inLn = register_module("in_ln", new LayerNorm(d));
            linearList = register_module("linears", new Module());
            l0 = linearList.register_module("0", Layers.linear(2L * d, d, true));
            l2 = linearList.register_module("2", Layers.linear(d, d, true));
            l4 = linearList.register_module("4", Layers.linear(d, 2L * d, true));
            down = register_module("down_proj", Layers.linear(d, d, true));
        }

        /**
         * L0's part for the hidden-state embedding c, [rows, d]: L0([LN(e); c]) = W_e LN(e) + b + W_c c, and c is the
         * same for every sample of a row, so W_c c is computed once per row instead of once per sample.
         */
        Tensor conditioning(Tensor c) {
            long d = c.size(-1);
            return condPart != null ? condPart.forward(c) : Linear.apply(c, l0.weight().narrow(1, d, d), null);
        }

        /** L0's noise half W_e and its halves packed for inference: separate matrices once packed. */
        private PackedLinear noisePart, condPart;

        void pack(WeightType type) {
            if (!type.isPacked()) return;
            long d = l0.weight().size(0);
            noisePart = PackedLinear.of(l0.weight().narrow(1, 0, d), l0.bias(), type);
            condPart = PackedLinear.of(l0.weight().narrow(1, d, d), null, type);
            Linear.release(l0.weight());
            for (Linear l : new Linear[] {l2, l4, down}) l.pack(type);
        }

        /**
         * One block on samples {@code e} [..., d] given {@code cTerm} from {@link #conditioning}, already spread to
         * the samples (or broadcastable to them).
         */
        Tensor forward(Tensor e, Tensor cTerm) {
            long d = e.size(-1);
            Tensor n = inLn.forward(e);
            Tensor x = (noisePart != null ? noisePart.forward(n) : Linear.apply(n, l0.weight().narrow(1, 0, d),
                    l0.bias())).add(cTerm);
            TensorVector gu = l4.forward(torch.silu(l2.forward(torch.silu(x)))).chunk(2, -1);
            return e.add(down.forward(torch.silu(gu.get(0)).mul(gu.get(1))));
        }
    }

    static final class FinalLayer extends Module {
        final LayerNorm inLn;
        final Module linearList;
        final Linear l0, l2;

        FinalLayer(int d, int latent) {
            inLn = register_module("in_ln", new LayerNorm(d));
            linearList = register_module("linears", new Module());
            l0 = linearList.register_module("0", Layers.linear(d, d, true));
            l2 = linearList.register_module("2", Layers.linear(d, latent, true));
            // Zero-initialised output: the head starts by predicting the prior mean (0) for every sample.
            try (var ng = new NoGradGuard()) {
                l2.weight().zero_();
                l2.bias().zero_();
            }
        }

        Tensor forward(Tensor e) {
            return l2.forward(torch.silu(l0.forward(inLn.forward(e))));
        }
    }

    private final int d, latent, noiseSize;
    private final int numSamples, numTargets; // N head samples and M posterior targets per position
    private final EnergyScore energy;
    private final Linear noiseEmbd, hiddenEmbd;
    private final LayerNorm normNoise, normHidden;
    private final Module blockList;
    private final List<Block> blocks = new ArrayList<>();
    private final FinalLayer finalLayer;
    private final Proposal proposal; // null: the plain energy head

    /**
     * A chunk proposed by the multi-token head, refined by the energy head (docs/method.md §11). Each sample first
     * draws the next chunk's K tokens, each from the multi-token head's softmax for its position (independently:
     * that head learns each position's marginal fast, by cross-entropy), encodes them with the frozen encoder to
     * z0 (its posterior mean), and the energy head outputs {@code z = z0 + G(h, z0, eps)} with its conditioning
     * {@code c = LayerNorm(Linear(h) + Linear(z0))}. G starts at zero, so at first the samples are the proposals'
     * latents; the energy score then trains G to move them towards the joint distribution of real chunks. Still one
     * network pass a sample, and the output is a continuous vector the decoder maps to tokens.
     */
    static final class Proposal extends Module {
        final Linear embd; // z0 -> the conditioning
        final ChunkAutoencoder ae;    // the frozen autoencoder: not a child here
        ProposalTokens tokens;        // the CALM's multi-token (or low-rank) head, bound after it is built, or null
        SequentialTokenHead sequential; // instead of tokens: positions drawn one after the other, or null
        AdditiveLatent table;         // the latent of a proposed chunk without the encoder, or null; the CALM's

        Proposal(int d, int latent, ChunkAutoencoder ae) {
            this.ae = ae;
            embd = register_module("embd", Layers.linear(latent, d, true));
        }

        /** The latents [S, l] of proposed chunks [S, K]: the encoder's posterior means, or the additive table's. */
        Tensor encode(Tensor chunks) {
            if (table != null) return table.forward(chunks);
            try (NoGradGuard ng = new NoGradGuard()) {
                return ae.encode(chunks).mu();
            }
        }

        /** Each position's logits [rows, K, V] for hidden states [rows, d], or null when positions are drawn in sequence. */
        Tensor logits(Tensor h) {
            return sequential != null ? null : tokens.logits(h);
        }

        /**
         * {@code n} proposed chunks per row of {@code h} [rows, d]: [n, rows, K], from the head's {@code logits}
         * [rows, K, V] (computed once for a training step's auxiliary loss and its proposals), or in sequence.
         */
        Tensor drawFrom(Tensor h, Tensor logits, int n) {
            try (NoGradGuard ng = new NoGradGuard()) {
                if (sequential != null) {
                    long rows = h.size(0), d = h.size(1);
                    Tensor each = h.detach().unsqueeze(0).expand(n, rows, d).reshape(n * rows, d); // [n*rows, d]
                    Tensor u = torch.rand(new long[] {n * rows, ae.config().patchSize()}, Layers.on(h, torch.ScalarType.Float));
                    return sequential.draw(each, u, null).view(n, rows, -1);
                }
                long rows = logits.size(0), k = logits.size(1);
                Tensor probs = torch.softmax(logits.view(rows * k, -1), 1, new ScalarTypeOptional());
                Tensor t = torch.multinomial(probs, n, true, new GeneratorOptional());      // [rows * K, n]
                return t.view(rows, k, n).permute(2, 0, 1).contiguous();
            }
        }

        /**
         * {@code counts[r]} proposed chunks for row r, each row from its own generator: [sum(counts), K]. Sampled by
         * inverse CDF: one uniform per proposed token from the row's generator, searched in the cumulative softmax
         * (a multinomial call per row cost 280 us at K x 4,096, 70% of a batch-16 head step).
         */
        Tensor draw(Tensor h, int[] counts, Generator[] perRow, double[] temperatures) {
            try (NoGradGuard ng = new NoGradGuard()) {
                if (sequential != null) return drawInSequence(h, counts, perRow, temperatures);
                Tensor logits = tokens.logits(h);                                           // [rows, K, V]
                if (temperatures != null) logits = logits.div(inverseTemperatures(temperatures, logits));
                Tensor cdf = torch.softmax(logits, 2, new ScalarTypeOptional())
                        .to(torch.ScalarType.Float).cpu().cumsum(2);                        // [rows, K, V]
                long k = cdf.size(1), last = cdf.size(2) - 1;
                Tensor total = cdf.narrow(2, last, 1);                                      // [rows, K, 1], ~1
                Tensor u = GenerativeHead.perRowNoise(counts, k, perRow, false);            // [sum(counts), K]
                Tensor t;
                if (Arrays.stream(counts).allMatch(c -> c == 1)) {
                    t = search(cdf, u.unsqueeze(2).mul(total)).squeeze(2);                  // [rows, K]
                } else { // per row: a row's cdf is not copied once per sample
                    TensorVector rows = new TensorVector();
                    for (int r = 0, at = 0; r < counts.length; at += counts[r++]) {
                        Tensor ur = u.narrow(0, at, counts[r]).t().contiguous();            // [K, count]
                        rows.push_back(search(cdf.select(0, r), ur.mul(total.select(0, r))).t());
                    }
                    t = torch.cat(rows, 0);
                }
                return t.clamp_max(c(last)).to(h.device(), torch.ScalarType.Long);
            }
        }

        /** As {@link #draw}, each chunk's positions one after the other (the sequential head), one chunk a sample. */
        private Tensor drawInSequence(Tensor h, int[] counts, Generator[] perRow, double[] temperatures) {
            boolean aligned = Arrays.stream(counts).allMatch(c -> c == 1);
            Tensor rowOf = aligned ? null : GenerativeHead.rowOfEachSample(counts, h);
            Tensor each = aligned ? h : h.index_select(0, rowOf);                          // [S, d]
            Tensor u = GenerativeHead.perRowNoise(counts, ae.config().patchSize(), perRow, false);  // [S, K]
            Tensor divisor = null;
            if (temperatures != null) {
                divisor = inverseTemperatures(temperatures, each).view(-1, 1);              // [rows, 1]
                if (!aligned) divisor = divisor.index_select(0, rowOf);
            }
            return sequential.draw(each, u, divisor).to(h.device(), torch.ScalarType.Long);
        }

        /**
         * Each row's temperature as a divisor of its logits, [rows, 1, 1]: T itself, and for T = 0 a small one, which
         * makes each position's softmax its argmax.
         */
        static Tensor inverseTemperatures(double[] t, Tensor like) {
            double[] divisor = new double[t.length];
            for (int i = 0; i < t.length; i++) divisor[i] = Math.max(t[i], 1e-4);
            return Tensor.create(divisor).to(like.device(), like.scalar_type()).view(t.length, 1, 1);
        }

        /** The first index where {@code cdf} [..., V] exceeds each value [..., n]: a token of positive probability. */
        static Tensor search(Tensor cdf, Tensor values) {
            return torch.searchsorted(cdf, values, false, true, new StringViewOptional(), new TensorOptional());
        }
    }

    /**
     * The head {@code c} describes over hidden states of width {@code d}. With the frozen autoencoder {@code ae}
     * given, it refines proposed chunks ({@link Proposal}; the proposing multi-token head is bound with
     * {@link #proposeWith}); with null, it is the plain energy head.
     */
    EnergyHead(int d, int latent, HeadConfig.Energy c, ChunkAutoencoder ae) {
        this.d = d;
        this.latent = latent;
        this.noiseSize = c.noiseSize();
        this.numSamples = c.samples();
        this.numTargets = c.targets();
        this.energy = new EnergyScore(c.alpha());
        noiseEmbd = register_module("noise_embd", Layers.linear(noiseSize, d, true));
        hiddenEmbd = register_module("hidden_embd", Layers.linear(d, d, true));
        normHidden = register_module("norm_hidden", new LayerNorm(d));
        normNoise = register_module("norm_noise", new LayerNorm(d));
        blockList = register_module("mlp_blocks", new Module());
        for (int i = 0; i < c.numBlocks(); i++) blocks.add(blockList.register_module(String.valueOf(i), new Block(d)));
        finalLayer = register_module("final_layer", new FinalLayer(d, latent));
        proposal = ae == null ? null : register_module("proposal", new Proposal(d, latent, ae));
    }

    /**
     * Multiply-accumulates of one sample: the noise embedding, each block's four linears (L0 over [e; c] counted
     * whole) and the final layer; with proposals also z0's embedding and each block's conditioning, now per sample.
     * The drawing and encoding of the proposal are the multi-token head's and the encoder's.
     */
    private double macsPerSample() {
        double dd = (double) d * d, blocksMacs = blocks.size() * 6 * dd;
        double refine = proposal != null ? (double) latent * d + blocks.size() * dd : 0;
        return noiseSize * d + blocksMacs + dd + (double) d * latent + refine;
    }

    @Override
    public double trainingMacsPerPosition() {
        return (double) d * d + numSamples * macsPerSample(); // the hidden state's embedding once, then N samples
    }

    @Override
    public double samplingMacs() {
        return (double) d * d + macsPerSample();
    }

    @Override
    public int encodedPerPosition() {
        return proposal != null ? numSamples : 0;
    }

    /** The proposal stage, or null for the plain energy head. */
    Proposal proposal() {
        return proposal;
    }

    /** Samples refining proposed latents {@code z0} [S, l] for hidden states {@code h} [S, d] with noise [S, noise]. */
    Tensor refine(Tensor h, Tensor z0, Tensor eps) {
        return generate(h, z0, eps, byRow -> byRow);
    }

    /**
     * The head whose chunks this head refines, and the table that gives their latents (null: the frozen encoder);
     * the CALM builds both after the head.
     */
    void proposeWith(ProposalTokens tokens, AdditiveLatent table) {
        proposal.tokens = tokens;
        proposal.table = table;
    }

    /** As {@link #proposeWith(ProposalTokens, AdditiveLatent)}, the tokens drawn in sequence. */
    void proposeWith(SequentialTokenHead sequential, AdditiveLatent table) {
        proposal.sequential = sequential;
        proposal.table = table;
    }

    @Override
    public String lossName() {
        return "energy";
    }

    @Override
    public void pack(WeightType type) {
        for (Linear l : new Linear[] {noiseEmbd, hiddenEmbd, finalLayer.l0, finalLayer.l2}) l.pack(type);
        for (Block b : blocks) b.pack(type);
        if (proposal != null) proposal.embd.pack(type);
    }

    @Override
    String moduleName() {
        return "mlp_generator";
    }

    /**
     * The energy loss (docs/method.md §2): N head samples per position scored with the energy score against M samples
     * of the frozen encoder's posterior over the true next chunk.
     */
    @Override
    public Tensor loss(Tensor h, ChunkAutoencoder.Posterior next, Tensor nextTokens) {
        return scored(h, next, proposal == null ? null : proposal.logits(h)).loss();
    }

    /** The energy loss of one batch, the head samples it scored [N, P, l] (with their graph) and its targets [M, P, l]. */
    record Scored(Tensor loss, Tensor samples, Tensor targets) {}

    /**
     * The energy loss with the proposals drawn from the multi-token head's {@code logits} [P, K, V] (null for the
     * plain head): a training step computes them once for its auxiliary loss and its proposals. The samples are
     * returned too, for losses that score them in token space ({@link DecodedBrierScore}).
     */
    Scored scored(Tensor h, ChunkAutoencoder.Posterior next, Tensor logits) {
        Tensor y;
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor eps = torch.randn(new long[] {numTargets, next.mu().size(0), next.mu().size(1)},
                    Layers.on(next.mu(), next.mu().scalar_type()));
            y = next.mu().unsqueeze(0).add(next.sigma().unsqueeze(0).mul(eps)); // [M, P, l]
        }
        Tensor samples = sample(h, numSamples, logits); // [N, P, l], one batched pass
        return new Scored(energy.loss(samples, y), samples, y);
    }

    /**
     * A student's loss (docs/method.md §13): this plain head's samples for hidden states {@code h} [P, d] scored
     * against the true chunks' posterior samples {@code targets} [M, P, l] and a teacher's samples {@code teacher}
     * [T, P, l], half each.
     */
    Tensor distillationLoss(Tensor h, Tensor targets, Tensor teacher) {
        return energy.loss(sample(h, numSamples, null), targets, teacher, 0.5);
    }

    /** N, the samples per position the loss draws. */
    int samplesPerPosition() {
        return numSamples;
    }

    /**
     * {@code counts[r]} samples for row r of {@code h} [rows, d], as [sum(counts), l] grouped by row, each row's
     * noise drawn from its own generator. A row's samples then depend only on its generator and its own count,
     * never on the other rows of the batch (batched generation equals one-by-one generation).
     */
    @Override
    public Tensor sample(Tensor h, int[] counts, Generator[] perRow) {
        return sample(h, counts, perRow, null);
    }

    /**
     * With proposals, T tempers them: each position's proposal softmax is taken at temperature T (its logits divided
     * by T) before the token is drawn, and the head refines the tempered proposal. This approximates sampling
     * P(chunk)^(1/T) by the product of the positions' tempered marginals (exact where a chunk's tokens are
     * independent given h); it sharpens where a pool of candidates would hold no repeated chunk to count.
     */
    @Override
    public boolean tempers() {
        return proposal != null;
    }

    @Override
    public Tensor sample(Tensor h, int[] counts, Generator[] perRow, double[] temperatures) {
        // Drawn in fp32 whatever the weights' type, so that bf16 weights see the same noise as fp32 ones.
        Tensor eps = perRowNoise(counts, noiseSize, perRow, false).sub(c(0.5))
                .to(h.device(), h.scalar_type());
        boolean aligned = Arrays.stream(counts).allMatch(c -> c == 1); // rows and samples already line up
        Tensor rowOf = aligned ? null : rowOfEachSample(counts, h);
        UnaryOperator<Tensor> toSamples = aligned ? byRow -> byRow : byRow -> byRow.index_select(0, rowOf);
        Tensor z0 = proposal == null ? null : proposal.encode(proposal.draw(h, counts, perRow, temperatures))
                .to(h.scalar_type());
        return generate(h, z0, eps, toSamples);
    }

    /** Uniform noise U[-0.5, 0.5] of shape [rows, noiseSize] from libtorch's generator, on {@code like}'s device. */
    public Tensor noise(long rows, Tensor like) {
        return torch.rand(new long[] {rows, noiseSize}, Layers.on(like, like.scalar_type())).sub(c(0.5));
    }

    /** Samples for hidden states {@code h} [rows, d] with noise {@code eps} [rows, noiseSize]: [rows, l]. */
    public Tensor forward(Tensor h, Tensor eps) {
        if (proposal != null) throw new IllegalStateException("this head draws proposals: use sample()");
        return generate(h, null, eps, byRow -> byRow);
    }

    /**
     * N samples per row of {@code h} [rows, d], as [N, rows, l], in one batched pass. The hidden-state embedding c
     * and its part of each block's first layer are computed once per row and shared by the row's N samples (the
     * reference recomputes both per sample).
     */
    @Override
    public Tensor sample(Tensor h, int n) {
        return sample(h, n, proposal == null ? null : proposal.logits(h));
    }

    /** As {@link #sample(Tensor, int)}, the proposals drawn from the multi-token head's {@code logits} [rows, K, V]. */
    private Tensor sample(Tensor h, int n, Tensor logits) {
        long rows = h.size(0);
        Tensor eps = noise(n * rows, h).view(n, rows, noiseSize);
        Tensor z0 = null;
        if (proposal != null) {
            Tensor chunks = proposal.drawFrom(h, logits, n);                                  // [n, rows, K]
            z0 = proposal.encode(chunks.view(n * rows, -1)).view(n, rows, -1).to(h.scalar_type());
        }
        return generate(h, z0, eps, byRow -> byRow); // [rows, d] broadcasts over [n, rows, d]
    }

    /**
     * Samples for noise {@code eps} [..., noiseSize] conditioned on {@code h} [rows, d] (and on proposed latents
     * {@code z0} [..., l], one per sample, or null); {@code toSamples} takes a per-row tensor [rows, d] to one that
     * lines up with (or broadcasts over) the samples.
     */
    private Tensor generate(Tensor h, Tensor z0, Tensor eps, UnaryOperator<Tensor> toSamples) {
        // c: [rows, d], or [..., d] per sample when a proposal conditions each sample
        Tensor c = z0 == null ? normHidden.forward(hiddenEmbd.forward(h))
                : normHidden.forward(toSamples.apply(hiddenEmbd.forward(h)).add(proposal.embd.forward(z0)));
        UnaryOperator<Tensor> spread = z0 == null ? toSamples : perSample -> perSample;
        Tensor e = normNoise.forward(noiseEmbd.forward(eps));  // [..., d]
        for (Block b : blocks) e = b.forward(e, spread.apply(b.conditioning(c)));
        Tensor out = finalLayer.forward(e);
        return z0 == null ? out : z0.add(out);
    }
}
