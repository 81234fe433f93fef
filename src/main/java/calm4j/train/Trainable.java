package calm4j.train;

import calm4j.loader.TokenBatch;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;

import java.util.Map;

/** What the training loop needs from a model; every calm4j model (autoencoder, CALM, token LM) implements it. */
public interface Trainable {
    /** The module whose trainable parameters the optimizer updates and whose state checkpoints hold. */
    Module module();

    /**
     * The scalar training loss of one micro-batch, with its graph. {@code metrics} receives extra named figures
     * worth logging (for example the autoencoder's KL); they are averaged over micro-batches.
     */
    Tensor loss(TokenBatch batch, Map<String, Double> metrics);

    /** Held-out metrics, computed in evaluation mode without gradients; "loss" if it has one. */
    Map<String, Double> evaluate(int batches);

    /**
     * What a language model costs, for the run's summary: trainable parameters, and FLOPs per token in training and
     * in generation (each model counts its own, from its modules' multiply-accumulates).
     */
    record Cost(long parameters, double trainingFlopsPerToken, double inferenceFlopsPerToken) {}

    /** This model's cost, or null when it is not a language model (the autoencoder). */
    default Cost cost() {
        return null;
    }
}
