package calm4j.train;

import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.Backend;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.GlooDeviceVector;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Optimizer;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.ReduceOp;
import org.bytedeco.pytorch.Store;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.Work;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.nccl.ProcessGroupNCCL;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static calm4j.nn.Tensors.c;

/**
 * Data-parallel training over PyTorch's c10d: every process (rank) holds the whole model and trains on its own shard
 * of each batch; gradients are averaged across ranks before the optimizer step, so every rank applies the same update
 * and the parameters stay identical. Started with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
 * MASTER_PORT): a {@link TCPStore} served by rank 0 for the rendezvous, then Gloo on CPU or NCCL on CUDA.
 *
 * <p>Gradients travel in flat buckets of about {@code bucketBytes}. Each parameter's gradient is a view into its
 * bucket (as DistributedDataParallel's {@code gradient_as_bucket_view}): the backward pass accumulates straight into
 * the buckets, so nothing is packed or unpacked; after the backward pass every bucket's allreduce is started at once
 * and then awaited. (They are not overlapped with the backward pass itself: that needs per-parameter autograd hooks,
 * which the Java presets do not expose in a usable form.) The gradients must therefore be zeroed in place, never set
 * to none: see {@link #zeroGradients}.
 *
 * <p>One process alone ({@code WORLD_SIZE} unset or 1) is the same object with nothing to communicate.
 */
public final class DataParallel implements AutoCloseable {
    private final int rank, world, localRank;
    private final Store store;     // kept: the process group uses it for its whole life
    private final Backend group;   // null for a single process
    private final long bucketBytes;
    private final long timeoutMillis;
    private final Device device;
    private List<Tensor> buckets; // flat gradient buckets, made on the first step; bucket 0 ends with 2 scalars
    private long commNanos;

    private DataParallel(int rank, int world, int localRank, Store store, Backend group, long bucketBytes,
                         long timeoutMillis, Device device) {
        this.device = device;
        this.rank = rank;
        this.world = world;
        this.localRank = localRank;
        this.store = store;
        this.group = group;
        this.bucketBytes = bucketBytes;
        this.timeoutMillis = timeoutMillis;
    }

    /** One process on the CPU, nothing shared. */
    public static DataParallel single() {
        return single(new Device(torch.DeviceType.CPU, (byte) -1));
    }

    /** One process on {@code device}, nothing shared. */
    public static DataParallel single(Device device) {
        return new DataParallel(0, 1, 0, null, null, 0, 0, device);
    }

    /**
     * Runs {@code train} in this process: one rank of a data-parallel job when {@code env} has torchrun's variables,
     * or alone ({@link #fromEnvironment} says what the other arguments are). Returns the summary on the rank that
     * writes and reports (rank 0), null on the others.
     */
    public static Trainer.Summary runAsRank(Map<String, String> env, Device device, long timeoutMillis,
                                            long bucketBytes, Function<DataParallel, Trainer.Summary> train) {
        try (DataParallel dist = fromEnvironment(env, device, timeoutMillis, bucketBytes)) {
            Trainer.Summary s = train.apply(dist);
            return dist.isWriter() ? s : null;
        }
    }

    /**
     * Joins the process group described by {@code env} (torchrun's variables), or returns {@link #single()} when
     * WORLD_SIZE is unset or 1.
     *
     * @param device        the device asked for: on CUDA each rank takes GPU LOCAL_RANK and NCCL replaces Gloo
     * @param timeoutMillis how long a collective or the rendezvous waits for the other ranks before failing
     * @param bucketBytes   the size of a flat gradient bucket
     */
    public static DataParallel fromEnvironment(Map<String, String> env, Device device, long timeoutMillis,
                                               long bucketBytes) {
        int world = intVar(env, "WORLD_SIZE", 1);
        if (world == 1) return single(device);
        boolean cuda = device.is_cuda();
        if (world < 1) throw new UserError("WORLD_SIZE must be at least 1, got " + world);
        int rank = intVar(env, "RANK", -1);
        if (rank < 0 || rank >= world) {
            throw new UserError("RANK must be set to 0.." + (world - 1) + " when WORLD_SIZE=" + world + " (got "
                    + env.get("RANK") + "); start the ranks with `calm launch` or torchrun's variables");
        }
        int localRank = intVar(env, "LOCAL_RANK", rank);
        String host = env.get("MASTER_ADDR");
        int port = intVar(env, "MASTER_PORT", -1);
        if (host == null || host.isBlank() || port <= 0 || port > 65535) {
            throw new UserError("MASTER_ADDR and MASTER_PORT must name rank 0's address and a free port (got "
                    + host + ":" + env.get("MASTER_PORT") + ")");
        }
        if (timeoutMillis <= 0) throw new UserError("the distributed timeout must be positive");
        Milliseconds timeout = new Milliseconds(timeoutMillis);
        Store store;
        try {
            TCPStoreOptions so = new TCPStoreOptions();
            so.port((short) port);
            so.isServer(rank == 0);
            so.waitWorkers(false);
            so.timeout(timeout);
            store = new TCPStore(host, so);
        } catch (RuntimeException e) {
            throw new UserError("rank " + rank + ": the rendezvous at " + host + ":" + port + " failed ("
                    + LibtorchErrors.firstLine(e.getMessage()) + "): check that rank 0 runs and that "
                    + "MASTER_ADDR/MASTER_PORT are the same on every rank and reachable");
        }
        Backend group;
        try {
            if (cuda) {
                group = new ProcessGroupNCCL(store, rank, world);
            } else {
                ProcessGroupGloo.Options po = ProcessGroupGloo.Options.create(timeout);
                po.devices(new GlooDeviceVector(glooDevice(env, host)));
                group = new ProcessGroupGloo(store, rank, world, po);
            }
        } catch (RuntimeException e) {
            throw new UserError("rank " + rank + ": joining the process group of " + world + " failed ("
                    + LibtorchErrors.firstLine(e.getMessage()) + "): did every rank start within "
                    + timeoutMillis / 1000 + " s? (a rank that never arrives makes the others give up after the "
                    + "timeout)");
        }
        Device placed = cuda ? new Device(torch.DeviceType.CUDA, (byte) localRank) : device;
        return new DataParallel(rank, world, localRank, store, group, bucketBytes, timeoutMillis, placed);
    }

