package calm4j.cli;

import calm4j.engine.BundledNatives;
import calm4j.engine.LibtorchErrors;
import calm4j.engine.UserError;
import picocli.CommandLine.Command;
import picocli.CommandLine;

/** {@code calm}: the command line of calm4j. */
@Command(name = "calm", mixinStandardHelpOptions = true, version = "calm4j 0.1.0",
        description = "Continuous Autoregressive Language Models on the JVM (libtorch).",
        subcommands = {DemoCommand.class, TokenizerCommand.class, DataCommand.class, AeCommand.class, LmCommand.class,
                ArCommand.class, CompareCommand.class, GenerateCommand.class, ServeCommand.class, LaunchCommand.class,
                InteropCommands.Import.class, InteropCommands.Export.class, PlotCommand.class, BenchCommand.class,
                CommandLine.HelpCommand.class})
public final class Calm implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        BundledNatives.extract(); // before any command touches libtorch
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit status: 0 ok, 1 internal error, 2 user error or bad usage. */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Calm());
        showDefaults(cli);
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            Throwable t = e;
            String name = cmd.getCommandSpec().qualifiedName(); // "calm ae train", not "train"
            if (t instanceof RuntimeException r && !(t instanceof UserError) && LibtorchErrors.isLibtorch(r)) {
                t = LibtorchErrors.translate(name, r);
            }
            if (t instanceof UserError u) {
                cmd.getErr().println(name + ": error: " + message(u));
                return 2;
            }
            cmd.getErr().println(name + ": internal error (please report it):");
            e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cli.execute(args);
    }

    /** Every command's help shows each option's default value (no description restates it). */
    private static void showDefaults(CommandLine cli) {
        cli.getCommandSpec().usageMessage().showDefaultValues(true);
        cli.getSubcommands().values().forEach(Calm::showDefaults);
    }

    /**
     * A user error as the command line says it: an error about one setting names the flag that sets it
     * ({@code max_batch} is {@code --max-batch}; every calm4j flag is its parameter's name in kebab case).
     */
    static String message(UserError e) {
        return e.parameter() == null ? e.getMessage() : "--" + e.parameter().replace('_', '-') + " " + e.problem();
    }
}
