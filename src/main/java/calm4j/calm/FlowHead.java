package calm4j.calm;

import calm4j.ae.ChunkAutoencoder;
import calm4j.nn.Layers;
import calm4j.nn.Linear;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.LayerNormImpl;
import org.bytedeco.pytorch.LayerNormOptions;
import org.bytedeco.pytorch.LongVector;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.cat;

/**
 * The flow-matching head (docs/method.md §9): a small MLP with adaptive LayerNorm predicts the velocity that carries
 * Gaussian noise z0 to a latent z1 along the straight path z_t = (1 - t) z0 + t z1, conditioned on the hidden
 * state. Trained by regressing the velocity onto z1 - z0; sampled by integrating from t = 0 to 1 with the midpoint
 * rule. Parameter names follow the reference's ({@code generative_head.net.*}).
 *
 * <pre>
 * x = input_proj(z_t)                                  Linear(l -> d)
 * y = time_embed(floor(1000 t)) + cond_embed(h)         sinusoid(256) -> Linear -> SiLU -> Linear;  Linear(d -> d)
 * res_blocks[i]: (shift, scale, gate) = adaLN(silu(y)); x = x + gate * mlp(LN(x) * (1 + scale) + shift)
 * final_layer:   (shift, scale) = adaLN(silu(y));       v = linear(LN_noaffine(x) * (1 + scale) + shift)
 * </pre>
 */
public final class FlowHead extends GenerativeHead {
    static final int FREQUENCIES = 256;
    static final double MAX_PERIOD = 10000;
    static final double EPS = 1e-6;

    /** {@code x + gate * MLP(modulate(LN(x), shift, scale))}, the adaLN residual block. */
    static final class ResBlock extends Module {
        final LayerNormImpl inLn;
        final Linear mlp0, mlp2, ada;
        final Module mlp, adaLN; // held: libtorch calls back into every registered module's Java object
        final long d;

        ResBlock(long d) {
            this.d = d;
            var o = new LayerNormOptions(new LongVector(new long[] {d}));
            o.eps().put(EPS);
            inLn = register_module("in_ln", new LayerNormImpl(o));
            mlp = register_module("mlp", new Module());
            mlp0 = mlp.register_module("0", xavierLinear(d, d));
            mlp2 = mlp.register_module("2", xavierLinear(d, d));
            adaLN = register_module("adaLN_modulation", new Module());
            ada = adaLN.register_module("1", zeroLinear(d, 3 * d));
        }

        Tensor forward(Tensor x, Tensor y) {
            TensorVector m = ada.forward(torch.silu(y)).chunk(3, -1); // shift, scale, gate: each [rows, d]
            Tensor h = inLn.forward(x).mul(m.get(1).add(c(1.0))).add(m.get(0));
            return x.add(m.get(2).mul(mlp2.forward(torch.silu(mlp0.forward(h)))));
        }
    }

    private final long d;
    private final int latent, numTargets, steps;
    private final Linear time0, time2, condEmbed, inputProj, finalLinear, finalAda;
    private final List<ResBlock> blocks = new ArrayList<>();
    // Held: libtorch calls back into every registered module's Java object (train/eval recurse through them).
    private final Module net, blockList, time, timeMlp, fin, finAda;

    /** The head {@code c} describes over hidden states of width {@code d} and latents of size {@code latent}. */
    FlowHead(int d, int latent, HeadConfig.Flow c) {
        this.d = d;
        this.latent = latent;
        this.numTargets = c.targets();
        this.steps = c.steps();
        int numBlocks = c.numBlocks();
        net = register_module("net", new Module());
        time = net.register_module("time_embed", new Module());
        timeMlp = time.register_module("mlp", new Module());
        time0 = timeMlp.register_module("0", Layers.linear(FREQUENCIES, d, true));
        time2 = timeMlp.register_module("2", Layers.linear(d, d, true));
        try (NoGradGuard ng = new NoGradGuard()) { // the time MLP's weights: N(0, 0.02), biases zero
            torch.normal_(time0.weight(), 0, 0.02);
            torch.normal_(time2.weight(), 0, 0.02);
            time0.bias().zero_();
            time2.bias().zero_();
        }
        condEmbed = net.register_module("cond_embed", xavierLinear(d, d));
        inputProj = net.register_module("input_proj", xavierLinear(latent, d));
        blockList = net.register_module("res_blocks", new Module());
        for (int i = 0; i < numBlocks; i++) blocks.add(blockList.register_module(String.valueOf(i), new ResBlock(d)));
        fin = net.register_module("final_layer", new Module());
        finalLinear = fin.register_module("linear", zeroLinear(d, latent));
        finAda = fin.register_module("adaLN_modulation", new Module());
        finalAda = finAda.register_module("1", zeroLinear(d, 2L * d));
    }

    static Linear xavierLinear(long in, long out) {
        Linear l = Layers.linear(in, out, true);
        try (NoGradGuard ng = new NoGradGuard()) {
            torch.xavier_uniform_(l.weight());
            l.bias().zero_();
        }
        return l;
    }

    /** A zero-initialised Linear: the adaLN outputs and the final layer start at zero (the identity, and v = 0). */
    static Linear zeroLinear(long in, long out) {
        Linear l = Layers.linear(in, out, true);
        try (NoGradGuard ng = new NoGradGuard()) {
            l.weight().zero_();
            l.bias().zero_();
        }
        return l;
    }

