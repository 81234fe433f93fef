package calm4j.io;

import calm4j.engine.UserError;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** NumPy's .npy format (version 1.0) for 2-D little-endian float32 arrays: enough to hand latents to Python. */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\((\\d+),\\s*(\\d+)\\s*,?\\)");

    private Npy() {}

    public record Matrix(int rows, int cols, float[] data) {}

    public static void write(Path file, Matrix m) {
        String header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + m.rows() + ", " + m.cols() + "), }";
        int total = MAGIC.length + 4 + header.length() + 1;
        int pad = (64 - total % 64) % 64; // the data starts 64-byte aligned
        header = header + " ".repeat(pad) + "\n";
        ByteBuffer buf = ByteBuffer.allocate(MAGIC.length + 4 + header.length() + 4 * m.data().length)
                .order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.getBytes(StandardCharsets.US_ASCII));
        for (float f : m.data()) buf.putFloat(f);
        try {
            Files.write(file, buf.array());
        } catch (IOException e) {
            throw new UserError("cannot write " + file + ": " + e.getMessage());
        }
    }

    public static Matrix read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UserError("cannot read " + file + ": " + e.getMessage());
        }
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (byte b : MAGIC) {
            if (!buf.hasRemaining() || buf.get() != b) throw new UserError(file + " is not a .npy file");
        }
        int major = buf.get();
        buf.get();
        int headerLen = major == 1 ? Short.toUnsignedInt(buf.getShort()) : buf.getInt();
        String header = new String(bytes, buf.position(), headerLen, StandardCharsets.US_ASCII);
        buf.position(buf.position() + headerLen);
        if (!header.contains("'<f4'") || header.contains("'fortran_order': True")) {
            throw new UserError(file + " must hold a C-ordered float32 array (descr '<f4'), found " + header.trim());
        }
        Matcher sm = SHAPE.matcher(header);
        if (!sm.find()) throw new UserError(file + " must hold a 2-D array [chunks, latent], found " + header.trim());
        int rows = Integer.parseInt(sm.group(1)), cols = Integer.parseInt(sm.group(2));
        if (buf.remaining() != 4L * rows * cols) {
            throw new UserError(file + " is truncated: " + buf.remaining() + " data bytes for shape (" + rows + ", "
                    + cols + ")");
        }
        float[] data = new float[rows * cols];
        buf.asFloatBuffer().get(data);
        return new Matrix(rows, cols, data);
    }
}
