package calm4j.engine;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

import java.util.function.Supplier;

/**
 * The engine layer: threads, seeds, device and the per-step native-memory scope, set in one place.
 *
 * <p>libtorch's thread pool and random generator are process-wide, so an {@code Engine} is created once per command
 * (by the CLI or a test) and handed to whatever needs a device. It holds no other state.
 */
public final class Engine {
    static {
        BundledNatives.extract(); // before libtorch itself is loaded (torch's own static initializer)
    }

    private final Device device;
    private final String deviceName;
    private final int threads;

    private Engine(Device device, String deviceName, int threads) {
        this.device = device;
        this.deviceName = deviceName;
        this.threads = threads;
    }

    /**
     * @param device  "cpu", "cuda" or "cuda:N"
     * @param threads intra-op threads for libtorch; on small CPUs 1 avoids the OpenMP/OpenBLAS spin fight
     *                (see the engine notes: a small model trained 4-13x slower with 2 spinning pools)
     */
    public static Engine create(String device, int threads) {
        if (threads < 1) throw UserError.badValue("threads", "must be at least 1, got " + threads);
        torch.set_num_threads(threads);
        return new Engine(parseDevice(device), device, threads);
    }

    /** The CPU engine with the default thread count, for tests and tools. */
    public static Engine cpu() {
        return create("cpu", defaultThreads());
    }

    public static int defaultThreads() {
        String env = System.getenv("CALM4J_THREADS");
        if (env != null && !env.isBlank()) return Integer.parseInt(env.trim());
        return 1;
    }

    static Device parseDevice(String name) {
        String n = name == null ? "cpu" : name.trim().toLowerCase();
        if (n.equals("cpu")) return new Device(torch.DeviceType.CPU, (byte) -1);
        if (n.equals("cuda") || n.startsWith("cuda:")) {
            int index = 0;
            if (n.startsWith("cuda:")) {
                try {
                    index = Integer.parseInt(n.substring(5));
                } catch (NumberFormatException e) {
                    throw UserError.badValue("device", name + ": expected cuda:N with N a GPU index");
                }
            }
            if (!torch.cuda_is_available()) {
                throw UserError.badValue("device", name + " asked for CUDA, but this libtorch build or machine has "
                        + "no CUDA device. Run on the cpu device, or rebuild with './mvnw -Pcuda package' on a machine "
                        + "with a GPU.");
            }
            int count = torch.cuda_device_count();
            if (index >= count) {
                throw UserError.badValue("device", name + ": this machine has " + count + " CUDA device(s)");
            }
            return new Device(torch.DeviceType.CUDA, (byte) index);
        }
        throw UserError.badValue("device", name + " is not a device: use cpu, cuda or cuda:N");
    }

    public Device device() {
        return device;
    }

    public String deviceName() {
        return deviceName;
    }

    public int threads() {
        return threads;
    }

    /**
     * Seeds libtorch's global generator. Training re-seeds it at every step from (run seed, step), so that dropout
     * and sampling noise are a pure function of the step and a resumed run repeats an uninterrupted one exactly.
     */
    public static void seed(long seed) {
        torch.manual_seed(seed);
    }

    /** A seed for step {@code step} of a run seeded with {@code seed} (SplitMix64 finaliser: well-mixed, cheap). */
    public static long stepSeed(long seed, long step) {
        long z = seed + 0x9E3779B97F4A7C15L * (step + 1);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return (z ^ (z >>> 31)) & Long.MAX_VALUE;
    }

    /**
     * Runs one step inside a native-memory scope: every tensor created in {@code body} is freed when it returns,
     * except what the body detaches with {@code retainReference()}. Without this, native memory grows until the Java
     * GC happens to run (the notes measured +1.3 GB over 20k small steps).
     */
    public static <T> T step(Supplier<T> body) {
        guardNativeMemory();
        try (PointerScope scope = new PointerScope()) {
            return body.get();
        }
    }

    public static void step(Runnable body) {
        guardNativeMemory();
        try (PointerScope scope = new PointerScope()) {
            body.run();
        }
    }

    private static final java.util.concurrent.atomic.AtomicLong STEPS = new java.util.concurrent.atomic.AtomicLong();

    /**
     * JavaCPP's own guard reads /proc/self/statm at every tensor a native call returns, to run the GC when resident
     * memory passes twice the Java heap limit; calm4j turns it off ({@code org.bytedeco.javacpp.maxPhysicalBytes=0}
     * in ./calm and the tests: a batch-1 generation step took 3.3 ms with it and 1.7 without, int8 weights). The
     * same guard is kept here at the cost of one read every 1,024 steps: tensors made outside a step's scope are
     * freed by the GC, which this runs when resident memory grows past that limit.
     */
    private static void guardNativeMemory() {
        if (STEPS.incrementAndGet() % 1024 != 0) return;
        double limit = 2.0 * Runtime.getRuntime().maxMemory() / 1e9;
        if (Memory.residentGb() > limit) System.gc();
    }
}
