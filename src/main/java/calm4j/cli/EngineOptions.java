package calm4j.cli;

import calm4j.engine.Engine;
import picocli.CommandLine.Option;

/** Options every command that runs tensors shares. */
final class EngineOptions {
    @Option(names = "--device", defaultValue = "cpu", description = "cpu, cuda or cuda:N")
    String device;

    @Option(names = "--threads", description = "libtorch intra-op threads (default: $CALM4J_THREADS or 1; "
            + "measured faster than 2 for calm4j's default models on 2 cores)")
    Integer threads;

    @Option(names = "--quiet", description = "no progress bars")
    boolean quiet;

    Engine engine() {
        return Engine.create(device, threads == null ? Engine.defaultThreads() : threads);
    }
}
