package calm4j.langchain4j;

import calm4j.api.TextModel;
import calm4j.chat.ChatTemplate;
import calm4j.engine.UserError;
import calm4j.generate.Finish;
import calm4j.generate.Sampling;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.InternalServerException;
import dev.langchain4j.exception.InvalidRequestException;
import dev.langchain4j.exception.UnsupportedFeatureException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** What both langchain4j adapters share: a langchain4j request in, one calm4j chat completion out. */
final class CalmChat {
    private final TextModel model;
    private final TextModel.Options defaults;

    CalmChat(TextModel model, TextModel.Options defaults) {
        this.model = model;
        this.defaults = defaults;
    }

    /**
     * Calls are served one at a time: a TextModel holds one generation session. Failures arrive as langchain4j's
     * own exception types, as its providers throw them: a request calm4j cannot serve (a temperature out of range,
     * a prompt longer than the context) is an {@link InvalidRequestException}, tools and non-text content an
     * {@link UnsupportedFeatureException}, a failure of the model itself an {@link InternalServerException}.
     */
    synchronized ChatResponse reply(ChatRequest request, Consumer<String> onText) {
        try {
            return replyOrThrow(request, onText);
        } catch (UnsupportedFeatureException e) {
            throw e;
        } catch (UserError e) {
            throw new InvalidRequestException(e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new InternalServerException("the calm4j model failed: " + calm4j.engine.LibtorchErrors.firstLine(
                    String.valueOf(e.getMessage())), e);
        }
    }

    private ChatResponse replyOrThrow(ChatRequest request, Consumer<String> onText) {
        if (request.toolSpecifications() != null && !request.toolSpecifications().isEmpty()) {
            throw new UnsupportedFeatureException("calm4j models do not call tools: leave the tool specifications "
                    + "out");
        }
        TextModel.Options o = defaults;
        Sampling s = o.sampling();
        s = new Sampling(request.temperature() != null ? request.temperature() : s.temperature(),
                request.topP() != null ? request.topP() : s.topP(), request.topK() != null ? request.topK() : s.topK(),
                request.presencePenalty() != null ? request.presencePenalty() : s.presencePenalty(),
                request.frequencyPenalty() != null ? request.frequencyPenalty() : s.frequencyPenalty());
        o = o.withSampling(s);
        if (request.maxOutputTokens() != null) o = o.withMaxTokens(request.maxOutputTokens());
        if (request.stopSequences() != null && !request.stopSequences().isEmpty()) o = o.withStop(request.stopSequences());
        TextModel.Completion c = model.chat(messages(request.messages()), o, onText);
        return ChatResponse.builder()
                .aiMessage(AiMessage.from(c.text()))
                .tokenUsage(new TokenUsage(c.promptTokens(), c.completionTokens()))
                .finishReason(c.finish() == Finish.LENGTH || c.finish() == Finish.CONTEXT ? FinishReason.LENGTH
                        : FinishReason.STOP)
                .build();
    }

    private static List<ChatTemplate.Message> messages(List<ChatMessage> in) {
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (ChatMessage m : in) {
            if (m instanceof SystemMessage s) {
                out.add(new ChatTemplate.Message("system", s.text()));
            } else if (m instanceof UserMessage u && u.hasSingleText()) {
                out.add(new ChatTemplate.Message("user", u.singleText()));
            } else if (m instanceof AiMessage a && a.text() != null && !a.hasToolExecutionRequests()) {
                out.add(new ChatTemplate.Message("assistant", a.text()));
            } else {
                throw new UnsupportedFeatureException("calm4j chats in text only: a " + m.type() + " message with "
                        + "other content (images, tool calls or results) cannot be read");
            }
        }
        return out;
    }
}
