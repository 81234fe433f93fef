package calm4j.cli;

import calm4j.engine.UserError;
import calm4j.release.HubDownload;
import calm4j.release.HuggingFaceLayout;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code calm import} and {@code calm export}: the Hugging Face layout of the CALM authors' releases. */
final class InteropCommands {
    private InteropCommands() {}

    @Command(name = "import", mixinStandardHelpOptions = true,
            description = "Read a directory in the Hugging Face layout of the CALM releases (config.json, "
                    + "model.safetensors or pytorch_model.bin, tokenizer.json), autoencoder or CALM, into a new run.")
    static final class Import implements Callable<Integer> {
        @Option(names = "--hf", required = true, description = "a Hugging Face model directory, or a Hub repository "
                + "by name (owner/name, e.g. cccczshao/CALM-M: downloaded from $HF_ENDPOINT or huggingface.co, with "
                + "$HF_TOKEN if set, into the cache; resumable, checksums verified)")
        String dir;

        @Option(names = "--cache", description = "where Hub downloads are kept (default: $CALM4J_CACHE/hub or "
                + "~/.cache/calm4j/hub)")
        Path cache;

        @Option(names = "--out", required = true, description = "the run folder to create")
        Path out;

        @Option(names = "--tokenizer", description = "the model's tokenizer.json (default: the one in --hf; the "
                + "authors' releases need the Llama-3 one from their repository's llama3_tokenizer/)")
        Path tokenizer;

        @Option(names = "--ae", description = "the authors' autoencoder release, for a CALM checkpoint without its "
                + "ae_model.* tensors")
        Path ae;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            Path local = HubDownload.local(dir, cache, engine.quiet, System.out::println);
            HuggingFaceLayout.Imported r = HuggingFaceLayout.importDir(local, out, tokenizer, ae);
            System.out.printf("imported %s %s with %,d parameters into %s%n", r.kind().startsWith("a") ? "an" : "a",
                    r.kind(), r.parameters(), out);
            return 0;
        }
    }

    @Command(name = "export", mixinStandardHelpOptions = true,
            description = "Write a run (autoencoder or CALM) in the Hugging Face layout: config.json with the "
                    + "reference's field names, model.safetensors with its parameter names, tokenizer.json.")
    static final class Export implements Callable<Integer> {
        @Option(names = "--ckpt", description = "the run folder to export")
        Path run;

        /** The spelling before 'import --hf DIR' and 'export --ckpt RUN' were told apart: still read, with a note. */
        @Option(names = "--hf", hidden = true)
        Path legacyRun;

        @Option(names = "--out", required = true, description = "the directory to write")
        Path out;

        @Option(names = "--format", defaultValue = "calm4j", description = "calm4j (calm4j's layout, the default) or "
                + "official (the authors' layout: their classes load it with from_pretrained)")
        String format;

        @Mixin
        EngineOptions engine;

        @Override
        public Integer call() {
            engine.engine();
            if (legacyRun != null) {
                if (run != null) throw new UserError("give the run once, with --ckpt");
                System.err.println("calm export: note: --hf RUN is now --ckpt RUN (--hf names a Hugging Face folder "
                        + "for import); the old spelling still works");
                run = legacyRun;
            }
            if (run == null) throw new UserError("give the run to export with --ckpt RUN");
            System.out.println(HuggingFaceLayout.export(run, out, format));
            return 0;
        }
    }
}
