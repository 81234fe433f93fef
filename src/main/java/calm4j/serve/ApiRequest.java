package calm4j.serve;

import calm4j.chat.ChatTemplate;
import calm4j.engine.UserError;
import calm4j.generate.Sampling;
import calm4j.generate.StopStrings;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * A validated body of {@code POST /v1/completions} or {@code POST /v1/chat/completions}: the OpenAI fields calm4j
 * serves. A field OpenAI defines that calm4j cannot honour is refused with the reason when it is set to anything but
 * its neutral value, never silently ignored; fields OpenAI does not define are ignored, as clients add their own.
 *
 * @param prompts   one entry per prompt (a completion's list of prompts; one for a chat)
 * @param messages  the conversation of a chat request (null for a completion)
 * @param maxTokens the new-token limit asked for, or null for the endpoint's default
 */
record ApiRequest(boolean chat, List<Prompt> prompts, List<ChatTemplate.Message> messages, Integer maxTokens,
                  Sampling sampling, int n, long seed, boolean seeded, boolean stream, boolean includeUsage,
                  List<String> stop) {
    /** A prompt as text, or as token ids (the API allows both). */
    record Prompt(String text, int[] tokens) {}

    static final int MAX_N = 8, MAX_PROMPTS = 16;

    /**
     * A problem with the request body: the server answers {@code status} (400 unless said otherwise) with this
     * message, and OpenAI's error {@code code} and {@code param} where OpenAI has one (null otherwise).
     */
    static final class Invalid extends Exception {
        final int status;
        final String code, param;

        Invalid(String message) {
            this(400, message, null, null);
        }

        private Invalid(int status, String message, String code, String param) {
            super(message);
            this.status = status;
            this.code = code;
            this.param = param;
        }

        /** A model this server does not serve: 404 {@code model_not_found}, as OpenAI answers (SDKs' NotFoundError). */
        static Invalid modelNotFound(String requested, String served) {
            return new Invalid(404, "The model '" + requested + "' does not exist on this server; it serves '"
                    + served + "'", "model_not_found", "model");
        }
    }

    static ApiRequest parse(JsonNode body, boolean chat, String modelId) throws Invalid {
        if (body == null || !body.isObject()) throw new Invalid("the body must be a JSON object");
        refuseUnserved(body, chat);
        String requested = optionalText(body, "model");
        if (requested != null && !requested.equals(modelId)) {
            throw Invalid.modelNotFound(requested, modelId);
        }
        List<Prompt> prompts = new ArrayList<>();
        List<ChatTemplate.Message> messages = null;
        if (chat) {
            messages = messages(body.get("messages"));
        } else {
            prompts = prompts(body.get("prompt"));
        }
        Integer maxTokens = optionalInt(body, chat && body.hasNonNull("max_completion_tokens")
                ? "max_completion_tokens" : "max_tokens");
        if (maxTokens != null && maxTokens < 1) throw new Invalid("'max_tokens' must be at least 1, got " + maxTokens);
        Sampling sampling;
        try {
            sampling = new Sampling(optionalNumber(body, "temperature", 1), optionalNumber(body, "top_p", 1), 0,
                    optionalNumber(body, "presence_penalty", 0), optionalNumber(body, "frequency_penalty", 0));
        } catch (UserError e) {
            throw new Invalid(e.getMessage());
        }
        Integer n = optionalInt(body, "n");
        if (n == null) n = 1;
        if (n < 1 || n > MAX_N) throw new Invalid("'n' must lie in [1, " + MAX_N + "], got " + n);
        JsonNode seedNode = body.get("seed");
        boolean seeded = seedNode != null && !seedNode.isNull();
        if (seeded && !(seedNode.isIntegralNumber() && seedNode.canConvertToLong())) {
            throw new Invalid("'seed' must be an integer (a 64-bit one), got " + seedNode);
        }
        JsonNode stream = body.get("stream");
        if (stream != null && !stream.isNull() && !stream.isBoolean()) throw new Invalid("'stream' must be a boolean");
        JsonNode usage = body.path("stream_options").path("include_usage");
        if (!usage.isMissingNode() && !usage.isNull() && !usage.isBoolean()) {
            throw new Invalid("'stream_options.include_usage' must be a boolean");
        }
        return new ApiRequest(chat, prompts, messages, maxTokens, sampling, n, seeded ? seedNode.asLong() : 0, seeded,
                stream != null && stream.asBoolean(), usage.asBoolean(false), stops(body.get("stop")));
    }

    /**
     * Fields that would change what is generated in ways a model without token probabilities (a CALM), or calm4j,
     * cannot honour: refused unless neutral.
     */
    private static void refuseUnserved(JsonNode body, boolean chat) throws Invalid {
        String why = "calm4j returns text only";
        check(body, "logprobs", v -> v.isBoolean() ? v.asBoolean() : !(v.isIntegralNumber() && v.asInt() == 0),
                "token log-probabilities are not computed: a CALM has no softmax over tokens; leave 'logprobs' out");
        check(body, "top_logprobs", v -> !(v.isIntegralNumber() && v.asInt() == 0),
                "token log-probabilities are not computed: a CALM has no softmax over tokens");
        check(body, "logit_bias", v -> !(v.isObject() && v.isEmpty()),
                "a CALM samples K-token chunks from a continuous head, with no logits to bias");
        check(body, "echo", v -> !(v.isBoolean() && !v.asBoolean()), "'echo' is not served; " + why
                + " after the prompt, which the client already has");
        check(body, "suffix", v -> !(v.isTextual() && v.asText().isEmpty()),
                "insertion ('suffix') needs a model trained to fill in the middle");
        check(body, "best_of", v -> !(v.isIntegralNumber() && v.asInt() == 1),
                "'best_of' ranks choices by log-probability, which a CALM does not have; use 'n'");
        if (chat) {
            for (String tools : List.of("tools", "functions")) {
                check(body, tools, v -> !(v.isArray() && v.isEmpty()), "tool calls are not served: " + why);
            }
            check(body, "tool_choice", v -> !(v.isTextual() && v.asText().equals("none")),
                    "tool calls are not served: " + why);
            check(body, "response_format", v -> !v.path("type").asText().equals("text"),
                    "structured output is not served: " + why);
        }
    }

    private interface Test {
        boolean refused(JsonNode v);
    }

    private static void check(JsonNode body, String field, Test test, String why) throws Invalid {
        JsonNode v = body.get(field);
        if (v != null && !v.isNull() && test.refused(v)) throw new Invalid("'" + field + "' is not supported: " + why);
    }

    private static List<Prompt> prompts(JsonNode p) throws Invalid {
        String shape = "'prompt' must be a string, a list of strings, a list of token ids, or a list of lists of "
                + "token ids";
        if (p == null || p.isNull()) throw new Invalid("'prompt' is required (" + shape.substring(9) + ")");
        List<Prompt> out = new ArrayList<>();
        if (p.isTextual()) {
            out.add(new Prompt(p.asText(), null));
        } else if (p.isArray() && !p.isEmpty() && p.get(0).isIntegralNumber()) {
            out.add(new Prompt(null, ids(p, shape)));
        } else if (p.isArray() && !p.isEmpty()) {
            for (JsonNode e : p) {
                if (e.isTextual()) out.add(new Prompt(e.asText(), null));
                else if (e.isArray()) out.add(new Prompt(null, ids(e, shape)));
                else throw new Invalid(shape);
            }
        } else {
            throw new Invalid(shape);
        }
        if (out.size() > MAX_PROMPTS) {
            throw new Invalid("at most " + MAX_PROMPTS + " prompts per request, got " + out.size());
        }
        return out;
    }

    private static int[] ids(JsonNode array, String shape) throws Invalid {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode e = array.get(i);
            if (!e.isIntegralNumber() || !e.canConvertToInt()) throw new Invalid(shape);
            ids[i] = e.asInt();
        }
        return ids;
    }

    private static List<ChatTemplate.Message> messages(JsonNode m) throws Invalid {
        if (m == null || !m.isArray() || m.isEmpty()) throw new Invalid("'messages' is required: a non-empty list");
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (int i = 0; i < m.size(); i++) {
            JsonNode msg = m.get(i);
            String role = msg.path("role").asText(null);
            if (role != null && role.equals("developer")) role = "system"; // OpenAI's newer name for it
            if (role == null || !ChatTemplate.Message.ROLES.contains(role)) {
                throw new Invalid("messages[" + i + "].role must be system, user or assistant (got "
                        + msg.path("role") + "): calm4j serves no tools or functions");
            }
            out.add(new ChatTemplate.Message(role, content(msg.get("content"), i)));
        }
        return out;
    }

    /** Content as a string, or as a list of text parts (which are joined). */
    private static String content(JsonNode c, int i) throws Invalid {
        if (c == null || c.isNull()) throw new Invalid("messages[" + i + "].content is required");
        if (c.isTextual()) return c.asText();
        if (!c.isArray()) throw new Invalid("messages[" + i + "].content must be a string or a list of text parts");
        StringBuilder b = new StringBuilder();
        for (JsonNode part : c) {
            if (!part.path("type").asText().equals("text") || !part.path("text").isTextual()) {
                throw new Invalid("messages[" + i + "].content has a part of type " + part.path("type")
                        + ": calm4j models read text only (parts of type \"text\")");
            }
            b.append(part.get("text").asText());
        }
        return b.toString();
    }

    private static List<String> stops(JsonNode stop) throws Invalid {
        if (stop == null || stop.isNull()) return List.of();
        List<String> out = new ArrayList<>();
        if (stop.isTextual()) {
            out.add(stop.asText());
        } else if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual()) throw new Invalid("'stop' must be a string or a list of strings");
                out.add(s.asText());
            }
        } else {
            throw new Invalid("'stop' must be a string or a list of strings");
        }
        if (out.size() > StopStrings.MAX) {
            throw new Invalid("'stop' takes at most " + StopStrings.MAX + " strings, got " + out.size());
        }
        if (out.stream().anyMatch(String::isEmpty)) throw new Invalid("a 'stop' string must not be empty");
        return out;
    }

    private static Integer optionalInt(JsonNode body, String field) throws Invalid {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw new Invalid("'" + field + "' must be an integer");
        return v.asInt();
    }

    private static double optionalNumber(JsonNode body, String field, double fallback) throws Invalid {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return fallback;
        if (!v.isNumber()) throw new Invalid("'" + field + "' must be a number");
        return v.asDouble();
    }

    private static String optionalText(JsonNode body, String field) throws Invalid {
        JsonNode v = body.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isTextual()) throw new Invalid("'" + field + "' must be a string");
        return v.asText();
    }
}
