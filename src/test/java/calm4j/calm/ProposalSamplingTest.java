package calm4j.calm;

import calm4j.engine.Engine;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ProposalSamplingTest {
    @Test
    void proposedTokensFollowTheSoftmaxAndNeverTakeAZeroProbabilityToken() {
        Engine.cpu();
        float[] p = {0.5f, 0f, 0.3f, 0.2f};
        Tensor cdf = Tensor.create(p, 1, 4).cumsum(1);                     // [K = 1, V = 4]
        Generator g = torch.make_generator_cpu();
        g.set_current_seed(7);
        int n = 40_000;
        Tensor u = torch.rand(new long[] {1, n}, new GeneratorOptional(g)); // [K, n]
        Tensor drawn = EnergyHead.Proposal.search(cdf, u.mul(cdf.narrow(1, 3, 1))).view(-1);
        long[] counts = new long[4];
        for (long i = 0; i < n; i++) counts[(int) drawn.get(i).item_long()]++;
        assertEquals(0, counts[1], "a token of probability 0 is never proposed");
        for (int t : new int[] {0, 2, 3}) {
            assertEquals(p[t], counts[t] / (double) n, 0.01, "token " + t + " drawn at its probability");
        }
    }
}
