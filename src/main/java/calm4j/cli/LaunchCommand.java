package calm4j.cli;

import calm4j.engine.UserError;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

@Command(name = "launch", mixinStandardHelpOptions = true,
        description = {"Run a calm command as N data-parallel processes on this machine (as torchrun does): each gets "
                + "RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, its output is prefixed with its rank, "
                + "and when one fails the others are stopped.",
                "Example: calm launch --nproc 2 -- lm train --ae runs/ae --data data/sotu --out runs/calm",
                "Several machines: run the same command on each with --nnodes, its own --node-rank and rank 0's "
                + "--master-addr; the run folder must be on a filesystem every machine sees."})
final class LaunchCommand implements Callable<Integer> {
    @Option(names = "--nproc", defaultValue = "2", description = "processes on this machine (default: "
            + "${DEFAULT-VALUE})")
    int nproc;

    @Option(names = "--nnodes", defaultValue = "1", description = "machines in the job (default: ${DEFAULT-VALUE})")
    int nnodes;

    @Option(names = "--node-rank", defaultValue = "0", description = "this machine's index, 0 on the machine that "
            + "runs rank 0 (default: ${DEFAULT-VALUE})")
    int nodeRank;

    @Option(names = "--master-addr", defaultValue = "127.0.0.1", description = "rank 0's address (default: "
            + "${DEFAULT-VALUE})")
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
        if (nproc < 1 || nnodes < 1 || nodeRank < 0 || nodeRank >= nnodes) {
            throw new UserError("need --nproc >= 1, --nnodes >= 1 and 0 <= --node-rank < --nnodes");
        }
        if (nnodes > 1 && masterPort == null) throw new UserError("--master-port is required with --nnodes > 1");
        int port = masterPort != null ? masterPort : freePort();
        int world = nproc * nnodes;
        int threads = threadsPerProc != null ? threadsPerProc
                : Math.max(1, Runtime.getRuntime().availableProcessors() / nproc);
        List<Process> procs = new ArrayList<>();
        List<Thread> pumps = new ArrayList<>();
        Thread hook = new Thread(() -> stopAll(procs, 60), "calm4j-launch-stop");
        Runtime.getRuntime().addShutdownHook(hook); // Ctrl-C: every rank checkpoints at the same step and exits
        for (int local = 0; local < nproc; local++) {
            int rank = nodeRank * nproc + local;
            ProcessBuilder pb = new ProcessBuilder(javaCommand(command));
            Map<String, String> env = pb.environment();
            env.put("RANK", String.valueOf(rank));
            env.put("LOCAL_RANK", String.valueOf(local));
            env.put("WORLD_SIZE", String.valueOf(world));
            env.put("MASTER_ADDR", masterAddr);
            env.put("MASTER_PORT", String.valueOf(port));
            env.put("CALM4J_THREADS", String.valueOf(threads));
            env.put("OMP_NUM_THREADS", String.valueOf(threads));
            Process p = pb.start();
            procs.add(p);
            pumps.add(pump(p.getInputStream(), System.out, "[rank " + rank + "] "));
            pumps.add(pump(p.getErrorStream(), System.err, "[rank " + rank + "] "));
        }
        System.err.printf("calm launch: %d processes (ranks %d..%d of %d), rendezvous at %s:%d%n", nproc,
                nodeRank * nproc, nodeRank * nproc + nproc - 1, world, masterAddr, port);
        int status = 0;
        // Wait for all; the first failure stops the rest (they would otherwise wait for it until their timeout).
        while (!procs.stream().allMatch(p -> !p.isAlive())) {
            for (int i = 0; i < procs.size(); i++) {
                Process p = procs.get(i);
                if (!p.isAlive() && p.exitValue() != 0 && status == 0) {
                    status = p.exitValue();
                    System.err.printf("calm launch: rank %d exited with status %d; stopping the others%n",
                            nodeRank * nproc + i, status);
                    stopAll(procs, 30);
                }
            }
            procs.get(0).waitFor(200, TimeUnit.MILLISECONDS);
        }
        for (Thread t : pumps) t.join(5000);
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // Ctrl-C: the hook already stopped the ranks
        }
        if (status == 0) {
            for (Process p : procs) if (p.exitValue() != 0) status = p.exitValue();
        }
        return status;
    }

    /** This JVM's java binary, memory settings and class path, running calm4j's entry point with {@code args}. */
    static List<String> javaCommand(List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("-Xmx") || a.startsWith("-Xms") || a.startsWith("-D")) cmd.add(a);
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Calm.class.getName());
        cmd.addAll(args);
        return cmd;
    }

    /** SIGTERM to every live process (each checkpoints and exits), then SIGKILL after {@code graceSeconds}. */
    private static void stopAll(List<Process> procs, int graceSeconds) {
        for (Process p : procs) if (p.isAlive()) p.destroy();
        long until = System.nanoTime() + graceSeconds * 1_000_000_000L;
        for (Process p : procs) {
            try {
                long left = until - System.nanoTime();
                if (left <= 0 || !p.waitFor(left, TimeUnit.NANOSECONDS)) p.destroyForcibly();
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Copies a child's output to {@code out}, each line (or progress-bar update ending in \r) prefixed. */
    private static Thread pump(InputStream in, PrintStream out, String prefix) {
        Thread t = new Thread(() -> {
            StringBuilder line = new StringBuilder();
            try (var reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
                int c;
                while ((c = reader.read()) >= 0) {
                    line.append((char) c);
                    if (c == '\n' || c == '\r') {
                        synchronized (out) {
                            out.print(prefix + line);
                            out.flush();
                        }
                        line.setLength(0);
                    }
                }
                if (line.length() > 0) out.println(prefix + line);
            } catch (IOException ignored) {
                // the process ended
            }
        }, "calm4j-launch-output");
        t.setDaemon(true);
        t.start();
        return t;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
