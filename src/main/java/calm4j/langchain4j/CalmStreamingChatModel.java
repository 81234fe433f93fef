package calm4j.langchain4j;

import calm4j.api.TextModel;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;

/**
 * A calm4j model as a langchain4j {@link StreamingChatModel}, in-process: the reply's text is handed on as each
 * K-token chunk is decoded (held back where it may begin a stop sequence). See {@link CalmChatModel}.
 */
public final class CalmStreamingChatModel implements StreamingChatModel {
    private final CalmChat chat;

    /** {@code defaults} holds what a request leaves out (max tokens, sampling, seed, pool). */
    public CalmStreamingChatModel(TextModel model, TextModel.Options defaults) {
        this.chat = new CalmChat(model, defaults);
    }

    @Override
    public void doChat(ChatRequest request, StreamingChatResponseHandler handler) {
        ChatResponse response;
        try {
            response = chat.reply(request, handler::onPartialResponse);
        } catch (RuntimeException e) {
            handler.onError(e);
            return;
        }
        handler.onCompleteResponse(response);
    }
}
