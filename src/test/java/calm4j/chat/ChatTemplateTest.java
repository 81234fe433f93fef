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

    /** A hostile template must fail as a UserError naming the problem, within the render deadline and then some. */
    static UserError refusedQuickly(Runnable render) {
        long t0 = System.nanoTime();
        UserError e = assertThrows(UserError.class, render::run);
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertTrue(seconds < JinjaSandbox.DEADLINE_MILLIS / 1000.0 + 3, "refused after " + seconds + " s");
        return e;
    }

    static final List<ChatTemplate.Message> TWO = List.of(new ChatTemplate.Message("user", "a"),
            new ChatTemplate.Message("assistant", "b"));

    @Test
    void aTemplateThatLoopsForeverIsStoppedAtItsDeadlineWhenLoadedAndWhenAChatTriggersIt() {
        String loops = "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}"
                + "{% endfor %}{% endfor %}{% endfor %}x";
        UserError atStart = refusedQuickly(() -> ChatTemplate.jinja("loops", loops, "", ""));
        assertTrue(atStart.getMessage().contains("loops"), atStart.getMessage());
        // Guarded so that loading (one message) passes: a two-message chat then meets the loops, and its deadline.
        ChatTemplate guarded = ChatTemplate.jinja("guarded", "{% if messages | length == 2 %}" + loops
                + "{% endif %}ok", "", "");
        refusedQuickly(() -> guarded.render(TWO));
        assertEquals("ok", guarded.render(List.of(new ChatTemplate.Message("user", "a"))));
    }

    @Test
    void aTemplateCannotBuildUnboundedStringsOrCallJavaMethodsThatAllocateWithoutBound() {
        UserError repeat = refusedQuickly(() -> ChatTemplate.jinja("repeat", "{{ 'x'.repeat(1000000000) }}", "", ""));
        assertTrue(repeat.getMessage().contains("repeat"), repeat.getMessage());
        refusedQuickly(() -> ChatTemplate.jinja("doubling", "{% set s = 'x' %}{% for i in range(60) %}"
                + "{% set s = s ~ s %}{% endfor %}{{ s }}", "", ""));
        for (String filter : new String[] {"{{ 'x' | center(1000000000) }}", "{{ '%1000000000s' | format('x') }}",
                "{{ '{{ 1 }}' | render }}"}) {
            UserError e = refusedQuickly(() -> ChatTemplate.jinja("filters", filter, "", ""));
            assertTrue(e.getMessage().contains("disabled"), filter + ": " + e.getMessage());
        }
        refusedQuickly(() -> ChatTemplate.jinja("output", "{% for i in range(10000) %}{% for j in range(10000) %}"
                + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}", "", ""));
        // What real templates call still works.
        ChatTemplate fine = ChatTemplate.jinja("fine", "{% for m in messages %}{{ m['content'].strip() }}"
                + "{{ m['content'].split(' ') | length }}{% endfor %}", "", "");
        assertEquals("hi there3", fine.render(List.of(new ChatTemplate.Message("user", " hi there "))));
    }

    @Test
    void aTemplateCannotReadFilesOrClasspathResources() {
        for (String tag : new String[] {"{% include 'META-INF/MANIFEST.MF' %}", "{% import 'x.j2' as m %}",
                "{% from 'x.j2' import m %}", "{% extends 'x.j2' %}"}) {
            UserError e = refusedQuickly(() -> ChatTemplate.jinja("files", tag + "x", "", ""));
            assertTrue(e.getMessage().contains("disabled"), tag + ": " + e.getMessage());
        }
    }

    @Test
    void aTemplateFileThatNeverEndsOrIsNoFileIsRefusedWithoutReadingItAll(@TempDir Path dir) throws Exception {
        UserError zero = assertThrows(UserError.class, () -> ChatTemplate.file(Path.of("/dev/zero")));
        assertTrue(zero.getMessage().contains("not a regular file"), zero.getMessage());
        Path big = dir.resolve("big.jinja");
        Files.write(big, new byte[ChatTemplate.MAX_TEMPLATE_BYTES + 1]);
        UserError tooBig = assertThrows(UserError.class, () -> ChatTemplate.file(big));
        assertTrue(tooBig.getMessage().contains("larger than"), tooBig.getMessage());
    }

    @Test
    void manyConcurrentChatsThroughAHeavyTemplateAreEachRefusedAndNoneTakesTheProcessDown() throws Exception {
        // Each render builds about 3 MB and then meets the output limit; twelve at once stay bounded.
        ChatTemplate heavy = ChatTemplate.jinja("heavy", "{% if messages | length == 2 %}{% for i in range(10000) %}"
                + "{% for j in range(1000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}{% endfor %}{% endif %}ok",
                "", "");
        var pool = java.util.concurrent.Executors.newFixedThreadPool(12);
        try {
            List<java.util.concurrent.Future<String>> all = new java.util.ArrayList<>();
            for (int i = 0; i < 12; i++) all.add(pool.submit(() -> heavy.render(TWO)));
            for (var f : all) {
                var e = assertThrows(java.util.concurrent.ExecutionException.class, () -> f.get(60,
                        java.util.concurrent.TimeUnit.SECONDS));
                assertInstanceOf(UserError.class, e.getCause(), String.valueOf(e.getCause()));
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
