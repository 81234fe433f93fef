package calm4j.calm;

import calm4j.engine.Engine;
import calm4j.engine.UserError;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class EnergyScoreTest {
    /** Standard normal CDF (Abramowitz-Stegun 7.1.26 through erf; accurate to ~1e-7, plenty here). */
    static double phi(double x) {
        double t = 1 / (1 + 0.3275911 * Math.abs(x) / Math.sqrt(2));
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592)
                * t * Math.exp(-x * x / 2);
        return x >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
    }

    /** E|Z| for Z ~ N(m, s^2): the folded normal mean. */
    static double foldedMean(double m, double s) {
        return s * Math.sqrt(2 / Math.PI) * Math.exp(-m * m / (2 * s * s)) + m * (1 - 2 * phi(-m / s));
    }

    @Test
    void matchesTheClosedFormForOneDimensionalGaussians() {
        Engine.seed(11);
        int n = 3000;
        double mu = 0.7;
        Tensor x = torch.randn(n, 1, 1);                              // model: N(0, 1)
        Tensor y = torch.randn(n, 1, 1).add(new Scalar(mu));          // target: N(0.7, 1)
        double got = new EnergyScore(1.0).loss(x, y).item_double();
        // 2 E|X - Y| - E|X - X'| with X - Y ~ N(-0.7, 2) and X - X' ~ N(0, 2)
        double expected = 2 * foldedMean(-mu, Math.sqrt(2)) - foldedMean(0, Math.sqrt(2));
        assertEquals(expected, got, 0.03, "Monte Carlo estimate of the energy loss");
    }

    @Test
    void isSmallestInExpectationWhenModelSamplesFollowTheTarget() {
        Engine.seed(12);
        int positions = 400, n = 8, m = 100, l = 4;
        Tensor targetMean = torch.randn(1, positions, l);
        Tensor y = targetMean.add(torch.randn(m, positions, l).mul(new Scalar(0.5)));
        EnergyScore es = new EnergyScore(1.0);
        double right = es.loss(targetMean.add(torch.randn(n, positions, l).mul(new Scalar(0.5))), y).item_double();
        double shifted = es.loss(targetMean.add(torch.randn(n, positions, l).mul(new Scalar(0.5)))
                .add(new Scalar(0.3)), y).item_double();
        double narrow = es.loss(targetMean.add(torch.randn(n, positions, l).mul(new Scalar(0.1))), y).item_double();
        double collapsed = es.loss(targetMean.expand(n, positions, l).contiguous(), y).item_double();
        double wide = es.loss(targetMean.add(torch.randn(n, positions, l).mul(new Scalar(1.0))), y).item_double();
        assertTrue(right < shifted, right + " < shifted " + shifted);
        assertTrue(right < narrow, right + " < too narrow " + narrow);
        assertTrue(right < collapsed, right + " < collapsed to the mean " + collapsed);
        assertTrue(right < wide, right + " < too wide " + wide);
    }

    @Test
    void alphaOutsideZeroToTwoIsRefused() {
        for (double a : new double[] {0.0, 2.0, -1.0, 2.5, Double.NaN}) {
            assertThrows(UserError.class, () -> new EnergyScore(a), "alpha " + a);
        }
        UserError e = assertThrows(UserError.class, () -> CalmConfig.DEFAULTS.with("alpha", 2.0));
        assertTrue(e.getMessage().contains("alpha must lie in (0, 2)"), e.getMessage());
        assertDoesNotThrow(() -> new EnergyScore(1.5));
    }

    @Test
    void coincidingSamplesGiveFiniteLossAndGradients() {
        for (double alpha : new double[] {1.0, 0.5, 1.7}) {
            Tensor x = torch.ones(4, 3, 5).requires_grad_(true); // all N samples identical
            Tensor y = torch.ones(6, 3, 5);                      // and equal to every target
            Tensor loss = new EnergyScore(alpha).loss(x, y);
            loss.backward();
            assertTrue(Double.isFinite(loss.item_double()), "loss at alpha " + alpha);
            assertTrue(torch.isfinite(x.grad()).all().item_bool(), "gradient at alpha " + alpha);
        }
    }

    @Test
    void gradientsEqualThoseOfTheDirectPairwiseDifferenceFormula() {
        Engine.seed(13);
        int n = 5, m = 7, p = 3, l = 16;
        // Large norms make |x|^2 + |y|^2 - 2 x.y cancel badly; the diagonal must still contribute nothing.
        Tensor base = torch.randn(n, p, l).mul(new Scalar(20.0));
        Tensor y = torch.randn(m, p, l).mul(new Scalar(20.0));
        Tensor x1 = base.clone().requires_grad_(true);
        new EnergyScore(1.0).loss(x1, y).backward();

        Tensor x2 = base.clone().requires_grad_(true);
        Tensor fit = x2.unsqueeze(1).sub(y.unsqueeze(0)).square().sum(new long[] {-1}, false,
                new org.bytedeco.pytorch.ScalarTypeOptional()).sqrt().sum().mul(new Scalar(2.0 / (n * m)));
        Tensor diversity = torch.zeros(new long[] {});
        for (int a = 0; a < n; a++) {
            for (int b = 0; b < n; b++) {
                if (a == b) continue;
                diversity = diversity.add(x2.select(0, a).sub(x2.select(0, b)).square()
                        .sum(new long[] {-1}, false, new org.bytedeco.pytorch.ScalarTypeOptional()).sqrt().sum());
            }
        }
        fit.sub(diversity.div(new Scalar((double) n * (n - 1)))).div(new Scalar((double) p)).backward();
        double maxDiff = x1.grad().sub(x2.grad()).abs().max().item_double();
        assertTrue(maxDiff < 1e-4, "max |gradient difference| = " + maxDiff);
    }
}
