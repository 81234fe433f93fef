package calm4j.engine;

import org.bytedeco.pytorch.global.torch;

import java.nio.file.Files;
import java.nio.file.Path;

/** Run in a fresh JVM by {@link BundledNativesTest}: one tensor operation, then the libtorch files mapped. */
public final class NativesProbe {
    public static void main(String[] args) throws Exception {
        Engine.cpu();
        System.out.println("sum " + torch.ones(3).sum().item_float());
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
            int slash = line.indexOf('/');
            if (slash >= 0 && line.contains("libtorch_cpu")) System.out.println("mapped " + line.substring(slash));
        }
    }
}