    /** Gloo's network device: GLOO_SOCKET_IFNAME if set, loopback for a local job, else the host's own address. */
    private static org.bytedeco.pytorch.gloo.Device glooDevice(Map<String, String> env, String masterHost) {
        String ifname = env.get("GLOO_SOCKET_IFNAME");
        if (ifname != null && !ifname.isBlank()) return ProcessGroupGloo.createDeviceForInterface(ifname);
        try {
            if (InetAddress.getByName(masterHost).isLoopbackAddress()) {
                return ProcessGroupGloo.createDeviceForHostname("127.0.0.1");
            }
        } catch (UnknownHostException e) {
            throw new UserError("MASTER_ADDR " + masterHost + " does not resolve: " + e.getMessage());
        }
        return ProcessGroupGloo.createDefaultDevice();
    }

    private static int intVar(Map<String, String> env, String name, int fallback) {
        String v = env.get(name);
        if (v == null || v.isBlank()) return fallback;
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UserError(name + " must be an integer, got '" + v + "'");
        }
    }

    public int rank() {
        return rank;
    }

    public int world() {
        return world;
    }

    public int localRank() {
        return localRank;
    }

    /** Whether this process writes checkpoints, metrics and plots (rank 0). */
    public boolean isWriter() {
        return rank == 0;
    }

    /** Where this rank's model and batches live (GPU LOCAL_RANK on CUDA). */
    public Device device() {
        return device;
    }

    public boolean isDistributed() {
        return group != null;
    }

    /** Seconds spent averaging gradients since the last call (waiting for the slowest rank included). */
    public double takeCommSeconds() {
        double s = commNanos / 1e9;
        commNanos = 0;
        return s;
    }

    /** Copies rank 0's parameters and buffers to every rank (after a fresh start or a resume). */
    public void broadcastParameters(Module module) {
        if (group == null) return;
        List<Tensor> tensors = new ArrayList<>();
        var ps = module.parameters(true);
        for (long i = 0; i < ps.size(); i++) tensors.add(ps.get(i));
        var bs = module.buffers(true);
        for (long i = 0; i < bs.size(); i++) tensors.add(bs.get(i));
        try (var ng = new NoGradGuard()) {
            for (List<Tensor> bucket : buckets(tensors)) {
                Tensor flat = flatten(bucket);
                BroadcastOptions o = new BroadcastOptions();
                o.rootRank(0);
                o.timeout(new Milliseconds(timeoutMillis));
                await(group.broadcast(new TensorVector(flat), o), "broadcasting the parameters");
                unflatten(flat, bucket);
            }
        }
    }

    /**
     * Zeroes the gradients for the next step: in place when distributed (they are views into the buckets), else set
     * to none as usual.
     */
    public void zeroGradients(Optimizer optimizer) {
        if (buckets == null) {
            optimizer.zero_grad(true);
        } else {
            // Not optimizer.zero_grad(false): libtorch's detaches each gradient in place, which a view refuses.
            try (var ng = new NoGradGuard()) {
                for (Tensor flat : buckets) flat.zero_();
            }
        }
    }

    /**
     * Averages the gradients of {@code module}'s trainable parameters across ranks, in place, together with two
     * scalars every rank must agree on: returns {mean loss, number of ranks that asked to stop}.
     */
    public double[] averageGradients(Module module, double loss, boolean stopRequested) {
        if (group == null) return new double[] {loss, stopRequested ? 1 : 0};
        long t0 = System.nanoTime();
        if (buckets == null) buckets = bucketViews(module);
        Tensor first = buckets.get(0);
        long n = first.size(0);
        try (var ng = new NoGradGuard()) {
            first.narrow(0, n - 2, 2).copy_(Tensor.create(new float[] {(float) loss, stopRequested ? 1f : 0f}));
        }
        List<Work> works = new ArrayList<>();
        for (Tensor flat : buckets) {
            AllreduceOptions o = new AllreduceOptions();
            o.reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
            o.timeout(new Milliseconds(timeoutMillis));
            works.add(group.allreduce(new TensorVector(flat), o));
        }
        for (int b = 0; b < buckets.size(); b++) {
            await(works.get(b), "averaging gradients");
            buckets.get(b).div_(c((double) world));
        }
        double[] out = {first.select(0, n - 2).item_double(), first.select(0, n - 1).item_double() * world};
        commNanos += System.nanoTime() - t0;
        return out;
    }

    /**
     * Allocates the flat buckets and makes every trainable parameter's gradient a view into one of them, keeping the
     * gradient computed so far. Bucket 0 has two extra elements at its end for the loss and the stop flag.
     */
    private List<Tensor> bucketViews(Module module) {
        List<Tensor> params = new ArrayList<>();
        var ps = module.parameters(true);
        for (long i = 0; i < ps.size(); i++) if (ps.get(i).requires_grad()) params.add(ps.get(i));
        List<Tensor> flats = new ArrayList<>();
        try (var ng = new NoGradGuard()) {
            List<List<Tensor>> groups = buckets(params);
            for (int b = 0; b < groups.size(); b++) {
                long size = b == 0 ? 2 : 0;
                for (Tensor p : groups.get(b)) size += p.numel();
                Tensor flat = torch.zeros(new long[] {size}, new TensorOptions()
                        .device(new DeviceOptional(groups.get(b).get(0).device())));
                long at = 0;
                for (Tensor p : groups.get(b)) {
                    Tensor view = flat.narrow(0, at, p.numel()).view(p.sizes().vec().get());
                    if (p.grad().defined()) view.copy_(p.grad());
                    p.mutable_grad().put(view);
                    at += p.numel();
                }
                flats.add(flat.retainReference());
            }
        }
        return flats;
    }

    /** Waits for every rank (e.g. until rank 0 has created the run folder). */
    public void barrier() {
        if (group == null) return;
        // An allreduce of one number is a barrier that honours the timeout on every backend.
        Tensor one = torch.ones(new long[] {1}, new TensorOptions().device(
                new DeviceOptional(device)));
        AllreduceOptions o = new AllreduceOptions();
        o.timeout(new Milliseconds(timeoutMillis));
        await(group.allreduce(new TensorVector(one), o), "waiting for the other ranks");
    }

    private void await(Work work, String what) {
        try {
            work._wait(new Milliseconds(timeoutMillis));
        } catch (RuntimeException e) {
            throw new UserError("rank " + rank + " of " + world + ": " + what + " failed: "
                    + LibtorchErrors.firstLine(e.getMessage())
                    + "\n  what to do: another rank died or stalled (no answer within " + timeoutMillis / 1000.0
                    + " s); stop every rank and restart the same command: training resumes from the last "
                    + "checkpoint");
        }
    }

    /** Tensors grouped in order into buckets of about bucketBytes (a tensor larger than that is a bucket alone). */
    private List<List<Tensor>> buckets(List<Tensor> tensors) {
        List<List<Tensor>> out = new ArrayList<>();
        List<Tensor> current = new ArrayList<>();
        long bytes = 0;
        for (Tensor t : tensors) {
            long size = t.numel() * t.element_size();
            if (!current.isEmpty() && bytes + size > bucketBytes) {
                out.add(current);
                current = new ArrayList<>();
                bytes = 0;
            }
            current.add(t);
            bytes += size;
        }
        if (!current.isEmpty()) out.add(current);
        return out;
    }

    private static Tensor flatten(List<Tensor> tensors) {
        TensorVector parts = new TensorVector();
        for (Tensor t : tensors) parts.push_back(t.detach().reshape(-1));
        return torch.cat(parts, 0);
    }

    private static void unflatten(Tensor flat, List<Tensor> tensors) {
        long at = 0;
        try (var ng = new NoGradGuard()) {
            for (Tensor t : tensors) {
                long n = t.numel();
                t.copy_(flat.narrow(0, at, n).view(t.sizes().vec().get()));
                at += n;
            }
        }
    }

    @Override
    public void close() {
        if (group != null) {
            group.shutdown();
            group.close();
        }
        if (store != null) store.close();
    }
}
