package calm4j.serve;

import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;

/**
 * A validated {@code POST /v1/completions} body (the OpenAI completions subset calm4j serves). Fields OpenAI defines
 * but calm4j does not implement are refused when set, rather than silently ignored; other unknown fields are ignored,
 * as OpenAI clients add their own.
 */
record CompletionRequest(String prompt, int maxTokens, double temperature, int n, long seed, boolean seeded,
                         boolean stream) {
    static final int DEFAULT_MAX_TOKENS = 16;
    static final int MAX_N = 8;
    private static final String[] UNSUPPORTED = {"suffix", "logprobs", "echo", "stop", "best_of", "logit_bias"};

    /** A problem with the request body: the server answers 400 with this message. */
    static final class Invalid extends Exception {
        Invalid(String message) {
            super(message);
        }
    }

    static CompletionRequest parse(JsonNode body, ServedModel model, int maxTokensLimit) throws Invalid {
        if (body == null || !body.isObject()) throw new Invalid("the body must be a JSON object");
        JsonNode prompt = body.get("prompt");
        if (prompt == null || prompt.isNull()) throw new Invalid("'prompt' is required (a string)");
        if (!prompt.isTextual()) {
            throw new Invalid("'prompt' must be a string (lists of prompts and token arrays are not supported; send "
                    + "one request per prompt)");
        }
        for (String field : UNSUPPORTED) {
            JsonNode v = body.get(field);
            if (v != null && !v.isNull() && !(v.isBoolean() && !v.asBoolean()) && !(field.equals("best_of")
                    && v.isInt() && v.asInt() == 1)) {
                throw new Invalid("'" + field + "' is not supported by calm4j; leave it out");
            }
        }
        String requested = optionalText(body, "model");
        if (requested != null && !requested.equals(model.id)) {
            throw new Invalid("model '" + requested + "' is not served here; this server serves '" + model.id + "'");
        }
        int maxTokens = optionalInt(body, "max_tokens", DEFAULT_MAX_TOKENS);
        if (maxTokens < 1 || maxTokens > maxTokensLimit) {
            throw new Invalid("'max_tokens' must lie in [1, " + maxTokensLimit + "], got " + maxTokens);
        }
        double temperature = 1.0;
        JsonNode t = body.get("temperature");
        if (t != null && !t.isNull()) {
            if (!t.isNumber()) throw new Invalid("'temperature' must be a number");
            temperature = t.asDouble();
        }
        try {
            model.checkTemperature(temperature);
        } catch (UserError e) {
            throw new Invalid("unsupported 'temperature': " + e.getMessage());
        }
        int n = optionalInt(body, "n", 1);
        if (n < 1 || n > MAX_N) throw new Invalid("'n' must lie in [1, " + MAX_N + "], got " + n);
        JsonNode seedNode = body.get("seed");
        boolean seeded = seedNode != null && !seedNode.isNull();
        if (seeded && !(seedNode.isIntegralNumber() && seedNode.canConvertToLong())) {
            throw new Invalid("'seed' must be an integer (a 64-bit one), got " + seedNode);
        }
        long seed = seeded ? seedNode.asLong() : 0;
        JsonNode stream = body.get("stream");
        if (stream != null && !stream.isNull() && !stream.isBoolean()) throw new Invalid("'stream' must be a boolean");
        return new CompletionRequest(prompt.asText(), maxTokens, temperature, n, seed, seeded,
                stream != null && stream.asBoolean());
    }

    private static int optionalInt(JsonNode body, String field, int fallback) throws Invalid {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return fallback;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw new Invalid("'" + field + "' must be an integer");
        return v.asInt();
    }

    private static String optionalText(JsonNode body, String field) throws Invalid {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isTextual()) throw new Invalid("'" + field + "' must be a string");
        return v.asText();
    }
}
