package calm4j.calm;

import calm4j.ae.ChunkAutoencoder;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.util.Arrays;

/**
 * The seam where a CALM's generative head plugs in (the authors' {@code generative_head}): what training,
 * generation and evaluation need from it. {@link EnergyHead} samples in one pass and is trained with the energy
 * score; {@link FlowHead} integrates a learned velocity field and is trained by flow matching.
 */
public abstract class GenerativeHead extends Module {
    /** The name the head's parameters live under in a checkpoint (the reference's). */
    abstract String moduleName();

    /** What its training loss is called in reports: "energy" or "flow-matching". */
    public abstract String lossName();

    /**
     * The scalar training loss for hidden states {@code h} [P, d] whose true next chunks have the frozen encoder's
     * posterior {@code next} (mean and log-sigma, each [P, l]) and whose tokens are {@code nextTokens} [P, K];
     * with its graph.
     */
    public abstract Tensor loss(Tensor h, ChunkAutoencoder.Posterior next, Tensor nextTokens);

    /**
     * {@code counts[r]} samples for row r of {@code h} [rows, d], as [sum(counts), l] grouped by row, every row's
     * randomness drawn from its own generator: a row's samples never depend on the other rows of the batch.
     */
    public abstract Tensor sample(Tensor h, int[] counts, Generator[] perRow);

    /**
     * As {@link #sample(Tensor, int[], Generator[])}, each row at its own temperature {@code temperatures[r]} where
     * the head can temper its samples itself ({@link #tempers()}); otherwise the temperatures are ignored (the
     * generator then reaches T through a pool of candidates, docs/method.md §3).
     */
    public Tensor sample(Tensor h, int[] counts, Generator[] perRow, double[] temperatures) {
        return sample(h, counts, perRow);
    }

    /** Whether {@link #sample(Tensor, int[], Generator[], double[])} tempers samples itself. */
    public boolean tempers() {
        return false;
    }

    /**
     * Noise for {@code counts[r]} samples of each row r, [sum(counts), width] in fp32 on the CPU, every row's drawn
     * from its own generator (uniform on [0, 1) or standard normal): a row's samples then depend only on its
     * generator and its own count, never on the other rows of the batch.
     */
    static Tensor perRowNoise(int[] counts, long width, Generator[] perRow, boolean normal) {
        TensorVector noise = new TensorVector();
        for (int r = 0; r < counts.length; r++) {
            long[] shape = {counts[r], width};
            GeneratorOptional g = new GeneratorOptional(perRow[r]);
            noise.push_back(normal ? torch.randn(shape, g) : torch.rand(shape, g));
        }
        return torch.cat(noise, 0);
    }

    /** The row each of {@code counts[r]} samples per row r belongs to, [sum(counts)] on {@code like}'s device. */
    static Tensor rowOfEachSample(int[] counts, Tensor like) {
        long[] rowOf = new long[Arrays.stream(counts).sum()];
        int at = 0;
        for (int r = 0; r < counts.length; r++) for (int i = 0; i < counts[r]; i++) rowOf[at++] = r;
        return Tensor.create(rowOf).to(like.device(), torch.ScalarType.Long);
    }

    /** {@code n} samples per row of {@code h} [rows, d] from libtorch's generator, as [n, rows, l]. */
    public abstract Tensor sample(Tensor h, int n);

    /** Multiply-accumulates per position of one training pass: every sample the loss draws, the condition once. */
    public abstract double trainingMacsPerPosition();

    /** Multiply-accumulates of drawing one sample when generating. */
    public abstract double samplingMacs();

    /** Proposed chunks the frozen encoder encodes per position in training (0 unless the head refines proposals). */
    public int encodedPerPosition() {
        return 0;
    }

    /** Packs the head's linear weights for inference (fp16, int8; {@link calm4j.nn.Linear#pack}). */
    public abstract void pack(calm4j.nn.WeightType type);
}
