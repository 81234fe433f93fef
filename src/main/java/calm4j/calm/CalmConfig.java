package calm4j.calm;

import calm4j.engine.Configs;
import calm4j.engine.Presets;
import calm4j.engine.UserError;
import calm4j.nn.TransformerConfig;
import com.fasterxml.jackson.annotation.JsonUnwrapped;

/**
 * A CALM's backbone, energy head and energy loss (docs/method.md §2 and §4). Read from the {@code "model"} section of
 * {@code calm.json}; K, l and the vocabulary come from the autoencoder it is trained on.
 *
 * @param backbone        the Transformer's shape (its keys flat in JSON, as the token model's)
 * @param contextChunks   the longest sequence of chunks the backbone sees (its rotary table's length)
 * @param noiseSize       the energy head's uniform noise size
 * @param numMlpLayers    residual blocks in the energy head
 * @param numSamples      N, head samples per position in the energy loss
 * @param numTargets      M, samples of the frozen encoder's posterior per position
 * @param alpha           the energy score's exponent, in (0, 2)
 * @param evalBlockChunks chunks per block when BrierLM is estimated (results depend on it: it is reported)
 * @param evalSamples     head samples per position when BrierLM is estimated: 2 in the paper; more estimate the same
 *                        score with a smaller standard error (at a proportional sampling and decoding cost)
 * @param head            the generative head: "energy" (one-pass sampler, energy score) or "flow" (flow matching,
 *                        docs/method.md §9); for "flow", num_samples is the number of posterior targets per position
 * @param flowSteps       the flow head's midpoint steps from noise to a sample (two network evaluations each)
 * @param auxTokenWeight  weight of the training-only multi-token cross-entropy on the backbone (0: off;
 *                        docs/method.md §10)
 * @param auxTokenHead    its shape: "tied" (K projections into the input embedding) or "linear" (d -> K*V)
 * @param headProposal    the energy head refines chunks proposed by the multi-token head (docs/method.md §11),
 *                        which then belongs to the model; false: the plain energy head (the flow head ignores it)
 * @param auxTokenDecay   the multi-token cross-entropy weighs the next chunk's k-th token by decay^k (scaled to mean
 *                        1); 1: every position alike
 * @param tokenBrierWeight weight of the training-only Brier score of the energy head's samples in token space, through
 *                        the frozen decoder (docs/method.md §12; 0: off)
 * @param decode          how a sampled latent becomes K tokens: "argmax" (the paper's) or "sample" (each token drawn
 *                        from the decoder's softmax: the distribution the token-space Brier score trains, §12)
 * @param distillWeight   weight of a student energy head's loss (0: none): a plain energy head trained, beside the
 *                        proposal-refining head, against the true chunk's latents and that head's samples; generation
 *                        then samples from the student alone, at the plain head's cost (docs/method.md §13)
 * @param proposalRank    0: proposals draw from the multi-token head; r > 0: from a low-rank head of rank r trained
 *                        beside it, at a fraction of its cost (§11)
 * @param proposalLatent  "encoder": a proposal's latent is the frozen encoder's posterior mean; "table": a learned
 *                        sum of per-position token vectors fitted to it, without the encoder's pass (§11)
 * @param proposalDraw    "independent": each proposed token from its position's softmax; "sequential": from the
 *                        low-rank head with each position conditioned on the token drawn before it (§11)
 */
