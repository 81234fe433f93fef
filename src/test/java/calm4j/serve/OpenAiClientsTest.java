package calm4j.serve;

import calm4j.api.TextModel;
import calm4j.langchain4j.CalmChatModel;
import calm4j.langchain4j.CalmStreamingChatModel;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.ChatModel;
import dev.langchain4j.model.chat.StreamingChatModel;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.chat.response.StreamingChatResponseHandler;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiLanguageModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A real OpenAI client, langchain4j's OpenAI module with the settings apps use (temperature 0.7, stop sequences),
 * against {@code calm serve}; and calm4j as a langchain4j model in-process, with no server.
 */
class OpenAiClientsTest {
    @TempDir
    static Path dir;
    static ServedRuns runs;
    static CompletionServer server;

    @BeforeAll
    static void start() throws Exception {
        runs = ServedRuns.train(dir);
        // Served with a template file, as `calm serve --chat-template FILE` takes it (the plain default is
        // ChatCompletionsTest's): the messages' text, then one of the corpus's words to continue.
        Path template = dir.resolve("words.jinja");
        Files.writeString(template, "{% for message in messages %}{{ message['content'] }}\n{% endfor %}the");
        server = CompletionServer.start(runs.calm, ServedRuns.options(8, 16, 60), template);
    }

    @AfterAll
    static void stop() {
        if (server != null) server.close();
    }

    static final List<dev.langchain4j.data.message.ChatMessage> MESSAGES = List.of(
            SystemMessage.from("The people of this nation"), UserMessage.from("Our union is strong and"));

    @Test
    void langchain4jsOpenAiChatModelGetsAnAnswerAtTemperature07WithStopSequences() {
        ChatModel model = OpenAiChatModel.builder().baseUrl(server.url() + "/v1").apiKey("unused")
                .modelName(server.modelId()).temperature(0.7).maxTokens(16).seed(11).stop(List.of("\n\n"))
                .timeout(Duration.ofSeconds(60)).build();
        ChatResponse r = model.chat(MESSAGES);
        assertFalse(r.aiMessage().text().isBlank(), "a reply with words");
        assertFalse(r.aiMessage().text().contains("\n\n"), "the stop sequence is not in the reply");
        assertTrue(r.tokenUsage().inputTokenCount() > 0);
        assertTrue(r.tokenUsage().outputTokenCount() > 0 && r.tokenUsage().outputTokenCount() <= 16,
                r.tokenUsage().toString());
        assertTrue(List.of(FinishReason.STOP, FinishReason.LENGTH).contains(r.finishReason()));
        assertEquals(r.aiMessage().text(), model.chat(MESSAGES).aiMessage().text(), "the same seed, the same reply");
    }

    @Test
    void langchain4jsStreamingChatModelReceivesPartialRepliesThatMakeTheWhole() throws Exception {
        StreamingChatModel model = OpenAiStreamingChatModel.builder().baseUrl(server.url() + "/v1").apiKey("unused")
                .modelName(server.modelId()).temperature(0.7).maxTokens(16).seed(11).stop(List.of("\n\n"))
                .timeout(Duration.ofSeconds(60)).build();
        StringBuilder partial = new StringBuilder();
        CompletableFuture<ChatResponse> done = new CompletableFuture<>();
        model.chat(MESSAGES, new StreamingChatResponseHandler() {
            @Override
            public void onPartialResponse(String text) {
                partial.append(text);
            }

            @Override
            public void onCompleteResponse(ChatResponse response) {
                done.complete(response);
            }

            @Override
            public void onError(Throwable error) {
                done.completeExceptionally(error);
            }
        });
        ChatResponse r = done.get(60, TimeUnit.SECONDS);
        assertEquals(r.aiMessage().text(), partial.toString());
        ChatModel blocking = OpenAiChatModel.builder().baseUrl(server.url() + "/v1").apiKey("unused")
                .modelName(server.modelId()).temperature(0.7).maxTokens(16).seed(11).stop(List.of("\n\n")).build();
        assertEquals(blocking.chat(MESSAGES).aiMessage().text(), partial.toString(),
                "streamed and blocking replies agree for one seed");
        assertNotNull(r.tokenUsage(), "usage arrives in the stream (stream_options.include_usage)");
    }

    @Test
    void langchain4jsOpenAiLanguageModelCompletesAPrompt() {
        OpenAiLanguageModel model = OpenAiLanguageModel.builder().baseUrl(server.url() + "/v1").apiKey("unused")
                .modelName(server.modelId()).temperature(0.7).timeout(Duration.ofSeconds(60)).build();
        Response<String> r = model.generate("The state of the union");
        assertNotNull(r.content());
        assertTrue(r.tokenUsage().outputTokenCount() > 0);
    }

    @Test
    void calm4jIsALangchain4jModelInProcessAndStreamsTheSameReply() throws Exception {
        try (TextModel text = TextModel.load(runs.calm, calm4j.chat.ChatTemplate.file(dir.resolve("words.jinja")))) {
            TextModel.Options defaults = TextModel.Options.DEFAULT.withMaxTokens(16).withSeed(5);
            ChatRequest request = ChatRequest.builder().messages(MESSAGES).temperature(0.7).build();
            ChatResponse whole = new CalmChatModel(text, defaults).chat(request);
            assertFalse(whole.aiMessage().text().isBlank());
            assertTrue(whole.tokenUsage().outputTokenCount() > 0 && whole.tokenUsage().outputTokenCount() <= 16);
            StringBuilder partial = new StringBuilder();
            CompletableFuture<ChatResponse> done = new CompletableFuture<>();
            new CalmStreamingChatModel(text, defaults).chat(request, new StreamingChatResponseHandler() {
                @Override
                public void onPartialResponse(String t) {
                    partial.append(t);
                }

                @Override
                public void onCompleteResponse(ChatResponse response) {
                    done.complete(response);
                }

                @Override
                public void onError(Throwable error) {
                    done.completeExceptionally(error);
                }
            });
            assertEquals(whole.aiMessage().text(), done.get(60, TimeUnit.SECONDS).aiMessage().text());
            assertEquals(whole.aiMessage().text(), partial.toString());
            ChatRequest tools = ChatRequest.builder().messages(MESSAGES).toolSpecifications(
                    dev.langchain4j.agent.tool.ToolSpecification.builder().name("f").build()).build();
            assertThrows(dev.langchain4j.exception.UnsupportedFeatureException.class,
                    () -> new CalmChatModel(text, defaults).chat(tools));
            // What a request gets wrong arrives as langchain4j's own type, as its providers throw it.
            ChatRequest hot = ChatRequest.builder().messages(MESSAGES).temperature(5.0).build();
            var e = assertThrows(dev.langchain4j.exception.InvalidRequestException.class,
                    () -> new CalmChatModel(text, defaults).chat(hot));
            assertTrue(e.getMessage().contains("temperature"), e.getMessage());
            CompletableFuture<Throwable> failed = new CompletableFuture<>();
            new CalmStreamingChatModel(text, defaults).chat(hot, new StreamingChatResponseHandler() {
                @Override
                public void onCompleteResponse(ChatResponse response) {
                    failed.complete(null);
                }

                @Override
                public void onError(Throwable error) {
                    failed.complete(error);
                }
            });
            assertInstanceOf(dev.langchain4j.exception.InvalidRequestException.class, failed.get(60,
                    TimeUnit.SECONDS));
        }
    }
}
