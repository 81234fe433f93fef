package calm4j.chat;

import calm4j.engine.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Messages become a prompt: the plain template for base models, or a Hugging Face Jinja chat_template. */
class ChatTemplateTest {
    static final List<ChatTemplate.Message> CHAT = List.of(new ChatTemplate.Message("system", "Be brief."),
            new ChatTemplate.Message("user", "Hello?"), new ChatTemplate.Message("assistant", "Hi."),
            new ChatTemplate.Message("user", "  What now?  "));

    /** ChatML, as Qwen's and many fine-tunes' tokenizer_config.json carry it. */
    static final String CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
            + "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** Mistral's style: roles must alternate, else the template raises. */
    static final String ALTERNATING = "{{ bos_token }}{% for message in messages %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] | trim + ' [/INST]' }}"
            + "{% else %}{{ message['content'] | trim + eos_token }}{% endif %}{% endfor %}";

    @Test
    void thePlainTemplateWritesOneRoleLinePerMessageAndEndsWithTheAssistantsTurn() {
        assertEquals("System: Be brief.\nUser: Hello?\nAssistant: Hi.\nUser: What now?\nAssistant:",
                ChatTemplate.PLAIN.render(CHAT));
        assertTrue(ChatTemplate.PLAIN.stops().contains("\nUser:"), "generation ends at the next role line");
    }

    @Test
    void aJinjaTemplateRendersTheMessagesWithTheGenerationPrompt() {
        ChatTemplate t = ChatTemplate.jinja("chatml", CHATML, "", "<|im_end|>");
        assertEquals("<|im_start|>user\nHello?<|im_end|>\n<|im_start|>assistant\n",
                t.render(List.of(new ChatTemplate.Message("user", "Hello?"))));
        assertEquals(List.of("<|im_end|>"), t.stops(), "the end-of-turn token ends the reply");
    }

    @Test
    void aTemplateThatRaisesRefusesTheConversationWithItsOwnMessage() {
        ChatTemplate t = ChatTemplate.jinja("alternating", ALTERNATING, "<s>", "</s>");
        assertEquals("<s>[INST] Hello? [/INST]", t.render(List.of(new ChatTemplate.Message("user", " Hello? "))));
        UserError e = assertThrows(UserError.class, () -> t.render(List.of(new ChatTemplate.Message("assistant", "x"))));
        assertTrue(e.getMessage().contains("must alternate"), e.getMessage());
    }

    @Test
    void aRunsTokenizerConfigSuppliesTheTemplateAndItsSpecialTokens(@TempDir Path dir) throws Exception {
        assertSame(ChatTemplate.PLAIN, ChatTemplate.of(dir), "no tokenizer_config.json: the plain template");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"eos_token\": "
                + "{\"content\": \"</s>\"}, \"chat_template\": " + calm4j.engine.Configs.JSON.writeValueAsString(ALTERNATING)
                + "}");
        ChatTemplate t = ChatTemplate.of(dir);
        assertEquals("<s>[INST] a [/INST]b</s>[INST] c [/INST]", t.render(List.of(new ChatTemplate.Message("user", "a"),
                new ChatTemplate.Message("assistant", "b"), new ChatTemplate.Message("user", "c"))));
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
        assertSame(ChatTemplate.PLAIN, ChatTemplate.of(dir), "a config without chat_template: the plain template");
    }

    @Test
    void aTemplateFileIsReadAndOneThatCannotRenderIsRefusedWhenLoaded(@TempDir Path dir) throws Exception {
        Path good = dir.resolve("chatml.jinja");
        Files.writeString(good, CHATML);
        assertTrue(ChatTemplate.file(good).render(List.of(new ChatTemplate.Message("user", "x")))
                .endsWith("<|im_start|>assistant\n"));
        Path bad = dir.resolve("bad.jinja");
        Files.writeString(bad, "{% for message in messages %}{{ message['content'] }");
        assertThrows(UserError.class, () -> ChatTemplate.file(bad));
        assertThrows(UserError.class, () -> ChatTemplate.file(dir.resolve("missing.jinja")));
    }

    @Test
    void rolesOtherThanSystemUserAndAssistantAreRefused() {
        UserError e = assertThrows(UserError.class, () -> new ChatTemplate.Message("tool", "42"));
        assertTrue(e.getMessage().contains("system, user or assistant"), e.getMessage());
        assertThrows(UserError.class, () -> ChatTemplate.PLAIN.render(List.of()));
    }
}
