package calm4j.engine;

import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class EngineTest {
    @Test
    void askingForCudaOnACpuOnlyBuildGivesAClearMessage() {
        if (torch.cuda_is_available()) return; // on a GPU machine this request is valid
        UserError e = assertThrows(UserError.class, () -> Engine.create("cuda", 1));
        assertTrue(e.getMessage().contains("no CUDA") && e.getMessage().contains("cpu device"), e.getMessage());
        assertEquals("device", e.parameter());
        assertThrows(UserError.class, () -> Engine.create("cuda:1", 1));
    }

    @Test
    void unknownDevicesAndBadThreadCountsAreRefused() {
        assertTrue(assertThrows(UserError.class, () -> Engine.create("tpu", 1)).getMessage().contains("not a device"));
        assertThrows(UserError.class, () -> Engine.create("cuda:x", 1));
        assertThrows(UserError.class, () -> Engine.create("cpu", 0));
        assertTrue(Engine.create("cpu", 1).device().is_cpu());
    }

    @Test
    void libtorchErrorsBecomeMessagesThatSayWhatToDo() {
        UserError e = assertThrows(UserError.class, () -> LibtorchErrors.guard("multiplying",
                () -> torch.randn(2, 3).matmul(torch.randn(4, 5))));
        assertTrue(e.getMessage().startsWith("multiplying failed:"), e.getMessage());
        assertTrue(e.getMessage().contains("what to do:"), e.getMessage());
        assertFalse(e.getMessage().contains("Exception raised from"), "no C++ backtrace in the message");
    }

    @Test
    void stepSeedsDifferPerStepAndRepeatPerSeed() {
        assertEquals(Engine.stepSeed(1, 5), Engine.stepSeed(1, 5));
        assertNotEquals(Engine.stepSeed(1, 5), Engine.stepSeed(1, 6));
        assertNotEquals(Engine.stepSeed(1, 5), Engine.stepSeed(2, 5));
    }
}
