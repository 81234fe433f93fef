package calm4j.calm;

import calm4j.ae.ChunkAutoencoder;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

/**
 * The seam where a CALM's generative head plugs in (the authors' {@code generative_head}): what training,
 * generation and evaluation need from it. {@link EnergyHead} samples in one pass and is trained with the energy
 * score; {@link FlowHead} integrates a learned velocity field and is trained by flow matching.
 */
public abstract class GenerativeHead extends Module {
    /** The head a config names: "energy" or "flow". */
    static GenerativeHead of(CalmConfig c, int latent) {
        return switch (c.head()) {
            case "energy" -> new EnergyHead(c.hiddenSize(), c.noiseSize(), c.numMlpLayers(), latent, c.numSamples(),
                    c.numTargets(), c.alpha());
            case "flow" -> new FlowHead(c.hiddenSize(), c.numMlpLayers(), latent, c.numSamples(), c.flowSteps());
            default -> throw new IllegalStateException("CalmConfig checks the head's name: " + c.head());
        };
    }

    /** The name the head's parameters live under in a checkpoint (the reference's). */
    abstract String moduleName();

    /** What its training loss is called in reports: "energy" or "flow-matching". */
    public abstract String lossName();

    /**
     * The scalar training loss for hidden states {@code h} [P, d] whose true next chunks have the frozen encoder's
     * posterior {@code next} (mean and log-sigma, each [P, l]); with its graph.
     */
    public abstract Tensor loss(Tensor h, ChunkAutoencoder.Posterior next);

    /**
     * {@code counts[r]} samples for row r of {@code h} [rows, d], as [sum(counts), l] grouped by row, every row's
     * randomness drawn from its own generator: a row's samples never depend on the other rows of the batch.
     */
    public abstract Tensor sample(Tensor h, int[] counts, Generator[] perRow);

    /** {@code n} samples per row of {@code h} [rows, d] from libtorch's generator, as [n, rows, l]. */
    public abstract Tensor sample(Tensor h, int n);
}
