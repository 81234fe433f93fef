package calm4j.calm;

import calm4j.ae.ChunkAutoencoder;
import calm4j.nn.LayerNorm;
import calm4j.nn.Layers;
import calm4j.nn.PackedLinear;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.Generator;
import calm4j.nn.Linear;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;

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

    private final int noiseSize;
    private final int numSamples, numTargets; // N head samples and M posterior targets per position
    private final EnergyScore energy;
    private final Linear noiseEmbd, hiddenEmbd;
    private final LayerNorm normNoise, normHidden;
    private final Module blockList;
    private final List<Block> blocks = new ArrayList<>();
    private final FinalLayer finalLayer;
    private final FirstToken firstToken; // null unless the head samples the first token itself
    /** Weight of the consistency cross-entropy (experimental, $CALM4J_CONSISTENCY); the frozen autoencoder. */
    private final double consistency = Double.parseDouble(System.getenv().getOrDefault("CALM4J_CONSISTENCY", "0"));
    ChunkAutoencoder decoder;

    /**
     * Optional: the next chunk's first token drawn from a softmax and given to the generator as a condition, so the
     * energy score only has to model the rest of the chunk given it (docs/method.md §11). The logits are tied to
     * the backbone's token table, as the auxiliary head's are: {@code logits = RMSNorm(W h) E^T}, and the drawn
     * token enters the conditioning as {@code c = LayerNorm(Linear(h) + Linear(E[t1]))}.
     */
    static final class FirstToken extends Module {
        final Linear proj, embd;
        final calm4j.nn.RMSNorm norm;
        final calm4j.nn.Transformer backbone; // its token table is shared

        FirstToken(int d, calm4j.nn.Transformer backbone) {
            this.backbone = backbone;
            proj = register_module("proj", Layers.linear(d, d, false));
            norm = register_module("norm", new calm4j.nn.RMSNorm(d));
            embd = register_module("embd", Layers.linear(d, d, true));
        }

        PackedLinear tokens; // the projection onto the table, packed for inference

        /** Logits [rows, V] of the next chunk's first token. */
        Tensor logits(Tensor h) {
            Tensor u = norm.forward(proj.forward(h));
            return tokens != null ? tokens.forward(u) : torch.linear(u, backbone.embedTokens().weight());
        }

        /** The conditioning term of tokens {@code t} [...] (long): [..., d]. */
        Tensor condition(Tensor t) {
            return embd.forward(backbone.embed(t));
        }
    }

    public EnergyHead(int d, int noiseSize, int numBlocks, int latent, int numSamples, int numTargets, double alpha) {
        this(d, noiseSize, numBlocks, latent, numSamples, numTargets, alpha, null);
    }

    public EnergyHead(int d, int noiseSize, int numBlocks, int latent, int numSamples, int numTargets, double alpha,
                      calm4j.nn.Transformer firstTokenTable) {
        this.noiseSize = noiseSize;
        this.numSamples = numSamples;
        this.numTargets = numTargets;
        this.energy = new EnergyScore(alpha);
        noiseEmbd = register_module("noise_embd", Layers.linear(noiseSize, d, true));
        hiddenEmbd = register_module("hidden_embd", Layers.linear(d, d, true));
        normHidden = register_module("norm_hidden", new LayerNorm(d));
        normNoise = register_module("norm_noise", new LayerNorm(d));
        blockList = register_module("mlp_blocks", new Module());
        for (int i = 0; i < numBlocks; i++) blocks.add(blockList.register_module(String.valueOf(i), new Block(d)));
        finalLayer = register_module("final_layer", new FinalLayer(d, latent));
        firstToken = firstTokenTable == null ? null
                : register_module("first_token", new FirstToken(d, firstTokenTable));
    }

    @Override
    public String lossName() {
        return "energy";
    }

    @Override
    public void pack(WeightType type) {
        for (Linear l : new Linear[] {noiseEmbd, hiddenEmbd, finalLayer.l0, finalLayer.l2}) l.pack(type);
        for (Block b : blocks) b.pack(type);
        if (firstToken != null) {
            firstToken.proj.pack(type);
            firstToken.embd.pack(type);
            if (type.isPacked()) {
                firstToken.tokens = PackedLinear.of(firstToken.backbone.embedTokens().weight(), null, type);
            }
        }
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
        Tensor y;
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor eps = torch.randn(new long[] {numTargets, next.mu().size(0), next.mu().size(1)},
                    Layers.on(next.mu(), next.mu().scalar_type()));
            y = next.mu().unsqueeze(0).add(next.sigma().unsqueeze(0).mul(eps)); // [M, P, l]
        }
        if (firstToken == null) return energy.loss(sample(h, numSamples), y); // samples [N, P, l], one batched pass
        // Teacher forcing: the samples are conditioned on the true first token, whose softmax is scored by
        // cross-entropy (a likelihood: the one discrete choice of the chunk).
        Tensor t1 = nextTokens.select(1, 0);                                          // [P]
        Tensor ce = torch.cross_entropy(firstToken.logits(h), t1);
        Tensor eps = noise((long) numSamples * h.size(0), h).view(numSamples, h.size(0), noiseSize);
        Tensor x = generate(h, firstToken.condition(t1), eps, byRow -> byRow);
        Tensor loss = energy.loss(x, y).add(ce);
        if (consistency > 0 && decoder != null) {
            // The samples must decode to the token they were drawn for: CE of the frozen decoder's first-token
            // logits on two of the N samples (the others as they are).
            Tensor two = x.narrow(0, 0, 2).reshape(-1, x.size(2));                       // [2P, l]
            Tensor target = t1.repeat(2);
            loss = loss.add(torch.cross_entropy(decoder.firstTokenLogits(two), target).mul(new Scalar(consistency)));
        }
        return loss;
    }

    /**
     * {@code counts[r]} samples for row r of {@code h} [rows, d], as [sum(counts), l] grouped by row, each row's
     * noise drawn from its own generator. A row's samples then depend only on its generator and its own count,
     * never on the other rows of the batch (batched generation equals one-by-one generation).
     */
    @Override
    public Tensor sample(Tensor h, int[] counts, Generator[] perRow) {
        // Drawn in fp32 whatever the weights' type, so that bf16 weights see the same noise as fp32 ones.
        int width = noiseSize + (firstToken == null ? 0 : 1); // one more uniform draws the first token
        Tensor u = perRowNoise(counts, width, perRow, false).to(h.device(), h.scalar_type());
        Tensor eps = u.narrow(1, 0, noiseSize).sub(new Scalar(0.5));
        boolean aligned = Arrays.stream(counts).allMatch(c -> c == 1); // rows and samples already line up
        Tensor rowOf = aligned ? null : rowOfEachSample(counts, h);
        UnaryOperator<Tensor> toSamples = aligned ? byRow -> byRow : byRow -> byRow.index_select(0, rowOf);
        Tensor t1 = firstToken == null ? null : drawFirstToken(toSamples.apply(h), u.narrow(1, noiseSize, 1));
        return generate(h, t1 == null ? null : firstToken.condition(t1), eps, toSamples);
    }

    /** First tokens [S] for hidden states [S, d], by inverse CDF of the softmax at uniforms {@code u} [S, 1]. */
    private Tensor drawFirstToken(Tensor h, Tensor u) {
        Tensor cdf = torch.softmax(firstToken.logits(h), 1, new org.bytedeco.pytorch.ScalarTypeOptional())
                .cumsum(1);                                                           // [S, V]
        long v = cdf.size(1);
        return torch.searchsorted(cdf, u.contiguous(), false, false, new org.bytedeco.pytorch.StringViewOptional(),
                new org.bytedeco.pytorch.TensorOptional()).squeeze(1).clamp_max(new Scalar(v - 1));
    }

    /** Uniform noise U[-0.5, 0.5] of shape [rows, noiseSize] from libtorch's generator, on {@code like}'s device. */
    public Tensor noise(long rows, Tensor like) {
        return torch.rand(new long[] {rows, noiseSize}, Layers.on(like, like.scalar_type())).sub(new Scalar(0.5));
    }

    /** Samples for hidden states {@code h} [rows, d] with noise {@code eps} [rows, noiseSize]: [rows, l]. */
    public Tensor forward(Tensor h, Tensor eps) {
        if (firstToken != null) throw new IllegalStateException("this head draws its first token: use sample()");
        return generate(h, null, eps, byRow -> byRow);
    }

    /**
     * N samples per row of {@code h} [rows, d], as [N, rows, l], in one batched pass. The hidden-state embedding c
     * and its part of each block's first layer are computed once per row and shared by the row's N samples (the
     * reference recomputes both per sample).
     */
    @Override
    public Tensor sample(Tensor h, int n) {
        long rows = h.size(0);
        Tensor eps = noise(n * rows, h).view(n, rows, noiseSize);
        Tensor cond = null;
        if (firstToken != null) {
            Tensor probs = torch.softmax(firstToken.logits(h), 1, new org.bytedeco.pytorch.ScalarTypeOptional());
            cond = firstToken.condition(torch.multinomial(probs, n, true, new org.bytedeco.pytorch.GeneratorOptional()).t()); // [n, rows, d]
        }
        return generate(h, cond, eps, byRow -> byRow); // [rows, d] broadcasts over [n, rows, d]
    }

    /**
     * Samples for noise {@code eps} [..., noiseSize] conditioned on {@code h} [rows, d]; {@code toSamples} takes a
     * per-row tensor [rows, d] to one that lines up with (or broadcasts over) the samples.
     */
    private Tensor generate(Tensor h, Tensor tokenTerm, Tensor eps, UnaryOperator<Tensor> toSamples) {
        // c: [rows, d], or [..., d] per sample when a first token conditions each sample
        Tensor c = tokenTerm == null ? normHidden.forward(hiddenEmbd.forward(h))
                : normHidden.forward(toSamples.apply(hiddenEmbd.forward(h)).add(tokenTerm));
        UnaryOperator<Tensor> spread = tokenTerm == null ? toSamples : perSample -> perSample;
        Tensor e = normNoise.forward(noiseEmbd.forward(eps));  // [..., d]
        for (Block b : blocks) e = b.forward(e, spread.apply(b.conditioning(c)));
        return finalLayer.forward(e);
    }
}
