package calm4j.demo;

import calm4j.app.CalmRun;
import calm4j.engine.Configs;
import calm4j.train.TrainConfig;
import calm4j.train.Trainer;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class DemoEstimateTest {
    @Test
    void theEstimateIsTheStepsAtTheWarmUpsRateAndEachEvaluationAtItsLastEvaluationsCost() {
        // 8 warm-up steps of 1,000 tokens at 4,000 tokens/s (0.25 s a step), 40 s in all: the first evaluation paid
        // for one-time setup; the last one took 2 s for its one batch
        Trainer.Summary warmup = new Trainer.Summary(8, false, 5.0, Map.of(), 40, 4000, 8000, 0, 2.0, 1, null);
        TrainConfig cfg = Configs.with(CalmRun.TRAIN, "eval_every", 100, "eval_batches", 3);
        // 1,000 steps: 250 s of training, 10 evaluations of 3 batches at 2 s a batch, the closing one of 16
        assertEquals(250 + 10 * 3 * 2.0 + 16 * 2.0, Demo.seconds(warmup, 1000, cfg, 16), 1e-9);
    }

    @Test
    void durationsReadAsSecondsUnderNinetyThenMinutesWithATenthUnderTen() {
        assertEquals("40 s", Demo.duration(40));
        assertEquals("6.5 min", Demo.duration(390));
        assertEquals("47 min", Demo.duration(47 * 60 + 10));
    }
}
