package calm4j.calm;

import calm4j.eval.BrierLM;
import calm4j.generate.CalmGenerator;
import calm4j.generate.GenerationOptions;
import calm4j.generate.GenerationRequest;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A CALM with the flow-matching head on the synthetic language of SyntheticLanguageTest (12 chunks in a cycle,
 * then the document ends): learned to the energy head's thresholds, and generated from K tokens a step.
 */
class FlowLanguageTest {
    static final int K = 4, CYCLE = 12;
    static int[][] chunks = new int[CYCLE][K];
    static SyntheticCalm.Trained t;

    @TempDir
    static Path dir;

    @BeforeAll
    static void train() throws Exception {
        Random r = new Random(99);
        for (int[] c : chunks) for (int j = 0; j < K; j++) c[j] = 3 + r.nextInt(SyntheticCalm.V - 3);
        int[] doc = new int[CYCLE * K];
        for (int c = 0; c < CYCLE; c++) System.arraycopy(chunks[c], 0, doc, c * K, K);
        List<int[]> train = new ArrayList<>(), val = new ArrayList<>();
        for (int i = 0; i < 400; i++) train.add(doc);
        for (int i = 0; i < 60; i++) val.add(doc);
        t = SyntheticCalm.train(dir, K, train, val, 24, 600, "flow");
    }

    @Test
    void theLanguageIsLearnedToBrier1AboveNinetyFivePercentWithTheFlowHead() {
        BrierLM.Result r = CalmEval.evaluate(t.calm(), t.valBlocks(), 100).brier();
        System.out.println("flow head on the cycle language: " + r.format().replace('\n', ' '));
        calm4j.Margins.atLeast("flow head Brier-1", r.brier()[0], 0.95, r.format());
        calm4j.Margins.atLeast("flow head BrierLM", r.brierLM(), 90, r.format());
    }

    @Test
    void generationWithTheFlowHeadContinuesTheLanguage() {
        var gen = new CalmGenerator(t.calm(), SyntheticCalm.EOS, SyntheticCalm.PAD, new GenerationOptions(50, false, 500));
        int exact = 0;
        for (int seed = 0; seed < 12; seed++) {
            int[] prompt = new int[2 * K];
            System.arraycopy(chunks[0], 0, prompt, 0, K);
            System.arraycopy(chunks[1], 0, prompt, K, K);
            var o = gen.generate(List.of(new GenerationRequest(prompt, 8, seed % 2 == 0 ? 1.0 : 0.5, seed)), null)
                    .get(0);
            int[] want = new int[8];
            System.arraycopy(chunks[2], 0, want, 0, K);
            System.arraycopy(chunks[3], 0, want, K, K);
            if (java.util.Arrays.equals(want, o.tokens())) exact++;
        }
        calm4j.Margins.atLeast("flow head continuations that were exact", exact, 12, 6);
    }
}
