package calm4j.ae;

import calm4j.loader.ChunkBatches;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import calm4j.train.Trainable;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.Map;

/** The autoencoder as the training loop sees it: the loss on a batch of chunks, and held-out evaluation. */
public final class AutoencoderTask implements Trainable {
    private final ChunkAutoencoder ae;
    private final ChunkBatches val;
    private final Device device; // where the model was placed before training

    public AutoencoderTask(ChunkAutoencoder ae, ChunkBatches val) {
        this.ae = ae;
        this.val = val;
        this.device = Layers.device(ae);
    }

    @Override
    public Module module() {
        return ae;
    }

    @Override
    public Tensor loss(TokenBatch batch, Map<String, Double> metrics) {
        ChunkAutoencoder.Loss l = ae.loss(batch.tensor(device));
        metrics.merge("reconstruction", l.reconstruction().item_double(), Double::sum);
        metrics.merge("kl", l.kl().item_double(), Double::sum);
        return l.total();
    }

    @Override
    public Map<String, Double> evaluate(int batches) {
        return AutoencoderEval.evaluate(ae, val, batches).asMetrics();
    }
}
