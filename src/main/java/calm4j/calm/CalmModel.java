package calm4j.calm;

import calm4j.ae.AutoencoderConfig;
import calm4j.ae.ChunkAutoencoder;
import calm4j.eval.BrierLM;
import calm4j.nn.KVCache;
import calm4j.nn.LayerNorm;
import calm4j.nn.Layers;
import calm4j.nn.Linear;
import calm4j.nn.Transformer;
import calm4j.nn.WeightType;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;

/**
 * A Continuous Autoregressive Language Model (docs/method.md §2), top to bottom in the order data flows:
 * <ol>
 *   <li>each chunk's K tokens are embedded (the backbone's own table) and compressed to one input vector:
 *       Linear(K*d -> 2d), SiLU, Linear(2d -> d), LayerNorm ({@code embed_proj}); the input stays discrete;</li>
 *   <li>the Llama-style {@code transformer} turns chunk vectors into hidden states; position i sees chunks 1..i;</li>
 *   <li>the {@link GenerativeHead} samples the next chunk's latent from hidden state i: the {@link EnergyHead}
 *       ({@code mlp_generator}) in one pass, or the {@link FlowHead} ({@code generative_head}) by integrating a
 *       velocity field;</li>
 *   <li>the frozen {@link ChunkAutoencoder} ({@code ae_model}) gives the training targets (samples of its posterior
 *       over the true next chunk) and decodes sampled latents back to K tokens.</li>
 * </ol>
 */
public final class CalmModel extends Module {
    private final CalmConfig config;
    private final AutoencoderConfig aeConfig;
    private final ChunkAutoencoder ae;
    private final Transformer transformer;
    private final Module embedProj;
    private final Linear embedIn, embedOut;
    private final LayerNorm embedNorm;
    private final GenerativeHead head;
    private final MultiTokenHead auxHead; // training only; null unless aux_token_weight > 0
    private final EnergyHead student;     // the plain head distilled from the proposal-refining one, or null
    private final LowRankTokenHead proposalTokens; // proposals' own low-rank head, or null (§11)
    private final SequentialTokenHead sequentialTokens; // or, drawing a chunk's positions in sequence, or null (§11)
    private final AdditiveLatent latentTable;      // proposals' latents without the encoder, or null (§11)

    /** A CALM on top of a trained autoencoder, which is frozen here (its parameters get no gradient). */
    public CalmModel(CalmConfig config, ChunkAutoencoder autoencoder) {
        this.config = config;
        this.aeConfig = autoencoder.config();
        int d = config.backbone().hiddenSize(), k = aeConfig.patchSize();
        ae = register_module("ae_model", autoencoder);
        Layers.freeze(ae);
        transformer = register_module("transformer", new Transformer(config.backbone(), aeConfig.vocabSize(),
                config.contextChunks() + BrierLM.MAX_N));
        embedProj = register_module("embed_proj", new Module());
        embedIn = embedProj.register_module("0", Layers.linear((long) k * d, 2L * d, true));
        embedOut = embedProj.register_module("2", Layers.linear(2L * d, d, true));
        embedNorm = embedProj.register_module("3", new LayerNorm(d));
        GenerativeHead chosen = config.headConfig().build(d, aeConfig.latentSize(), ae);
        head = register_module(chosen.moduleName(), chosen);
        auxHead = config.hasAuxTokenHead() ? register_module(AUX_MODULE, new MultiTokenHead(config.auxTokenHead(), d,
                k, aeConfig.vocabSize(), transformer.embedTokens(), config.auxTokenDecay())) : null;
        proposalTokens = config.hasLowRankProposals() ? register_module(PROPOSAL_MODULE, new LowRankTokenHead(d, k,
                aeConfig.vocabSize(), config.proposalRank(), config.auxTokenDecay())) : null;
        sequentialTokens = config.drawsSequentially() ? register_module(PROPOSAL_MODULE, new SequentialTokenHead(d,
                k, aeConfig.vocabSize(), config.proposalRank(), config.auxTokenDecay())) : null;
        latentTable = config.hasLatentTable() ? register_module(TABLE_MODULE, new AdditiveLatent(k,
                aeConfig.vocabSize(), aeConfig.latentSize())) : null;
        if (head instanceof EnergyHead e && config.refinesProposals()) {
            if (sequentialTokens != null) e.proposeWith(sequentialTokens, latentTable);
            else e.proposeWith(proposalTokens != null ? proposalTokens : auxHead, latentTable);
        }
        student = config.distills() ? register_module(STUDENT_MODULE, new EnergyHead(d, aeConfig.latentSize(),
                new HeadConfig.Energy(config.noiseSize(), config.numMlpLayers(), config.numSamples(),
                        config.numTargets(), config.alpha(), false), null)) : null;
    }

