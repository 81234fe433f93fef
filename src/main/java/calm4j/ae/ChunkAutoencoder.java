package calm4j.ae;

import calm4j.nn.Layers;
import calm4j.nn.Linear;
import calm4j.nn.PackedLinear;
import calm4j.nn.RMSNorm;
import calm4j.nn.SwiGLU;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.EmbeddingImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.sum;

/**
 * The chunk autoencoder of CALM: K tokens <-> one latent vector of size l (docs/method.md §1). Context-free: each chunk
 * is encoded on its own. Parameter names follow the reference, so its checkpoints map one to one.
 *
 * <pre>
 * encoder: embed_tokens -> encoder_layers[0..n/2) per token -> flatten K*d -> squeeze_layer (K*d -> d)
 *          -> encoder_layers[n/2..n) -> norm -> hidden_to_latent (d -> 2l) = [mu ; log sigma]
 * decoder: latent_to_hidden (l -> d) -> decoder_layers[0..m/2) -> expand_layer (d -> K*d) -> K x d
 *          -> decoder_layers[m/2..m) per token -> norm -> logits = h E^T (E: the encoder's embedding, tied)
 * </pre>
 */
public final class ChunkAutoencoder extends Module {
    /** One "AE layer": a pre-RMSNorm residual SwiGLU MLP, x + mlp(norm(x)). No attention (docs/method.md §1). */
    static final class AeLayer extends Module {
        private final RMSNorm norm;
        private final SwiGLU mlp;

        AeLayer(int d, int ffn) {
            norm = register_module("layernorm", new RMSNorm(d));
            mlp = register_module("mlp", new SwiGLU(d, ffn));
        }

        Tensor forward(Tensor x) {
            return x.add(mlp.forward(norm.forward(x)));
        }
    }

    static final class Encoder extends Module {
        final EmbeddingImpl embedTokens;
        final Module layerList; // held here: libtorch calls back into every registered module's Java object
        final List<AeLayer> layers = new ArrayList<>();
        final Linear squeeze;
        final RMSNorm norm;
        final Linear hiddenToLatent;

        Encoder(AutoencoderConfig c) {
            int d = c.hiddenSize();
            embedTokens = register_module("embed_tokens", Layers.embedding(c.vocabSize(), d));
            layerList = register_module("encoder_layers", new Module());
            for (int i = 0; i < c.encoderLayers(); i++) {
                layers.add(layerList.register_module(String.valueOf(i), new AeLayer(d, c.intermediateSize())));
            }
            // With a bias, as the authors' squeeze layer (only the SwiGLU MLPs have none).
            squeeze = register_module("squeeze_layer", Layers.linear((long) c.patchSize() * d, d, true));
            norm = register_module("norm", new RMSNorm(d));
            hiddenToLatent = register_module("hidden_to_latent", Layers.linear(d, 2L * c.latentSize(), true));
        }
    }

    static final class Decoder extends Module {
        final Linear latentToHidden;
        final Module layerList;
        final List<AeLayer> layers = new ArrayList<>();
        final Linear expand;
        final RMSNorm norm;

        Decoder(AutoencoderConfig c) {
            int d = c.hiddenSize();
            latentToHidden = register_module("latent_to_hidden", Layers.linear(c.latentSize(), d, true));
            layerList = register_module("decoder_layers", new Module());
            for (int i = 0; i < c.decoderLayers(); i++) {
                layers.add(layerList.register_module(String.valueOf(i), new AeLayer(d, c.intermediateSize())));
            }
            expand = register_module("expand_layer", Layers.linear(d, (long) c.patchSize() * d, true));
            norm = register_module("norm", new RMSNorm(d));
        }
    }

    /** The encoder's Gaussian over z for each chunk: mean and log standard deviation, each [chunks, l]. */
    public record Posterior(Tensor mu, Tensor logSigma) {
        public Tensor sigma() {
            return logSigma.exp();
        }

        /** z = mu + sigma * eps, eps ~ N(0, I): the reparameterised sample. */
        public Tensor sample() {
            return mu.add(sigma().mul(torch.randn_like(mu)));
        }

