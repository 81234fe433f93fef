package calm4j.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's resident memory, as Linux reports it (/proc/self/status); NaN elsewhere. */
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
}
