package calm4j.cli;

import calm4j.train.Launcher;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "launch", mixinStandardHelpOptions = true,
        description = {"Run a calm command as N data-parallel processes on this machine (as torchrun does): each gets "
                + "RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, its output is prefixed with its rank, "
                + "and when one fails the others are stopped.",
                "Example: calm launch --nproc 2 -- lm train --ae runs/ae --data data/sotu --out runs/calm",
                "Several machines: run the same command on each with --nnodes, its own --node-rank and rank 0's "
                + "--master-addr; the run folder must be on a filesystem every machine sees."})
final class LaunchCommand implements Callable<Integer> {
    @Option(names = "--nproc", defaultValue = "2", description = "processes on this machine")
    int nproc;

    @Option(names = "--nnodes", defaultValue = "1", description = "machines in the job")
    int nnodes;

    @Option(names = "--node-rank", defaultValue = "0", description = "this machine's index, 0 on the machine that "
            + "runs rank 0")
    int nodeRank;

    @Option(names = "--master-addr", defaultValue = "127.0.0.1", description = "rank 0's address")
    String masterAddr;

    @Option(names = "--master-port", description = "rank 0's rendezvous port (default: a free port; required with "
            + "--nnodes > 1)")
    Integer masterPort;

    @Option(names = "--threads-per-proc", description = "CALM4J_THREADS for each process (default: cores / nproc, "
            + "at least 1)")
    Integer threadsPerProc;

    @Parameters(arity = "1..*", paramLabel = "COMMAND", description = "the calm command to run, after --")
    List<String> command;

    @Override
    public Integer call() throws Exception {
        return new Launcher(nproc, nnodes, nodeRank, masterAddr, masterPort, threadsPerProc)
                .run(Launcher.javaCommand(Calm.class, command));
    }
}