        /** Per-dimension KL(N(mu, sigma^2) || N(0, 1)) = 0.5 (mu^2 + sigma^2 - 1 - 2 log sigma), [chunks, l]. */
        public Tensor klPerDim() {
            Tensor twoLogSigma = logSigma.mul(c(2.0)), sigmaSquared = twoLogSigma.exp();
            return mu.square().add(sigmaSquared).sub(c(1.0)).sub(twoLogSigma).mul(c(0.5));
        }
    }

    /** The parts of the training loss, for logging. */
    public record Loss(Tensor total, Tensor reconstruction, Tensor kl) {}

    private final AutoencoderConfig config;
    private final Encoder encoder;
    private final Decoder decoder;
    private PackedLinear vocabulary; // the tied projection packed for inference, or null

    public ChunkAutoencoder(AutoencoderConfig config) {
        config.requireBound();
        calm4j.engine.Memory.requireWeightsFit(parameterCount(config), "an autoencoder of width "
                + config.hiddenSize());
        this.config = config;
        encoder = register_module("encoder", new Encoder(config));
        decoder = register_module("decoder", new Decoder(config));
    }

    public AutoencoderConfig config() {
        return config;
    }

    /** The parameters such an autoencoder has, computed from its config before any is allocated. */
    public static double parameterCount(AutoencoderConfig c) {
        double d = c.hiddenSize(), k = c.patchSize(), l = c.latentSize();
        double layer = d + 3 * d * c.intermediateSize(); // norm and SwiGLU
        double encoder = c.vocabSize() * d + c.encoderLayers() * layer + (k * d * d + d) + d + (d * 2 * l + 2 * l);
        double decoder = (l * d + d) + c.decoderLayers() * layer + (d * k * d + k * d) + d;
        return encoder + decoder;
    }

    /** The token embedding (shared with the decoder's output layer). */
    public Tensor embedding() {
        return encoder.embedTokens.weight();
    }

    /** Encodes chunks of K token ids, [chunks, K] (int64), to their posterior. */
    public Posterior encode(Tensor tokens) {
        long n = tokens.size(0);
        int k = config.patchSize(), half = encoder.layers.size() / 2;
        Tensor h = encoder.embedTokens.forward(tokens); // [n, K, d]
        for (int i = 0; i < half; i++) h = encoder.layers.get(i).forward(h);
        h = encoder.squeeze.forward(h.reshape(n, (long) k * config.hiddenSize()));
        for (int i = half; i < encoder.layers.size(); i++) h = encoder.layers.get(i).forward(h);
        TensorVector parts = encoder.hiddenToLatent.forward(encoder.norm.forward(h)).chunk(2, -1);
        return new Posterior(parts.get(0), parts.get(1));
    }

    /** Decodes latents [chunks, l] to token logits [chunks, K, vocab]. */
    public Tensor decode(Tensor z) {
        return logits(positions(z));
    }

    /**
     * The decoder up to its split into K positions, [chunks, K, d]. From here on every position is decoded on its
     * own (the second half's layers act per token), so a position's tokens can be decoded without the others'.
     */
    private Tensor positions(Tensor z) {
        long n = z.size(0);
        int half = decoder.layers.size() / 2;
        Tensor h = decoder.latentToHidden.forward(z);
        for (int i = 0; i < half; i++) h = decoder.layers.get(i).forward(h);
        return decoder.expand.forward(h).reshape(n, config.patchSize(), config.hiddenSize());
    }

    /** The rest of the decoder on hidden states [..., d] of single positions: logits [..., vocab]. */
    private Tensor logits(Tensor h) {
        return vocabulary != null ? vocabulary.forward(lastHidden(h)) : torch.linear(lastHidden(h), embedding());
    }

    /**
     * Packs the decoder's weights for inference, the tied vocabulary projection included (a packed copy of the
     * embedding; the table itself stays float for the encoder). The encoder is left as it is.
     */
    public void packDecoder(WeightType type) {
        if (!type.isPacked()) return;
        decoder.latentToHidden.pack(type);
        for (AeLayer l : decoder.layers) l.mlp.pack(type);
        decoder.expand.pack(type);
        vocabulary = PackedLinear.of(embedding(), null, type);
    }

