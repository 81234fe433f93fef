package calm4j.langchain4j;

import calm4j.api.TextModel;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;

/**
 * A calm4j model as a langchain4j {@link ChatModel}, in-process (no HTTP). Requests carry temperature, top_p, top_k,
 * max output tokens and stop sequences; tools are refused. Calls are served one at a time. langchain4j-core is an
 * optional dependency of calm4j: add it to use this class ({@link CalmStreamingChatModel} streams).
 */
public final class CalmChatModel implements ChatModel {
    private final CalmChat chat;

    /** {@code defaults} holds what a request leaves out (max tokens, sampling, seed, pool). */
    public CalmChatModel(TextModel model, TextModel.Options defaults) {
        this.chat = new CalmChat(model, defaults);
    }

    @Override
    public ChatResponse doChat(ChatRequest request) {
        return chat.reply(request, null);
    }
}