    @Override
    public void pack(calm4j.nn.WeightType type) {
        for (Linear l : new Linear[] {time0, time2, condEmbed, inputProj, finalLinear, finalAda}) l.pack(type);
        for (ResBlock b : blocks) {
            for (Linear l : new Linear[] {b.mlp0, b.mlp2, b.ada}) l.pack(type);
        }
    }

    @Override
    public String lossName() {
        return "flow-matching";
    }

    @Override
    String moduleName() {
        return "generative_head";
    }

    /** Sinusoidal features of floor(1000 t) [rows] -> [rows, 256]: cos then sin, periods up to 10000. */
    static Tensor timeFeatures(Tensor t) {
        long half = FREQUENCIES / 2;
        Tensor steps = t.mul(c(1000.0)).floor().to(torch.ScalarType.Float);
        Tensor freqs = torch.arange(c(half), Layers.on(t, torch.ScalarType.Float))
                .mul(c(-Math.log(MAX_PERIOD) / half)).exp();
        Tensor args = steps.unsqueeze(1).mul(freqs.unsqueeze(0));
        return cat(-1, args.cos(), args.sin()).to(t.scalar_type());
    }

    /** The velocity at z_t [rows, l], times t [rows], for conditions c = cond_embed(h) [rows, d]. */
    Tensor velocity(Tensor z, Tensor t, Tensor c) {
        Tensor y = time2.forward(torch.silu(time0.forward(timeFeatures(t)))).add(c);
        Tensor x = inputProj.forward(z);
        for (ResBlock b : blocks) x = b.forward(x, y);
        TensorVector m = finalAda.forward(torch.silu(y)).chunk(2, -1); // shift, scale
        Tensor n = torch.layer_norm(x, new long[] {d}, new TensorOptional(), new TensorOptional(), EPS, false);
        return finalLinear.forward(n.mul(m.get(1).add(c(1.0))).add(m.get(0)));
    }

    /**
     * The flow-matching loss for given draws: targets z1, noise z0 (each [rows, l]) and times t [rows] for hidden
     * states h [rows, d]: mean over rows and dimensions of ||v(z_t, t, h) - (z1 - z0)||^2 with z_t = (1-t) z0 + t z1.
     */
    public Tensor velocityLoss(Tensor h, Tensor z1, Tensor z0, Tensor t) {
        Tensor tt = t.unsqueeze(1);
        Tensor zt = z0.mul(tt.neg().add(c(1.0))).add(z1.mul(tt));
        return velocity(zt, t, condEmbed.forward(h)).sub(z1.sub(z0)).square().mean();
    }

    /** N targets z1 = mu + sigma * eps per position from the posterior, each with its own noise and time. */
    @Override
    public Tensor loss(Tensor h, ChunkAutoencoder.Posterior next, Tensor nextTokens) {
        long p = h.size(0);
        Tensor z1;
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor eps = torch.randn(new long[] {numTargets, p, latent}, Layers.on(next.mu(), next.mu().scalar_type()));
            z1 = next.mu().unsqueeze(0).add(next.sigma().unsqueeze(0).mul(eps)).reshape(numTargets * p, latent);
        }
        Tensor hs = h.unsqueeze(0).expand(numTargets, p, h.size(1)).reshape(numTargets * p, h.size(1));
        Tensor z0 = torch.randn_like(z1);
        Tensor t = torch.rand(new long[] {numTargets * p}, Layers.on(z1, z1.scalar_type()));
        return velocityLoss(hs, z1, z0, t);
    }

    /**
     * Multiply-accumulates of one velocity evaluation, the condition's embedding excluded: the input and time
     * embeddings (over {@value #FREQUENCIES} frequencies), each block's MLP and adaLN, and the final layer.
     */
    private double velocityMacs() {
        double dd = (double) d * d;
        return (double) latent * d + FREQUENCIES * d + dd + blocks.size() * 5 * dd + 2 * dd + (double) d * latent;
    }

    @Override
    public double trainingMacsPerPosition() {
        return (double) d * d + numTargets * velocityMacs(); // one velocity evaluation per posterior target
    }

    @Override
    public double samplingMacs() {
        return (double) d * d + 2.0 * steps * velocityMacs(); // two evaluations per midpoint step
    }

    /** Integrates dz/dt = v(z, t, h) from z(0) = z0 to t = 1 with {@code steps} midpoint steps. */
    Tensor integrate(Tensor z0, Tensor c) {
        double dt = 1.0 / steps;
        Tensor z = z0;
        for (int i = 0; i < steps; i++) {
            Tensor t = torch.full(new long[] {z.size(0)}, c(i * dt), Layers.on(z, z.scalar_type()));
            Tensor k1 = velocity(z, t, c);
            Tensor mid = z.add(k1.mul(c(dt / 2)));
            Tensor k2 = velocity(mid, t.add(c(dt / 2)), c);
            z = z.add(k2.mul(c(dt)));
        }
        return z;
    }

    @Override
    public Tensor sample(Tensor h, int[] counts, Generator[] perRow) {
        Tensor c = condEmbed.forward(h).index_select(0, rowOfEachSample(counts, h));
        return integrate(perRowNoise(counts, latent, perRow, true).to(h.device(), h.scalar_type()), c);
    }

    @Override
    public Tensor sample(Tensor h, int n) {
        long rows = h.size(0);
        Tensor c = condEmbed.forward(h);
        Tensor cs = c.unsqueeze(0).expand(n, rows, d).reshape(n * rows, d);
        Tensor z0 = torch.randn(new long[] {n * rows, latent}, Layers.on(h, h.scalar_type()));
        return integrate(z0, cs).view(n, rows, latent);
    }
}