    /**
     * Packs the encoder's matmuls for inference (its token table stays float: the encoder only looks rows up). A
     * CALM whose head refines proposals encodes every proposed chunk while it generates (docs/method.md §11).
     */
    public void packEncoder(WeightType type) {
        if (!type.isPacked()) return;
        for (AeLayer l : encoder.layers) l.mlp.pack(type);
        encoder.squeeze.pack(type);
        encoder.hiddenToLatent.pack(type);
    }

    /** The decoder's per-position layers and final norm on [..., d]: what the tied embedding projects to logits. */
    private Tensor lastHidden(Tensor h) {
        for (int i = decoder.layers.size() / 2; i < decoder.layers.size(); i++) h = decoder.layers.get(i).forward(h);
        return decoder.norm.forward(h);
    }

    /** The most likely K tokens for each latent, [chunks, K]. */
    public Tensor decodeTokens(Tensor z) {
        Tensor h = positions(z); // [chunks, K, d]
        return argmaxInSlices(h.reshape(-1, config.hiddenSize())).view(z.size(0), config.patchSize());
    }

    /**
     * The argmax token of hidden states [rows, d], decoded in slices so that the logits of a slice, [slice, vocab]
     * floats, stay at most 256 MiB whatever the vocabulary: 1024 rows (16 MiB) at 4096, 523 at Llama-3's 128,257 (a
     * pool of 200 candidates for 8 sequences would otherwise be 3.3 GB of logits at once). 1024 rows decoded a pool
     * about 7% faster than 4096 here (1024-row slices page-faulted 0.5M times where 4096-row ones did 1.6M); not
     * fewer, because every slice's matmul packs the whole embedding (263 MB at Llama-3's vocabulary) again.
     * {@code max(-1)} returns the index {@code argmax} does (the first maximum) in about half the time here.
     * A decoding step's few rows are projected the other way round, E h^T [vocab, rows] reduced over the vocabulary:
     * OpenBLAS then streams the embedding instead of packing it, 1.2-1.6x faster for 4 to 32 rows, and a matrix-vector
     * product for one row, 3x faster (measured at a 4096 vocabulary; from 64 rows on the usual layout wins).
     */
    private Tensor argmaxInSlices(Tensor h) {
        long n = h.size(0);
        if (vocabulary == null && n == 1) return torch.mv(embedding(), lastHidden(h).view(-1)).max(0, false).get1()
                .view(1);
        if (vocabulary == null && n <= 32) return torch.mm(embedding(), lastHidden(h).t()).max(0, false).get1();
        long slice = Math.max(1, Math.min(1024, (64L << 20) / config.vocabSize()));
        if (n <= slice) return logits(h).max(-1, false).get1();
        TensorVector parts = new TensorVector();
        for (long at = 0; at < n; at += slice) {
            parts.push_back(logits(h.narrow(0, at, Math.min(slice, n - at))).max(-1, false).get1());
        }
        return torch.cat(parts, 0);
    }

    /**
     * K tokens for each latent z [chunks, l] drawn from the decoder's per-position softmaxes instead of their argmax:
     * position j's token by the inverse CDF at {@code uniforms} [chunks, K] (in [0, 1)). The sampler whose
     * distribution the token-space Brier score trains (docs/method.md §12): a latent between two chunks decodes to
     * either, in proportion, where the argmax always picks one.
     */
    public Tensor sampleTokens(Tensor z, Tensor uniforms) {
        long n = z.size(0), k = config.patchSize();
        Tensor h = positions(z).reshape(n * k, config.hiddenSize());
        long slice = Math.max(1, Math.min(1024, (64L << 20) / config.vocabSize()));
        Tensor u = uniforms.reshape(n * k, 1).to(z.device(), torch.ScalarType.Float);
        TensorVector parts = new TensorVector();
        for (long at = 0; at < n * k; at += slice) {
            long m = Math.min(slice, n * k - at);
            Tensor cdf = torch.softmax(logits(h.narrow(0, at, m)), -1, new org.bytedeco.pytorch.ScalarTypeOptional())
                    .to(torch.ScalarType.Float).cumsum(-1, new org.bytedeco.pytorch.ScalarTypeOptional()); // [m, V]
            Tensor target = u.narrow(0, at, m).mul(cdf.narrow(1, config.vocabSize() - 1, 1));
            parts.push_back(cdf.lt(target).sum(new long[] {1}, false, new org.bytedeco.pytorch.ScalarTypeOptional(
                    torch.ScalarType.Long)).clamp_max(c((long) config.vocabSize() - 1)));
        }
        return torch.cat(parts, 0).view(n, k);
    }

