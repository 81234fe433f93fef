package calm4j.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/** A PyTorch zip checkpoint rewritten with its first large storage record cut short: the attack of issue 27. */
public final class CutRecords {
    private CutRecords() {}

    /**
     * Writes {@code from} to {@code to} (stored, as torch.save writes) with the first {@code data/} record of more
     * than {@code longerThan} bytes cut to {@code keep} bytes; returns that record's name.
     */
    public static String cutFirst(Path from, Path to, int longerThan, int keep) throws IOException {
        Map<String, byte[]> records = new LinkedHashMap<>();
        String cut = null;
        try (ZipFile z = new ZipFile(from.toFile())) {
            for (var it = z.entries(); it.hasMoreElements(); ) {
                ZipEntry e = it.nextElement();
                byte[] b = z.getInputStream(e).readAllBytes();
                if (cut == null && e.getName().contains("/data/") && b.length > longerThan) {
                    cut = e.getName();
                    b = Arrays.copyOf(b, keep);
                }
                records.put(e.getName(), b);
            }
        }
        zip(to, records, false);
        return cut;
    }

    /** A zip of named records, in order; {@code deflate} compresses them (torch.save stores them). */
    public static Path zip(Path file, Map<String, byte[]> records, boolean deflate) throws IOException {
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(file))) {
            for (var e : records.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey());
                if (!deflate) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    entry.setMethod(ZipEntry.STORED);
                    entry.setSize(e.getValue().length);
                    entry.setCrc(crc.getValue());
                }
                z.putNextEntry(entry);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return file;
    }
}
