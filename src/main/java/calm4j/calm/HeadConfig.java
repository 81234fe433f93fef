package calm4j.calm;

import calm4j.ae.ChunkAutoencoder;

/**
 * A CALM's generative head by kind, each with the settings it has and only those: the typed view of the head keys
 * of {@link CalmConfig} (flat in JSON, as the authors' configs have them). Building the head is the kind's job, so a
 * new head is one more permitted record and its module.
 */
public sealed interface HeadConfig permits HeadConfig.Energy, HeadConfig.Flow {

    /** The head this config describes, for hidden states of width {@code d} and latents of size {@code latent}. */
    GenerativeHead build(int d, int latent, ChunkAutoencoder ae);

    /**
     * The energy head (docs/method.md §2): one network pass a sample, trained with the energy score.
     *
     * @param noiseSize       the uniform noise's size
     * @param numBlocks       residual blocks
     * @param samples         N, head samples per position in the loss
     * @param targets         M, samples of the frozen encoder's posterior per position
     * @param alpha           the energy score's exponent, in (0, 2)
     * @param refineProposals whether it refines chunks proposed by the multi-token head (docs/method.md §11)
     */
    record Energy(int noiseSize, int numBlocks, int samples, int targets, double alpha, boolean refineProposals)
            implements HeadConfig {
        @Override
        public GenerativeHead build(int d, int latent, ChunkAutoencoder ae) {
            return new EnergyHead(d, latent, this, refineProposals ? ae : null);
        }
    }

    /**
     * The flow-matching head (docs/method.md §9): a velocity field integrated from noise, trained by flow matching.
     *
     * @param numBlocks residual blocks
     * @param targets   samples of the frozen encoder's posterior per position in the loss (the config's
     *                  num_samples, as in the authors' code)
     * @param steps     midpoint steps from noise to a sample (two network evaluations each)
     */
    record Flow(int numBlocks, int targets, int steps) implements HeadConfig {
        @Override
        public GenerativeHead build(int d, int latent, ChunkAutoencoder ae) {
            return new FlowHead(d, latent, this);
        }
    }
}
