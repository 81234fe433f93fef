package calm4j.run;

import calm4j.engine.UserError;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The one process that writes a run folder. Two trainings on one folder would interleave their metrics and
 * checkpoints, so the second is refused. The lock is an operating-system lock on {@code RUN/.lock}: it is released
 * when the process exits, however it exits, so a lock left by a killed process is never in the way. The file holds
 * the owner's process id, for the message.
 */
public final class RunLock implements AutoCloseable {
    static final String FILE = ".lock";

    private final FileChannel channel;
    private final FileLock lock;

    private RunLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    public static RunLock acquire(Path run) {
        Path file = run.resolve(FILE);
        FileChannel ch = null;
        try {
            Files.createDirectories(run);
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null; // held by this same process
            }
            if (lock == null) {
                String owner = Files.readString(file, StandardCharsets.UTF_8).strip();
                ch.close();
                throw new UserError("run " + run + " is being written by another process" + (owner.isEmpty() ? ""
                        : " (pid " + owner + ")") + ": wait for it to finish, stop it, or choose another run folder");
            }
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(String.valueOf(ProcessHandle.current().pid()).getBytes(StandardCharsets.UTF_8)));
            ch.force(false);
            return new RunLock(ch, lock);
        } catch (IOException e) {
            try {
                if (ch != null) ch.close();
            } catch (IOException ignored) {
                // the message below says what failed
            }
            throw new UserError("cannot lock run folder " + run + ": " + e.getMessage());
        }
    }

    @Override
    public void close() {
        try {
            lock.release();
            channel.close();
        } catch (IOException ignored) {
            // the lock goes with the process anyway
        }
    }
}
