package calm4j.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's resident memory, as Linux reports it (/proc/self/status); NaN elsewhere; and the memory left. */
public final class Memory {
    private Memory() {}

    /** Resident set size now, in GB (10^9 bytes). */
    public static double residentGb() {
        return field("VmRSS:");
    }

    /** The largest resident set size so far, in GB. */
    public static double peakResidentGb() {
        return field("VmHWM:");
    }

    private static double field(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(name)) {
                    return Long.parseLong(line.substring(name.length()).replace("kB", "").trim()) * 1024 / 1e9;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux: no figure
        }
        return Double.NaN;
    }

    /** Memory the system can still give (MemAvailable of /proc/meminfo), in bytes; NaN where unknown. */
    public static double availableBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    return Long.parseLong(line.substring("MemAvailable:".length()).replace("kB", "").trim()) * 1024.0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux: no figure
        }
        return Double.NaN;
    }

    /**
     * Refuses a model whose weights alone ({@code parameters} float32 values) cannot fit in the memory left, before
     * any of it is allocated: a config that asks for 10^9 layers fails at once with the figures, instead of growing
     * until the system kills the process.
     */
    public static void requireWeightsFit(double parameters, String what) {
        double need = 4 * parameters, have = availableBytes();
        if (!Double.isNaN(have) && need > have) {
            throw new UserError(String.format("%s has %.3g parameters: its float32 weights alone need %.3g GB, and "
                    + "this machine has %.3g GB available (check the config's sizes: hidden_size, "
                    + "num_hidden_layers, intermediate_size, vocab_size)", what, parameters, need / 1e9, have / 1e9));
        }
    }
}