    /** Where proposals' low-rank token head and latent table live (§11): part of the model. */
    public static final String PROPOSAL_MODULE = "proposal_tokens", TABLE_MODULE = "proposal_latent";

    /** Where a distilled student head's parameters live (docs/method.md §13). */
    public static final String STUDENT_MODULE = "student_head";

    /**
     * The head that samples when the model generates or is evaluated: the distilled student when there is one (it
     * needs no proposals), else the trained head.
     */
    public GenerativeHead sampler() {
        return student != null ? student : head;
    }

    /** Where the training-only auxiliary head's parameters live (an export leaves them out). */
    public static final String AUX_MODULE = "aux_token_head";

    /**
     * Whether a parameter name belongs to a training-only module (exports leave those out): the multi-token head,
     * unless the generative head draws its proposals from it.
     */
    public boolean isTrainingOnly(String parameterName) {
        return parameterName.startsWith(AUX_MODULE + ".") && (!config.refinesProposals() || proposalTokens != null
                || sequentialTokens != null);
    }

    /**
     * Whether a parameter belongs to what inference never runs: with a student, the teacher head and the
     * multi-token head it draws proposals from.
     */
    public boolean isTeacherOnly(String parameterName) {
        return student != null && (parameterName.startsWith(AUX_MODULE + ".")
                || parameterName.startsWith(head.moduleName() + "."));
    }

    public CalmConfig config() {
        return config;
    }

    /**
     * Readies the model for inference with weights of {@code type}: bf16 converts every tensor; fp16 and int8 pack
     * each linear layer that generation runs (backbone, input compression, head, autoencoder decoder and its tied
     * vocabulary projection) for fbgemm. The float weights stay, so a state dict or export is unchanged.
     */
    public void forInference(WeightType type) {
        eval();
        if (type == WeightType.BF16) {
            to(torch.ScalarType.BFloat16, false);
        } else if (type.isPacked()) {
            head.pack(type); // first: heads that project onto the token table pack that before the table goes
            if (student != null) student.pack(type);
            if (auxHead != null) auxHead.pack(type);
            if (proposalTokens != null) proposalTokens.pack(type);
            if (sequentialTokens != null) sequentialTokens.pack(type);
            transformer.pack(type);
            embedIn.pack(type);
            embedOut.pack(type);
            ae.packDecoder(type);
            if (config.refinesProposals() && student == null && latentTable == null) {
                ae.packEncoder(type); // proposals are encoded at every step
            }
        }
        org.bytedeco.javacpp.Pointer.trimMemory(); // hand the freed float weights back to the system
    }

    /**
     * Training FLOPs per chunk position, counted from the matmuls each module reports: 6 x the trainable
     * multiply-accumulates (forward, and twice that backward) of the input compression, the backbone (attention over
     * the causal average of S/2 keys), the head with all its samples and the multi-token head when it is on; plus
     * 2 x the frozen encoder's forward MACs, for the targets and for each proposal. Elementwise work is left out.
     */
    public double trainingFlopsPerChunk() {
        double trainable = embedMacs() + config.backbone().macsPerPosition(config.contextChunks() / 2.0)
                + head.trainingMacsPerPosition() + (auxHead != null ? auxHead.macs() : 0)
                + (student != null ? student.trainingMacsPerPosition() : 0)
                + (proposalTokens != null ? proposalTokens.macs() : 0)
                + (sequentialTokens != null ? sequentialTokens.macs() : 0);
        int encoded = latentTable != null ? 0 : head.encodedPerPosition(); // the table replaces the proposals' passes
        return 6 * trainable + 2 * aeConfig.encoderMacsPerChunk() * (1 + encoded) + tokenBrierFlopsPerChunk();
    }

    /**
     * The token-space Brier score's FLOPs per chunk position: each of the N samples through the frozen decoder and
     * back to the sample (4 x its MACs: no weight gradients), and the softmaxes' N x N inner products (6 x).
     */
    private double tokenBrierFlopsPerChunk() {
        if (!config.hasTokenBrier()) return 0;
        int n = config.numSamples();
        return n * 4 * aeConfig.decoderMacsPerChunk()
                + 6 * DecodedBrierScore.macs(n, aeConfig.patchSize(), aeConfig.vocabSize());
    }

    /**
     * Inference FLOPs per generated token at T = 1: a chunk's compression, one backbone step over a full context, one
     * head sample (with its proposal: the multi-token head and the encoder) and one decode, divided by K.
     */
    public double inferenceFlopsPerToken() {
        return 2 * inferenceMacs().values().stream().mapToDouble(Double::doubleValue).sum() / aeConfig.patchSize();
    }