    /**
     * Decodes only what can repeat: for latents z [chunks, l] in groups (group g is the next {@code groupSizes[g]}
     * latents), the K tokens of every latent whose decoded chunk equals that of another latent of its group, and
     * null for every latent whose chunk is unique in its group, unless {@code whole[g]} asks for all of the group's
     * chunks. Exact, and cheaper than {@link #decodeTokens} because a chunk is decoded position by position and a
     * latent leaves as soon as no other latent of its group shares its tokens so far: a chunk whose first token is
     * unique is unique. This is what counting repeated samples needs (the T = 1/n pool, docs/method.md §3), where
     * a chunk seen once has no weight.
     */
    public long[][] decodeRepeated(Tensor z, int[] groupSizes, boolean[] whole) {
        int n = (int) z.size(0), k = config.patchSize();
        if (Arrays.stream(groupSizes).sum() != n) {
            throw new IllegalArgumentException("group sizes sum to " + Arrays.stream(groupSizes).sum()
                    + ", not the " + n + " latents");
        }
        int[] groupOf = new int[n];
        for (int g = 0, at = 0; g < groupSizes.length; at += groupSizes[g++]) {
            Arrays.fill(groupOf, at, at + groupSizes[g], g);
        }
        boolean allWhole = true;
        for (boolean w : whole) allWhole &= w;
        if (allWhole) { // nothing to leave out: one pass over every position
            long[] flat = toLongs(decodeTokens(z));
            long[][] out = new long[n][];
            for (int i = 0; i < n; i++) out[i] = Arrays.copyOfRange(flat, i * k, (i + 1) * k);
            return out;
        }
        // Equal latents decode to equal chunks: decode each distinct latent once (a head whose output does not yet
        // depend on its noise, as a fresh one's zero-initialised output layer, draws a pool of one latent).
        int[] latentOf = new int[n];
        long[] distinct = distinctRows(z, latentOf);
        Tensor h = positions(z.index_select(0, Tensor.create(distinct).to(z.device(), torch.ScalarType.Long)));
        long[][] tokens = new long[n][k];
        // Each latent's class: latents of one group whose chunks agree so far. It starts as the group and becomes
        // the pair (class, token) after each position; a latent alone in its class has a chunk seen once.
        long[] classOf = new long[n];
        for (int i = 0; i < n; i++) classOf[i] = groupOf[i];
        int[] active = IntStream.range(0, n).toArray();
        for (int j = 0; j < k && active.length > 0; j++) {
            int[] slot = new int[distinct.length];
            Arrays.fill(slot, -1);
            long[] needed = new long[distinct.length];
            int m = 0;
            for (int a : active) if (slot[latentOf[a]] < 0) needed[slot[latentOf[a]] = m++] = latentOf[a];
            Tensor rows = h.select(1, j).index_select(0, Tensor.create(Arrays.copyOf(needed, m))
                    .to(h.device(), torch.ScalarType.Long)); // [m, d]
            long[] next = toLongs(argmaxInSlices(rows));
            Map<Long, Integer> classes = new HashMap<>();
            int[] size = new int[active.length];
            for (int a : active) {
                tokens[a][j] = next[slot[latentOf[a]]];
                classOf[a] = classes.computeIfAbsent(classOf[a] << 32 | tokens[a][j], c -> classes.size());
                size[(int) classOf[a]]++;
            }
            int kept = 0;
            for (int a : active) if (whole[groupOf[a]] || size[(int) classOf[a]] > 1) active[kept++] = a;
            active = Arrays.copyOf(active, kept);
        }
        long[][] out = new long[n][];
        for (int a : active) out[a] = tokens[a];
        return out;
    }

