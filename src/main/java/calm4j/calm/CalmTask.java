package calm4j.calm;

import calm4j.loader.BlockBatches;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import calm4j.train.Trainable;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/** A CALM as the training loop sees it: the energy loss on a block, and BrierLM on held-out blocks. */
public final class CalmTask implements Trainable {
    private final CalmModel model;
    private final BlockBatches val;
    private final Device device; // where the model was placed before training

    public CalmTask(CalmModel model, BlockBatches val) {
        this.model = model;
        this.val = val;
        this.device = Layers.device(model);
    }

    @Override
    public Cost cost() {
        return new Cost(Layers.parameterCount(model, true), model.trainingFlopsPerChunk() / model.patchSize(),
                model.inferenceFlopsPerToken());
    }

    @Override
    public Module module() {
        return model;
    }

    @Override
    public Tensor loss(TokenBatch batch, Map<String, Double> metrics) {
        CalmModel.Loss l = model.losses(batch.tensor(device));
        if (l.aux() != null || l.tokenBrier() != null || l.student() != null) {
            metrics.merge("head_loss", l.head().item_double(), Double::sum);
        }
        if (l.aux() != null) metrics.merge("aux_ce", l.aux().item_double(), Double::sum);
        if (l.tokenBrier() != null) metrics.merge("token_brier", l.tokenBrier().item_double(), Double::sum);
        if (l.student() != null) metrics.merge("student_loss", l.student().item_double(), Double::sum);
        return l.total();
    }

    @Override
    public Map<String, Double> evaluate(int batches) {
        CalmEval.Result r = CalmEval.evaluate(model, val, batches, model.config().evalSamples());
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("loss", r.headLoss());
        m.putAll(r.brier().metrics("")); // a CALM is scored at chunk boundaries only
        if (r.auxBrier1() != null) {
            m.put("aux_brier_1", r.auxBrier1()[0]);
            m.put("aux_brier_1_se", r.auxBrier1()[1]);
        }
        return m;
    }
}
