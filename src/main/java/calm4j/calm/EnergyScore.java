package calm4j.calm;

import calm4j.engine.UserError;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.sum;
import static calm4j.nn.Tensors.sumKeep;

/**
 * The energy loss: a Monte Carlo estimate of the negative energy score, a strictly proper scoring rule for
 * alpha in (0, 2) (seed, "Training without likelihoods"; docs/method.md §2). Per position, with model samples
 * x_1..x_N and target samples y_1..y_M:
 * <pre>
 *   loss = 2/(N M) sum_{n,m} ||x_n - y_m||^alpha  -  1/(N (N-1)) sum_{n != k} ||x_n - x_k||^alpha
 * </pre>
 * averaged over positions. Squared distances come from one batched matmul per term,
 * {@code |x|^2 + |y|^2 - 2 x.y} ([P, N, M] and [P, N, N]), so the N x M x P x l difference tensor the reference
 * broadcasts is never built. ({@code torch.cdist} computes the same forward, but its CPU backward was measured
 * about 10x slower than this.)
 */
public final class EnergyScore {
    /** Distances are floored here before {@code pow}: coinciding samples give finite values and gradients. */
    static final double MIN_DISTANCE = 1e-6;
    private final double alpha;

    public EnergyScore(double alpha) {
        if (!(alpha > 0 && alpha < 2)) {
            throw new UserError("the energy score needs alpha in (0, 2), got " + alpha
                    + " (alpha = 2 is proper but not strictly proper: the head would collapse to the mean)");
        }
        this.alpha = alpha;
    }

    /**
     * @param samples [N, P, l] model samples per position
     * @param targets [M, P, l] samples of the target distribution per position
     * @return the mean over positions of the loss above (a scalar)
     */
    public Tensor loss(Tensor samples, Tensor targets) {
        long n = samples.size(0), m = targets.size(0);
        if (n < 2) throw new UserError("the energy score needs at least 2 model samples per position, got " + n);
        Tensor x = samples.transpose(0, 1); // [P, N, l]
        Tensor y = targets.transpose(0, 1); // [P, M, l]
        Tensor fit = sum(distance(squaredDistances(x, y)), 1, 2).mul(c(2.0 / (n * m)));     // [P]
        // The diagonal n == k is set to exactly zero first: |x|^2 + |x|^2 - 2 x.x leaves rounding error there, and
        // pow(alpha/2) of a tiny positive number would send large, meaningless gradients back. Floored, each
        // diagonal term is MIN_DISTANCE^alpha with no gradient; subtract it so the sum is over n != k.
        Tensor self = squaredDistances(x, x).masked_fill(
                torch.eye(n, Layers.on(x, torch.ScalarType.Bool)), c(0.0));
        Tensor pairs = sum(distance(self), 1, 2).sub(c(n * Math.pow(MIN_DISTANCE, alpha)))   // [P]
                .div(c((double) (n * (n - 1))));
        return fit.sub(pairs).mean();
    }

    /**
     * The energy loss against a mixture target: a share {@code 1 - teacherShare} of {@code targets} [M, P, l] and
     * {@code teacherShare} of {@code teacher} [T, P, l] (samples of another sampler, detached). The fit term is the
     * mixture's, so the score stays proper for that target distribution (docs/method.md §13).
     */
    public Tensor loss(Tensor samples, Tensor targets, Tensor teacher, double teacherShare) {
        long n = samples.size(0);
        if (n < 2) throw new UserError("the energy score needs at least 2 model samples per position, got " + n);
        Tensor x = samples.transpose(0, 1);                                                    // [P, N, l]
        Tensor fitTruth = sum(distance(squaredDistances(x, targets.transpose(0, 1))), 1, 2)
                .mul(c(2.0 * (1 - teacherShare) / (n * targets.size(0))));                     // [P]
        Tensor fitTeacher = sum(distance(squaredDistances(x, teacher.transpose(0, 1))), 1, 2)
                .mul(c(2.0 * teacherShare / (n * teacher.size(0))));                          // [P]
        Tensor self = squaredDistances(x, x).masked_fill(torch.eye(n, Layers.on(x, torch.ScalarType.Bool)), c(0.0));
        Tensor pairs = sum(distance(self), 1, 2).sub(c(n * Math.pow(MIN_DISTANCE, alpha)))
                .div(c((double) (n * (n - 1))));
        return fitTruth.add(fitTeacher).sub(pairs).mean();
    }

    /** ||a_i - b_j||^2 for a [P, I, l] and b [P, J, l]: [P, I, J]. */
    static Tensor squaredDistances(Tensor a, Tensor b) {
        Tensor aa = sumKeep(a.square(), -1);           // [P, I, 1]
        Tensor bb = sum(b.square(), -1).unsqueeze(1);  // [P, 1, J]
        return torch.baddbmm(aa.add(bb), a, b.transpose(1, 2), c(1.0), c(-2.0));
    }

    /** ||.||^alpha from squared distances, floored at MIN_DISTANCE (zero gradient below it). */
    private Tensor distance(Tensor squared) {
        Tensor floored = squared.clamp_min(c(MIN_DISTANCE * MIN_DISTANCE));
        return floored.pow(c(alpha / 2));
    }
}
