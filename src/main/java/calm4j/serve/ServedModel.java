package calm4j.serve;

import calm4j.app.CalmRun;
import calm4j.app.TokenLMRun;
import calm4j.engine.UserError;
import calm4j.generate.CalmGenerator;
import calm4j.generate.GenerationSession;
import calm4j.generate.TokenGenerator;
import calm4j.run.RunFolder;
import calm4j.tokenize.Tokenizer;

import java.nio.file.Path;

/**
 * A trained run as the server sees it: its tokenizer, the limits a request is checked against, and new generation
 * sessions for the scheduler to drive. CALM runs step K tokens at a time; token-model runs one token at a time.
 *
 * @param <R> the generator's request for one sequence
 */
abstract class ServedModel<R> {
    final String id;
    final String kind;
    final Tokenizer tokenizer;
    /** Tokens generated per step (K for a CALM, 1 for a token model): the playground highlights each step. */
    final int tokensPerStep;

    ServedModel(String id, String kind, Tokenizer tokenizer, int tokensPerStep) {
        this.id = id;
        this.kind = kind;
        this.tokenizer = tokenizer;
        this.tokensPerStep = tokensPerStep;
    }

    /** Loads a CALM or token-model run (decided by its config's kind). */
    static ServedModel<?> load(Path run, int pool, int maxDraws) {
        String kind = RunFolder.config(run, null).path("kind").asText();
        String id = run.toAbsolutePath().normalize().getFileName().toString();
        return switch (kind) {
            case CalmRun.KIND -> new Calm(id, CalmRun.load(run), pool, maxDraws);
            case TokenLMRun.KIND -> new TokenModel(id, TokenLMRun.load(run));
            default -> throw new UserError(run + " is a " + kind + " run; serve needs a CALM (calm lm train) or a "
                    + "token model (calm ar train)");
        };
    }

    /** The longest prompt, in tokens, that leaves room for at least one generated step. */
    abstract int maxPromptTokens();

    /** Throws a {@link UserError} naming the allowed values if this model cannot sample at {@code temperature}. */
    abstract void checkTemperature(double temperature);

    /** A new, empty generation session (continuous batching: sequences join and leave between steps). */
    abstract GenerationSession<R, ?> newSession();

    /** The generator's request for {@code s}. */
    abstract R request(Sequence s);

    synchronized int[] encode(String text) {
        return tokenizer.encode(text);
    }

    synchronized String decode(int[] ids) {
        return tokenizer.decode(ids);
    }

    private static final class Calm extends ServedModel<CalmGenerator.Request> {
        private final CalmGenerator generator;

        Calm(String id, CalmRun run, int pool, int maxDraws) {
            super(id, CalmRun.KIND, run.tokenizer(), run.model().patchSize());
            this.generator = new CalmGenerator(run.model(), run.tokenizer().eosId(),
                    run.model().autoencoder().config().padId(), pool, false, maxDraws).withPrefix(run.promptPrefix());
        }

        @Override
        int maxPromptTokens() {
            return generator.maxPromptTokens(); // what comes before a prompt, and one chunk to generate
        }

        @Override
        void checkTemperature(double temperature) {
            generator.checkTemperature(temperature);
        }

        @Override
        GenerationSession<CalmGenerator.Request, ?> newSession() {
            return generator.session();
        }

        @Override
        CalmGenerator.Request request(Sequence s) {
            return new CalmGenerator.Request(s.prompt, s.maxTokens, s.temperature, s.seed);
        }
    }

    private static final class TokenModel extends ServedModel<TokenGenerator.Request> {
        private final TokenLMRun run;
        private final TokenGenerator generator;

        TokenModel(String id, TokenLMRun run) {
            super(id, TokenLMRun.KIND, run.tokenizer(), 1);
            this.run = run;
            this.generator = new TokenGenerator(run.model(), run.tokenizer().eosId(), run.padId(), run.patchSize());
        }

        @Override
        int maxPromptTokens() {
            return run.model().contextTokens() - 1 - run.patchSize(); // the boundary first, one token to generate
        }

        @Override
        void checkTemperature(double temperature) {
            if (!(temperature >= 0 && temperature <= 2)) {
                throw new UserError("temperature must lie in [0, 2] (0: greedy), got " + temperature);
            }
        }

        @Override
        GenerationSession<TokenGenerator.Request, ?> newSession() {
            return generator.session();
        }

        @Override
        TokenGenerator.Request request(Sequence s) {
            return new TokenGenerator.Request(s.prompt, s.maxTokens, s.temperature, 0, 1.0, s.seed);
        }
    }
}