    /** The elements of an integer tensor, in order, on the CPU. */
    private static long[] toLongs(Tensor t) {
        long[] out = new long[(int) t.numel()];
        t.to(new Device("cpu"), torch.ScalarType.Long).contiguous().data_ptr_long().get(out);
        return out;
    }

    /**
     * The distinct rows of {@code z} [n, l] (equal bit for bit): returns the index of each distinct row's first
     * occurrence and sets {@code rowOf[i]} to the position of row i's value in that list.
     */
    private static long[] distinctRows(Tensor z, int[] rowOf) {
        int n = (int) z.size(0), width = (int) z.size(1);
        float[] flat = new float[n * width];
        z.to(new Device("cpu"), torch.ScalarType.Float).contiguous().data_ptr_float().get(flat);
        record Row(float[] flat, int from, int width) {
            @Override
            public boolean equals(Object o) {
                return o instanceof Row r && Arrays.equals(flat, from, from + width, r.flat, r.from, r.from + width);
            }

            @Override
            public int hashCode() {
                int h = 1;
                for (int i = from; i < from + width; i++) h = 31 * h + Float.floatToIntBits(flat[i]);
                return h;
            }
        }
        Map<Row, Integer> seen = new HashMap<>();
        long[] first = new long[n];
        for (int i = 0; i < n; i++) {
            int at = i;
            rowOf[i] = seen.computeIfAbsent(new Row(flat, i * width, width), r -> {
                first[seen.size()] = at;
                return seen.size();
            });
        }
        return Arrays.copyOf(first, seen.size());
    }

    /**
     * The training loss of a batch of chunks [chunks, K] (docs/method.md §1):
     * {@code K * mean token cross-entropy + beta * mean over chunks of sum_i max(lambda, KL_i)}, with DropToken on
     * the input, z sampled from the posterior, and DropLatent on z. In evaluation mode the dropouts are off.
     */
    public Loss loss(Tensor tokens) {
        boolean training = is_training();
        Tensor input = tokens;
        if (training && config.tokenDrop() > 0) {
            Tensor drop = torch.rand(tokens.sizes().vec().get(), Layers.on(tokens, torch.ScalarType.Float))
                    .lt(c(config.tokenDrop()));
            input = torch.where(drop, c((long) config.maskId()), tokens);
        }
        Posterior q = encode(input);
        Tensor z = config.variational() && training ? q.sample() : q.mu();
        if (training && config.latentDrop() > 0) z = torch.dropout(z, config.latentDrop(), true);
        Tensor logits = decode(z);
        Tensor reconstruction = reconstruction(logits, tokens);
        if (!config.variational()) return new Loss(reconstruction, reconstruction, torch.zeros_like(reconstruction));
        Tensor kl = clippedKl(q.klPerDim());
        return new Loss(reconstruction.add(kl.mul(c(config.klWeight()))), reconstruction, kl);
    }

    /** K times the mean token cross-entropy of {@code logits} [chunks, K, V] against {@code tokens} [chunks, K]. */
    Tensor reconstruction(Tensor logits, Tensor tokens) {
        Tensor ce = torch.cross_entropy(logits.reshape(-1, config.vocabSize()), tokens.reshape(-1));
        return ce.mul(c((double) config.patchSize()));
    }

    /**
     * Mean over chunks of sum_i max(lambda, KL_i). Clamping from below stops the gradient of dimensions already
     * under lambda: their KL is not pushed lower, which keeps them from collapsing to the prior (docs/method.md §1:
     * without it 71 of 128 dimensions collapsed).
     */
    Tensor clippedKl(Tensor klPerDim) {
        return sum(klPerDim.clamp_min(c(config.klClamp())), -1).mean();
    }

    /** The evaluation-mode loss from already computed logits (decoded from the mean) and per-dimension KL. */
    public Tensor evalLoss(Tensor logits, Tensor tokens, Tensor klPerDim) {
        Tensor r = reconstruction(logits, tokens);
        return config.variational() ? r.add(clippedKl(klPerDim).mul(c(config.klWeight()))) : r;
    }
}
