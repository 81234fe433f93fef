package calm4j.cli;

import picocli.CommandLine.Option;

/** How many candidate chunks a CALM draws: generate and serve share the options, their defaults and their help. */
final class CandidateOptions {
    @Option(names = "--pool", defaultValue = "200", description = "CALM: candidate chunks drawn per step when the "
            + "temperature is below 1 or top_p/top_k choose among candidates")
    int pool;

    @Option(names = "--max-draws", defaultValue = "2000", description = "CALM: the most candidates drawn to continue "
            + "a prompt that ends inside a chunk (each costs a head sample and a decode; a request never draws more "
            + "than its aligned steps would), and for --exact")
    int maxDraws;
}
