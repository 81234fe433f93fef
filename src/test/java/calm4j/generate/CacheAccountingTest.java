package calm4j.generate;

import calm4j.ar.TokenLM;
import calm4j.ar.TokenLMConfig;
import calm4j.engine.Engine;
import calm4j.nn.TransformerConfig;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * What a session predicts its KV cache will hold once sequences join (the server admits by it under --kv-memory) is
 * never less than what it then holds, whatever the prompts' lengths and the order they join in.
 */
class CacheAccountingTest {
    @Test
    void theCacheASessionHoldsNeverExceedsWhatItPredictedWhenTheSequencesJoined() {
        Engine.seed(5);
        TokenLM model = new TokenLM(new TokenLMConfig(new TransformerConfig(32, 64, 1, 2, 2, 10000.0), 300, 300),
                100);
        model.eval();
        TokenGenerator gen = new TokenGenerator(model, 0, 1, 4).stopAtEos(false).prefillSlice(16);
        Random r = new Random(3);
        try (TokenGenerator.Session session = gen.session()) {
            long predicted = 0;
            for (int round = 0; round < 14; round++) {
                List<GenerationRequest> joining = new ArrayList<>();
                for (int j = 0; j <= r.nextInt(2); j++) {
                    int prompt = 2 + r.nextInt(120);
                    joining.add(new GenerationRequest(r.ints(prompt, 3, 100).toArray(), 10 + r.nextInt(40), 1.0,
                            round * 10 + j));
                }
                predicted = Math.max(predicted, session.cacheBytesWith(joining));
                session.join(joining);
                for (int step = 0; step < 3; step++) {
                    session.step();
                    assertTrue(session.cacheBytes() <= predicted, "round " + round + ": holds "
                            + session.cacheBytes() + " bytes, predicted at most " + predicted);
                }
            }
            while (!session.isEmpty()) {
                session.step();
                assertTrue(session.cacheBytes() <= predicted, "holds " + session.cacheBytes() + ", predicted "
                        + predicted);
            }
        }
    }

    @Test
    void theRowsHeldDependOnlyOnHowManyRowsThereAreNotOnTheOrderTheyJoinedIn() {
        // The prediction is made before rows join; the batch grows as they join, in any grouping.
        Random r = new Random(8);
        for (int trial = 0; trial < 200; trial++) {
            long capacity = 0;
            int rows = 0, total = 1 + r.nextInt(70);
            while (rows < total) {
                rows = Math.min(total, rows + 1 + r.nextInt(4));
                capacity = RunningRows.rowRoom(rows, capacity);
            }
            assertEquals(RunningRows.rowRoom(total, 0), capacity, total + " rows joining in groups");
        }
        assertEquals(1, RunningRows.roomFor(1), "one sequence holds one row");
        assertEquals(16, RunningRows.roomFor(9));
    }
}
