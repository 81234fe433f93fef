package calm4j.ar;

import calm4j.engine.Engine;
import calm4j.engine.Progress;
import calm4j.eval.BrierLM;
import calm4j.loader.BlockBatches;
import calm4j.loader.LoaderState;
import calm4j.loader.TokenBatch;
import calm4j.nn.Layers;
import calm4j.train.Trainable;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/** The token baseline as the training loop sees it: cross-entropy, and held-out loss and BrierLM. */
public final class TokenLMTask implements Trainable {
    private final TokenLM model;
    private final BlockBatches val;
    private final int chunk;
    private final Device device; // where the model was placed before training

    /** @param chunk the K of the CALM this baseline is compared with (for the chunk-aligned BrierLM) */
    public TokenLMTask(TokenLM model, BlockBatches val, int chunk) {
        this.model = model;
        this.val = val;
        this.chunk = chunk;
        this.device = Layers.device(model);
    }

    @Override
    public Cost cost() {
        return new Cost(Layers.parameterCount(model, true), model.config().trainingFlopsPerToken(model.vocabSize()),
                model.config().inferenceFlopsPerToken(model.vocabSize()));
    }

    @Override
    public Module module() {
        return model;
    }

    @Override
    public Tensor loss(TokenBatch batch, Map<String, Double> metrics) {
        return model.loss(batch.tensor(device));
    }

    @Override
    public Map<String, Double> evaluate(int batches) {
        Result r = evaluate(model, val, batches, chunk, Progress.none());
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("loss", r.loss());
        m.putAll(r.all().metrics(""));
        m.putAll(r.aligned().metrics("_aligned")); // the positions a CALM with this K is scored at
        return m;
    }

    /** Held-out cross-entropy, and BrierLM at every position and at chunk-aligned positions only. */
    public record Result(double loss, BrierLM.Result all, BrierLM.Result aligned, long blockTokens) {}

    /** {@code progress} steps once per batch. */
    public static Result evaluate(TokenLM model, BlockBatches data, long batches, int chunk, Progress progress) {
        boolean wasTraining = model.is_training();
        model.eval();
        data.restore(LoaderState.START);
        BrierLM all = new BrierLM(), aligned = new BrierLM();
        double loss = 0;
        long n = Math.min(batches, data.batchesPerEpoch());
        var device = Layers.device(model);
        Engine.seed(0);
        try (var ng = new NoGradGuard()) {
            for (long i = 0; i < n; i++) {
                TokenBatch b = data.next();
                loss += Engine.step(() -> {
                    Tensor t = b.tensor(device);
                    TokenBrier.score(model, t, all, aligned, chunk);
                    return model.loss(t).item_double();
                });
                progress.step(1);
            }
        } finally {
            model.train(wasTraining);
        }
        return new Result(loss / n, all.result(), aligned.result(), data.blockTokens());
    }
}