    /**
     * Multiply-accumulates of generating one chunk at T = 1 with a full context, by part: input compression,
     * backbone, head (one sample), proposal (the multi-token head's logits and the encoder, when the sampling head
     * refines proposals) and decoder.
     */
    public java.util.Map<String, Double> inferenceMacs() {
        var parts = new java.util.LinkedHashMap<String, Double>();
        parts.put("input compression", embedMacs());
        parts.put("backbone", config.backbone().macsPerPosition(config.contextChunks()));
        parts.put("head", sampler().samplingMacs());
        boolean proposes = config.refinesProposals() && student == null;
        double tokens = proposalTokens != null ? proposalTokens.macs() : sequentialTokens != null
                ? sequentialTokens.macs() : auxHead == null ? 0 : auxHead.macs();
        double latent = latentTable != null ? 0 : aeConfig.encoderMacsPerChunk();
        parts.put("proposal", proposes ? tokens + latent : 0.0);
        parts.put("decoder", aeConfig.decoderMacsPerChunk());
        return parts;
    }

    /** Multiply-accumulates of compressing one chunk's K embeddings: K*d -> 2d -> d. */
    private double embedMacs() {
        double d = config.backbone().hiddenSize();
        return aeConfig.patchSize() * d * 2 * d + 2 * d * d;
    }

    public ChunkAutoencoder autoencoder() {
        return ae;
    }

    public int patchSize() {
        return aeConfig.patchSize();
    }

    public GenerativeHead head() {
        return head;
    }

    /** Input vectors [B, S, d] of token ids [B, S*K]: each chunk's K embeddings concatenated and compressed. */
    public Tensor embedChunks(Tensor tokens) {
        long b = tokens.size(0), s = tokens.size(1) / patchSize();
        Tensor e = transformer.embed(tokens).reshape(b, s, (long) patchSize() * config.backbone().hiddenSize());
        return embedNorm.forward(embedOut.forward(torch.silu(embedIn.forward(e))));
    }

    /**
     * Hidden states [B, S, d] of token ids [B, S*K]; with a cache, the ids continue each row's cached positions and
     * are written into it.
     */
    public Tensor hidden(Tensor tokens, KVCache cache) {
        return transformer.forward(embedChunks(tokens), cache);
    }


    /** The context in chunks (the longest sequence the backbone's positions cover). */
    public int contextChunks() {
        return config.contextChunks();
    }

    /** An empty KV cache for the backbone (one position per chunk). */
    public KVCache newCache() {
        return transformer.newCache();
    }

    /** Bytes one chunk position of one sequence takes in the KV cache (a quarter of a token model's per token at K=4). */
    public long cacheBytesPerPosition() {
        return transformer.cacheBytesPerPosition();
    }

    /** The chunks of {@code tokens} [B, S*K] as rows [B*S, K]. */
    Tensor chunks(Tensor tokens) {
        return tokens.reshape(-1, patchSize());
    }

    /**
     * The parts of the training loss: the head's (energy score or flow matching), the auxiliary cross-entropy when
     * the multi-token head is on, the Brier score of the head's decoded samples when that is on, and a distilled
     * student's loss when there is one (each part null when off); {@code total} = head + aux_token_weight x aux -
     * token_brier_weight x tokenBrier + distill_weight x student.
     */
    public record Loss(Tensor total, Tensor head, Tensor aux, Tensor tokenBrier, Tensor student) {}

    /** The training loss of a block of token ids [B, (S+1)*K] (see {@link #losses}). */
    public Tensor loss(Tensor tokens) {
        return losses(tokens).total();
    }

