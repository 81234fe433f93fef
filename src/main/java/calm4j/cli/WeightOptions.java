package calm4j.cli;

import calm4j.nn.WeightType;
import picocli.CommandLine.Option;

/** The weight type of a model loaded for inference: generate, serve, eval and bench share it. */
final class WeightOptions {
    @Option(names = "--dtype", defaultValue = "fp32", description = "the weights at inference: fp32 (as trained), "
            + "bf16, fp16 or int8 (packed for the CPU's fbgemm at load; the run on disk is unchanged)")
    String dtype;

    WeightType type() {
        return WeightType.parse(dtype);
    }
}
