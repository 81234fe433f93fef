package calm4j.calm;

import calm4j.engine.Engine;
import calm4j.nn.Layers;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The flow-matching head of docs/method.md §9: its loss, and a sampler that reproduces what it was trained on. */
class FlowHeadTest {
    @Test
    void theVelocityLossIsTheMeanSquaredErrorToZ1MinusZ0() {
        Engine.cpu();
        FlowHead head = new FlowHead(8, 2, new HeadConfig.Flow(2, 1, 4));
        // The final layer starts at zero; with a bias c the predicted velocity is c whatever the input.
        double[] c = {0.5, -1.0};
        try (NoGradGuard ng = new NoGradGuard()) {
            Layers.namedParameters(head).get("net.final_layer.linear.bias").copy_(Tensor.create(new float[] {0.5f, -1f}));
        }
        float[] z1 = {1, 2, -1, 0, 3, 1}, z0 = {0.5f, 0, 0, -2, 1, 1};
        Tensor loss = head.velocityLoss(torch.randn(3, 8), Tensor.create(z1, 3, 2), Tensor.create(z0, 3, 2),
                Tensor.create(new float[] {0.1f, 0.5f, 0.9f}));
        double expected = 0;
        for (int i = 0; i < 6; i++) expected += Math.pow(c[i % 2] - (z1[i] - z0[i]), 2);
        expected /= 6; // mean over 3 rows x 2 dimensions: 0.0625+9+2.25+9+0.0625+1 -> 21.375 / 6
        assertEquals(expected, loss.item_double(), 1e-6);
    }

    @Test
    void trainedOnATwoDimensionalGaussianMixtureItsSamplesHaveTheMixturesMeanAndCovariance() {
        Engine.cpu();
        torch.manual_seed(3);
        FlowHead head = new FlowHead(64, 2, new HeadConfig.Flow(2, 1, 10));
        AdamW opt = new AdamW(head.parameters(), new AdamWOptions(3e-3));
        Tensor h = torch.zeros(256, 64); // one condition: the head must learn the mixture itself
        for (int step = 0; step < 1200; step++) {
            Engine.step(() -> {
                // z1: half at (-2, 0), half at (2, 0), standard deviation 0.3 in each direction.
                Tensor sign = torch.randint(2, new long[] {256, 1}).to(torch.ScalarType.Float).mul(new Scalar(4.0))
                        .sub(new Scalar(2.0));
                Tensor z1 = torch.cat(new org.bytedeco.pytorch.TensorVector(sign, torch.zeros(256, 1)), 1)
                        .add(torch.randn(256, 2).mul(new Scalar(0.3)));
                opt.zero_grad();
                Tensor loss = head.velocityLoss(h, z1, torch.randn(256, 2), torch.rand(256));
                loss.backward();
                opt.step();
                return null;
            });
        }
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor x = head.sample(torch.zeros(2000, 64), 1).squeeze(0); // [2000, 2]
            Tensor mean = x.mean(new long[] {0}, false, new org.bytedeco.pytorch.ScalarTypeOptional());
            Tensor centred = x.sub(mean);
            Tensor cov = centred.t().matmul(centred).div(new Scalar(1999.0));
            double mx = mean.get(0).item_double(), my = mean.get(1).item_double();
            double vx = cov.get(0).get(0).item_double(), vy = cov.get(1).get(1).item_double();
            double cxy = cov.get(0).get(1).item_double();
            String got = String.format("mean (%.3f, %.3f), var (%.3f, %.3f), cov %.3f", mx, my, vx, vy, cxy);
            System.out.println("flow head on the mixture: " + got + " (target mean (0, 0), var (4.09, 0.09), cov 0)");
            assertEquals(0, mx, 0.25, got);
            assertEquals(0, my, 0.1, got);
            assertEquals(4.09, vx, 0.6, got);
            assertEquals(0.09, vy, 0.06, got);
            assertEquals(0, cxy, 0.15, got);
        }
    }
}
