package calm4j.serve;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL;

/**
 * The bodies calm4j's API answers with, in OpenAI's wire format (snake_case, compact: a server-sent event's data must
 * be one line), written by this class's own mapper rather than the config files' one. calm4j's additions are marked.
 */
final class OpenAiWire {
    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

    private OpenAiWire() {}

    /** A request body: one JSON document, and anything after it is an error, not ignored. */
    static JsonNode read(byte[] body) throws IOException {
        return JSON.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).readTree(body);
    }

    /** {@code body} as one line of UTF-8 JSON. */
    static byte[] bytes(Object body) {
        try {
            return JSON.writeValueAsBytes(body);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e); // records of strings and numbers always serialize
        }
    }

    /** One server-sent event. */
    static byte[] event(Object body) {
        try {
            return ("data: " + JSON.writeValueAsString(body) + "\n\n").getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    record Usage(int promptTokens, int completionTokens, int totalTokens) {
        static Usage of(int prompt, int completion) {
            return new Usage(prompt, completion, prompt + completion);
        }
    }

    /** A chat message, or a streamed chat delta (either part may be left out). */
    @JsonInclude(NON_NULL)
    record Message(String role, String content) {}

    /** One choice: {@code text} for a completion, {@code message} for a chat reply, {@code delta} for a chat chunk. */
    record Choice(int index, @JsonInclude(NON_NULL) String text, @JsonInclude(NON_NULL) Message message,
                  @JsonInclude(NON_NULL) Message delta, Object logprobs, String finishReason) {
        static Choice text(int index, String text, String finishReason) {
            return new Choice(index, text, null, null, null, finishReason);
        }

        static Choice message(int index, String content, String finishReason) {
            return new Choice(index, null, new Message("assistant", content), null, null, finishReason);
        }

        static Choice delta(int index, Message delta, String finishReason) {
            return new Choice(index, null, null, delta, null, finishReason);
        }
    }

    /**
     * A completion, a chat completion, or one streamed chunk of either. calm4j adds {@code step_tokens} to a
     * chunk (the tokens of the generation step it carries: K for a CALM) and {@code error} to a chunk that ends a
     * choice by timeout or error.
     */
    record Completion(String id, String object, long created, String model, List<Choice> choices,
                      @JsonInclude(NON_NULL) Usage usage, @JsonInclude(NON_NULL) Integer stepTokens,
                      @JsonInclude(NON_NULL) Error error) {}

    @JsonInclude(NON_NULL)
    record Error(String message, String type, String param, String code) {}

    record ErrorBody(Error error) {
        static ErrorBody of(String type, String message) {
            return new ErrorBody(new Error(message, type, null, null));
        }

        /** With OpenAI's machine-readable {@code code} (such as {@code model_not_found}) and the {@code param}. */
        static ErrorBody of(String type, String message, String code, String param) {
            return new ErrorBody(new Error(message, type, param, code));
        }
    }

    /** OpenAI's model object; calm4j adds what a request can ask of the model. */
    record ModelCard(String id, String object, long created, String ownedBy, String kind, int tokensPerStep,
                     int maxPromptTokens, int maxTokens, String chatTemplate) {}

    record ModelList(String object, List<ModelCard> data) {}

    /** {@code GET /health}: calm4j's own. */
    record Health(String status, String model, String kind, int running, int queued, long failedSteps,
                  long kvCacheBytes) {}
}
