package calm4j.nn;

import calm4j.engine.Engine;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** Inference weights: packed int8 and fp16 layers compute the float layer's outputs within their precision. */
class PackedLinearTest {
    static double relativeError(Tensor got, Tensor want) {
        return got.sub(want).norm().item_double() / want.norm().item_double();
    }

    @Test
    void oneRowIsAMatrixVectorProductWithTheLinearLayersResult() {
        Engine.cpu();
        Linear l = new Linear(96, 40, true);
        try (NoGradGuard ng = new NoGradGuard()) {
            l.bias().normal_();
            for (long[] shape : new long[][] {{96}, {1, 96}, {1, 1, 96}, {3, 96}}) {
                Tensor x = torch.randn(shape);
                Tensor want = torch.linear(x, l.weight(), new TensorOptional(l.bias()));
                Tensor got = l.forward(x);
                assertArrayEquals(want.sizes().vec().get(), got.sizes().vec().get());
                assertTrue(got.sub(want).abs().max().item_double() < 1e-5);
            }
        }
    }

    @Test
    void int8AndFp16LayersStayWithinTheirPrecisionAndFreeTheFloatWeight() {
        Engine.cpu();
        for (WeightType type : new WeightType[] {WeightType.FP16, WeightType.INT8}) {
            for (boolean withBias : new boolean[] {true, false}) {
                Linear l = new Linear(256, 192, withBias);
                try (NoGradGuard ng = new NoGradGuard()) {
                    // rows of very different scale: per-row quantization keeps the small ones
                    l.weight().mul_(torch.linspace(new org.bytedeco.pytorch.Scalar(-2.0), new org.bytedeco.pytorch.Scalar(1.0), 192,
                            new org.bytedeco.pytorch.TensorOptions()).exp().unsqueeze(1));
                    if (withBias) l.bias().normal_();
                    Tensor x = torch.randn(5, 7, 256);
                    Tensor want = l.forward(x), one = l.forward(x.select(0, 0).select(0, 0));
                    Tensor smallRows = want.narrow(2, 0, 20);
                    l.pack(type);
                    assertEquals(0, l.weight().numel(), "the float weight is freed");
                    Tensor got = l.forward(x);
                    double err = relativeError(got, want), smallErr = relativeError(got.narrow(2, 0, 20), smallRows);
                    double bound = type == WeightType.FP16 ? 1e-3 : 0.03;
                    assertTrue(err < bound && smallErr < bound, type + " bias " + withBias + ": " + err
                            + ", small rows " + smallErr);
                    assertTrue(relativeError(l.forward(x.select(0, 0).select(0, 0)), one) < bound, "one row");
                }
            }
        }
    }

    @Test
    void anInt8TokenTableLooksUpItsRowsWithinAHalfStepOfEachRowsScale() {
        Engine.cpu();
        Transformer t = new Transformer(new TransformerConfig(32, 64, 1, 4, 4, 10000), 50, 16);
        try (NoGradGuard ng = new NoGradGuard()) {
            Tensor ids = torch.randint(50, new long[] {3, 5});
            Tensor want = t.embed(ids).clone();
            double largest = t.embedTokens().weight().abs().max().item_double();
            t.pack(WeightType.INT8);
            Tensor got = t.embed(ids);
            assertArrayEquals(want.sizes().vec().get(), got.sizes().vec().get());
            assertTrue(got.sub(want).abs().max().item_double() <= largest / 127 / 2 + 1e-6);
        }
    }
}
