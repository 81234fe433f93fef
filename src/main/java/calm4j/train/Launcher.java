package calm4j.train;

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
import java.util.concurrent.TimeUnit;

/**
 * Runs one command as several data-parallel processes on this machine, as torchrun does: each process gets RANK,
 * LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT (what {@link DataParallel#fromEnvironment} reads), its output
 * is prefixed with its rank, and when one fails the others are stopped.
 *
 * @param nproc          processes on this machine
 * @param nnodes         machines in the job
 * @param nodeRank       this machine's index (0 runs rank 0)
 * @param masterAddr     rank 0's address
 * @param masterPort     rank 0's rendezvous port, or null for a free one (one machine only)
 * @param threadsPerProc libtorch threads per process, or null for cores / nproc
 */
public record Launcher(int nproc, int nnodes, int nodeRank, String masterAddr, Integer masterPort,
                       Integer threadsPerProc) {
    public Launcher {
        if (nproc < 1) throw calm4j.engine.UserError.badValue("nproc", "must be at least 1, got " + nproc);
        if (nnodes < 1) throw calm4j.engine.UserError.badValue("nnodes", "must be at least 1, got " + nnodes);
        if (nodeRank < 0 || nodeRank >= nnodes) {
            throw calm4j.engine.UserError.badValue("node_rank", "must lie in [0, nnodes - 1] = [0, " + (nnodes - 1)
                    + "], got " + nodeRank);
        }
        if (nnodes > 1 && masterPort == null) {
            throw calm4j.engine.UserError.badValue("master_port", "is required when the job spans several "
                    + "machines (every machine must rendezvous at the same port)");
        }
    }

    /**
     * Starts {@code command} (a whole process command line) once per local rank, waits for all, and returns the
     * first non-zero exit status (0 when all succeed).
     */
    public int run(List<String> command) throws IOException, InterruptedException {
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
            ProcessBuilder pb = new ProcessBuilder(command);
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
        System.err.printf("launch: %d processes (ranks %d..%d of %d), rendezvous at %s:%d%n", nproc,
                nodeRank * nproc, nodeRank * nproc + nproc - 1, world, masterAddr, port);
        int status = 0;
        // Wait for all; the first failure stops the rest (they would otherwise wait for it until their timeout).
        while (!procs.stream().allMatch(p -> !p.isAlive())) {
            for (int i = 0; i < procs.size(); i++) {
                Process p = procs.get(i);
                if (!p.isAlive() && p.exitValue() != 0 && status == 0) {
                    status = p.exitValue();
                    System.err.printf("launch: rank %d exited with status %d; stopping the others%n",
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

    /**
     * This JVM's java binary, memory settings and class path, running {@code mainClass} with {@code args}: the
     * command each rank runs.
     */
    public static List<String> javaCommand(Class<?> mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (a.startsWith("-Xmx") || a.startsWith("-Xms") || a.startsWith("-D")) cmd.add(a);
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass.getName());
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