    /**
     * The training loss of a block of token ids [B, (S+1)*K]: chunks 1..S are the input, and position i is scored on
     * chunk i+1 by the head's loss against the frozen encoder's posterior over it (the energy score, or flow
     * matching), plus the auxiliary cross-entropy of chunk i+1's tokens when that is on (docs/method.md §10), minus
     * the token-space Brier score of the head's samples when that is on (docs/method.md §12).
     */
    public Loss losses(Tensor tokens) {
        long len = tokens.size(1), k = patchSize();
        Tensor inputs = tokens.narrow(1, 0, len - k);
        Tensor targets = chunks(tokens.narrow(1, k, len - k)); // [B*S, K]
        Tensor h = hidden(inputs, null).reshape(-1, config.backbone().hiddenSize()); // [B*S, d]
        ChunkAutoencoder.Posterior q;
        try (NoGradGuard ng = new NoGradGuard()) {
            q = ae.encode(targets);
        }
        Tensor logits = auxHead == null ? null : auxHead.logits(h); // [B*S, K, V]: the auxiliary loss's and proposals'
        Tensor proposed = proposalTokens != null ? proposalTokens.logits(h) : logits; // what proposals draw from
        // Sequential proposals are drawn from h position by position; their head learns with the true tokens before.
        Tensor teacherForced = sequentialTokens != null ? sequentialTokens.logits(h, targets) : null;
        Tensor headLoss, tokenBrier = null;
        EnergyHead.Scored scored = null;
        if (head instanceof EnergyHead e) {
            scored = e.scored(h, q, config.refinesProposals() && sequentialTokens == null ? proposed : null);
            headLoss = scored.loss();
            if (config.hasTokenBrier()) tokenBrier = tokenBrier(scored.samples(), targets);
        } else {
            headLoss = head.loss(h, q, targets);
        }
        Tensor total = headLoss;
        Tensor aux = logits == null ? null : auxHead.lossOfLogits(logits, targets);
        if (aux != null) total = total.add(aux.mul(c(config.auxTokenWeight())));
        if (tokenBrier != null) total = total.sub(tokenBrier.mul(c(config.tokenBrierWeight())));
        // The proposals' own heads learn from the true chunk: the low-rank head's cross-entropy (weighted as the
        // auxiliary loss), the table's squared error to the encoder's means.
        if (proposalTokens != null) {
            total = total.add(proposalTokens.lossOfLogits(proposed, targets).mul(c(config.auxTokenWeight())));
        }
        if (teacherForced != null) {
            total = total.add(sequentialTokens.lossOfLogits(teacherForced, targets).mul(c(config.auxTokenWeight())));
        }
        if (latentTable != null) total = total.add(latentTable.fitLoss(targets, q.mu()));
        // The student (docs/method.md §13) samples for the backbone's hidden states, detached: the backbone learns
        // from the teacher and the multi-token head; it is scored against the true chunk and the teacher's samples.
        Tensor distilled = student == null ? null : student.distillationLoss(h.detach(), scored.targets(),
                scored.samples().detach());
        if (distilled != null) total = total.add(distilled.mul(c(config.distillWeight())));
        return new Loss(total, headLoss, aux, tokenBrier, distilled);
    }

    /**
     * The token-space Brier score (sum over n = 1..K, mean over positions) of head samples [N, P, l] decoded by the
     * frozen decoder, against the true next chunks [P, K]. The gradient reaches the head through the decoder.
     */
    private Tensor tokenBrier(Tensor samples, Tensor targets) {
        long n = samples.size(0), p = samples.size(1);
        Tensor logits = ae.decode(samples.reshape(n * p, -1)).view(n, p, patchSize(), -1); // [N, P, K, V]
        return DecodedBrierScore.score(logits, targets);
    }

    /**
     * The auxiliary token head's distribution of the next chunk's first token, [P, V] for hidden states [P, d]; null
     * when the model has no such head (an import, or aux_token_weight 0). Diagnostics only: generation never uses it.
     */
    public Tensor firstTokenProbabilities(Tensor h) {
        if (auxHead == null) return null;
        return torch.softmax(auxHead.logits(h).select(1, 0), 1, new ScalarTypeOptional());
    }

    /** {@code counts[r]} sampled chunks for row r, [sum(counts), K] grouped by row, from per-row generators. */
    public Tensor sampleChunks(Tensor h, int[] counts, Generator[] perRow) {
        return decode(sampler().sample(h, counts, perRow), counts, perRow);
    }

    /**
     * The K tokens of latents z [sum(counts), l] grouped by row: by argmax, or drawn from the decoder's softmaxes
     * with each row's uniforms from its own generator (config "decode").
     */
    public Tensor decode(Tensor z, int[] counts, Generator[] perRow) {
        if (!config.decodesBySampling()) return ae.decodeTokens(z);
        return ae.sampleTokens(z, GenerativeHead.perRowNoise(counts, patchSize(), perRow, false));
    }

    /** Whether sampled latents are decoded by drawing tokens from the decoder's softmaxes (else by argmax). */
    public boolean decodesBySampling() {
        return config.decodesBySampling();
    }

    /** For each row of hidden states [P, d], {@code n} sampled next chunks, decoded as the config says: [n, P, K]. */
    public Tensor sampleChunks(Tensor h, int n) {
        Tensor z = sampler().sample(h, n).reshape(-1, aeConfig.latentSize()); // [n P, l]
        long p = h.size(0);
        Tensor tokens = config.decodesBySampling() ? ae.sampleTokens(z, torch.rand(n * p, patchSize()))
                : ae.decodeTokens(z);
        return tokens.view(n, p, patchSize());
    }
}
