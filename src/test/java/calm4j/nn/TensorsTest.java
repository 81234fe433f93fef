package calm4j.nn;

import calm4j.engine.Engine;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static calm4j.nn.Tensors.c;
import static calm4j.nn.Tensors.cat;
import static calm4j.nn.Tensors.sum;
import static calm4j.nn.Tensors.sumKeep;
import static org.junit.jupiter.api.Assertions.*;

/** The short forms compute what the libtorch calls they stand for compute, with the same types. */
class TensorsTest {
    @Test
    void constantsKeepPythonsIntAndFloatPromotion() {
        Engine.cpu();
        Tensor ids = Tensor.create(new long[] {3, 4});
        assertTrue(Layers.isType(ids.mul(c(2)), torch.ScalarType.Long), "an int constant keeps token ids integral");
        assertEquals(8, ids.mul(c(2)).select(0, 1).item_long());
        assertTrue(Layers.isType(ids.mul(c(0.5)), torch.ScalarType.Float), "a float constant promotes to float");
        assertEquals(1.5, ids.mul(c(0.5)).select(0, 0).item_double(), 1e-9);
    }

    @Test
    void catAndSumAreTorchsCatAndSum() {
        Engine.cpu();
        Tensor a = torch.arange(new org.bytedeco.pytorch.Scalar(6)).reshape(2, 3).to(torch.ScalarType.Float);
        Tensor joined = cat(0, a, a);                                    // [4, 3]
        assertArrayEquals(new long[] {4, 3}, joined.sizes().vec().get());
        assertEquals(30.0, sum(joined, 0, 1).item_double(), 1e-9);
        assertArrayEquals(new long[] {3}, sum(a, 0).sizes().vec().get(), "summed dimensions are dropped");
        assertArrayEquals(new long[] {2, 1}, sumKeep(a, -1).sizes().vec().get(), "or kept with size 1");
        assertEquals(12.0, sumKeep(a, -1).select(0, 1).item_double(), 1e-9);
    }
}
