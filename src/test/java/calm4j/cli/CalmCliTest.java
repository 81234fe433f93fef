package calm4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class CalmCliTest {
    record Run(int status, String out, String err) {}

    static Run calm(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true));
        System.setErr(new PrintStream(err, true));
        try {
            int status = Calm.run(args);
            return new Run(status, out.toString(), err.toString());
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void helpListsTheSubcommands() {
        Run r = calm("--help");
        assertEquals(0, r.status());
        for (String c : new String[] {"demo", "tokenizer", "data", "ae", "plot", "bench"}) {
            assertTrue(r.out().contains(c), c + " in " + r.out());
        }
        assertEquals(0, calm("ae", "train", "--help").status());
    }

    @Test
    void badInputExitsNonZeroWithAMessageAndNoStackTrace(@TempDir Path dir) throws Exception {
        Run missing = calm("data", "prepare", "--input", dir.resolve("nope").toString(), "--tokenizer",
                dir.resolve("t.json").toString(), "--out", dir.resolve("out").toString(), "--val-fraction", "0.1");
        assertEquals(2, missing.status());
        assertTrue(missing.err().contains("error:") && missing.err().contains("does not exist"), missing.err());
        assertFalse(missing.err().contains("\tat "), "no stack trace for a user error");

        Run notARun = calm("ae", "eval", "--ckpt", dir.toString(), "--data", dir.toString());
        assertEquals(2, notARun.status());
        assertTrue(notARun.err().contains("not a calm4j run"), notARun.err());

        Path cfg = dir.resolve("ae.json");
        Files.writeString(cfg, "{\"model\": {\"hidden_sise\": 3}}");
        Run typo = calm("ae", "train", "--data", dir.toString(), "--config", cfg.toString(), "--out",
                dir.resolve("run").toString());
        assertEquals(2, typo.status());
        assertTrue(typo.err().contains("hidden_sise"), typo.err());
        assertFalse(Files.exists(dir.resolve("run")), "nothing is created for a bad config");

        assertEquals(2, calm("data", "prepare", "--input", "x").status(), "usage errors exit 2 too");
    }
}