public record CalmConfig(@JsonUnwrapped TransformerConfig backbone, int contextChunks, int noiseSize, int numMlpLayers,
                         int numSamples, int numTargets, double alpha, int evalBlockChunks, int evalSamples,
                         String head, int flowSteps, double auxTokenWeight, String auxTokenHead,
                         boolean headProposal, double auxTokenDecay, double tokenBrierWeight, String decode,
                         double distillWeight, int proposalRank, String proposalLatent,
                         String proposalDraw) {

    /** Preset "calm": sized for two CPU cores (the energy head, N = 8 samples per position, is most of the cost). */
    public static final CalmConfig DEFAULTS = Presets.section("calm", "model", CalmConfig.class);

    /**
     * Keys whose preset value changed after runs were written without them, each with the value such a run had: a
     * saved config that lacks one means this value, not today's preset (the auxiliary loss became the default in
     * the head study, docs/head-study/README.md).
     */
    public static final java.util.Map<String, Object> BEFORE_PRESET_CHANGE = java.util.Map.of("aux_token_weight", 0.0,
            "head_proposal", false, "aux_token_decay", 1.0, "token_brier_weight", 0.0, "decode", "argmax",
            "distill_weight", 0.0, "proposal_rank", 0, "proposal_latent", "encoder", "proposal_draw", "independent");

    /**
     * A run's saved "model" section, read as it was written: keys it lacks take the preset, except those of
     * {@link #BEFORE_PRESET_CHANGE}, which take the value they had then.
     */
    public static CalmConfig saved(com.fasterxml.jackson.databind.JsonNode section, String where) {
        var model = section.isObject() ? ((com.fasterxml.jackson.databind.node.ObjectNode) section).deepCopy()
                : Configs.JSON.createObjectNode();
        for (var e : BEFORE_PRESET_CHANGE.entrySet()) { // keys it lacks: the values it was trained with, at once
            if (!model.has(e.getKey())) model.set(e.getKey(), Configs.JSON.valueToTree(e.getValue()));
        }
        var root = Configs.JSON.createObjectNode();
        root.set("model", model);
        return Configs.section(root, "model", DEFAULTS, CalmConfig.class, where);
    }

    public CalmConfig {
        require(head != null && (head.equals("energy") || head.equals("flow")), "head must be energy or flow, got "
                + head);
        require(flowSteps >= 1, "flow_steps must be at least 1");
        require(auxTokenDecay > 0 && auxTokenDecay <= 1, "aux_token_decay must lie in (0, 1]");
        require(!headProposal || !head.equals("energy") || auxTokenWeight > 0, "head_proposal draws from the "
                + "multi-token head: give it an aux_token_weight above 0");
        require(auxTokenWeight >= 0, "aux_token_weight must be at least 0 (0 turns the auxiliary loss off)");
        require(tokenBrierWeight >= 0, "token_brier_weight must be at least 0 (0 turns the token-space Brier off)");
        require(decode != null && (decode.equals("argmax") || decode.equals("sample")), "decode must be argmax or "
                + "sample, got " + decode);
        require(distillWeight >= 0, "distill_weight must be at least 0 (0: no student head)");
        require(proposalRank >= 0, "proposal_rank must be at least 0 (0: the multi-token head's own projection)");
        require(proposalLatent != null && (proposalLatent.equals("encoder") || proposalLatent.equals("table")),
                "proposal_latent must be encoder or table, got " + proposalLatent);
        require(proposalDraw != null && (proposalDraw.equals("independent") || proposalDraw.equals("sequential")),
                "proposal_draw must be independent or sequential, got " + proposalDraw);
        require(!proposalDraw.equals("sequential") || proposalRank > 0, "proposal_draw sequential draws from the "
                + "low-rank proposal head: give it a proposal_rank above 0 (24 or 32)");
        require(distillWeight == 0 || (headProposal && head.equals("energy")), "distill_weight trains a student of "
                + "the proposal-refining energy head: set head_proposal true (and the energy head)");
        require(tokenBrierWeight == 0 || head.equals("energy"), "token_brier_weight scores the energy head's samples: "
                + "the " + head + " head has none to score (set it to 0)");
        require(auxTokenHead != null && (auxTokenHead.equals("tied") || auxTokenHead.equals("linear")),
                "aux_token_head must be tied or linear, got " + auxTokenHead);
        require(backbone != null, "the backbone's keys are missing");
        require(contextChunks >= 2, "context_chunks must be at least 2");
        require(noiseSize > 0 && numMlpLayers > 0, "noise_size and num_mlp_layers must be positive");
        require(numSamples >= (head.equals("energy") ? 2 : 1), "num_samples (N) must be at least 2: the energy score's "
                + "diversity term needs pairs");
        require(numTargets >= 1, "num_targets (M) must be at least 1");
        require(alpha > 0 && alpha < 2, "alpha must lie in (0, 2): alpha = 2 makes the energy score proper but not "
                + "strictly proper (the head collapses to the mean), got " + alpha);
        require(evalBlockChunks >= 2 && evalBlockChunks <= contextChunks,
                "eval_block_chunks must lie in [2, context_chunks]");
        require(evalSamples >= 2, "eval_samples must be at least 2: BrierLM's collision term needs pairs");
    }

    /** This config with the named keys changed: {@code with("KEY", value, ...)}, keys as in the JSON files. */
    public CalmConfig with(Object... keysAndValues) {
        return Configs.with(this, keysAndValues);
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new UserError("CALM config: " + message);
    }

    /**
     * Whether the energy head refines chunks proposed by the multi-token head (head_proposal, an energy-head setting:
     * the flow head ignores it).
     */
    public boolean refinesProposals() {
        return headProposal && head.equals("energy");
    }

    /** Whether proposals draw independently from a low-rank head of their own rather than the multi-token head (§11). */
    public boolean hasLowRankProposals() {
        return refinesProposals() && proposalRank > 0 && !drawsSequentially();
    }

    /** Whether proposals' tokens are drawn one after the other from the sequential low-rank head (§11). */
    public boolean drawsSequentially() {
        return refinesProposals() && proposalDraw.equals("sequential");
    }

    /** Whether proposals' latents come from the additive table rather than the encoder (§11). */
    public boolean hasLatentTable() {
        return refinesProposals() && proposalLatent.equals("table");
    }

    /** Whether a student head is distilled from the proposal-refining head, and samples at inference (§13). */
    public boolean distills() {
        return distillWeight > 0;
    }

    /** Whether sampled latents are decoded by drawing each token from the decoder's softmax (else by argmax). */
    public boolean decodesBySampling() {
        return decode.equals("sample");
    }

    /** Whether training adds the Brier score of the head's decoded samples (docs/method.md §12). */
    public boolean hasTokenBrier() {
        return tokenBrierWeight > 0;
    }

    /** Whether training adds the multi-token cross-entropy (a module that generation never uses). */
    public boolean hasAuxTokenHead() {
        return auxTokenWeight > 0;
    }

    /** The head's settings as its kind has them (num_samples is N for the energy head, targets for the flow head). */
    public HeadConfig headConfig() {
        return head.equals("flow") ? new HeadConfig.Flow(numMlpLayers, numSamples, flowSteps)
                : new HeadConfig.Energy(noiseSize, numMlpLayers, numSamples, numTargets, alpha, refinesProposals());
    }
}
