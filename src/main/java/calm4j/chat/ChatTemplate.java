package calm4j.chat;

import calm4j.engine.Configs;
import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns a conversation into the prompt text a model continues, as Hugging Face's {@code apply_chat_template} does
 * with {@code add_generation_prompt=True}. Either a Jinja {@code chat_template} (a run's
 * {@code tokenizer_config.json}, or a file), rendered by Jinjava, or, for base models that were never taught a chat
 * format, {@link #PLAIN}: one line per message, {@code User: ...} / {@code Assistant: ...}, ending in
 * {@code Assistant:}, with the next role line as a stop string.
 */
public final class ChatTemplate {
    /** One message of a conversation. */
    public record Message(String role, String content) {
        public static final Set<String> ROLES = Set.of("system", "user", "assistant");

        public Message {
            if (role == null || !ROLES.contains(role)) {
                throw new UserError("a message's role must be system, user or assistant, got "
                        + (role == null ? "none" : "'" + role + "'"));
            }
            if (content == null) throw new UserError("a " + role + " message needs text content");
        }
    }

    /** The plain template for base models. */
    public static final ChatTemplate PLAIN = new ChatTemplate("plain", null, "", "",
            List.of("\nUser:", "\nSystem:", "\nAssistant:"));

    private final String name;
    private final String jinja; // null: the plain template
    private final String bos, eos;
    private final List<String> stops;
    private final JinjaSandbox sandbox;

    private ChatTemplate(String name, String jinja, String bos, String eos, List<String> stops) {
        this.name = name;
        this.sandbox = new JinjaSandbox(name);
        this.jinja = jinja;
        this.bos = bos;
        this.eos = eos;
        this.stops = List.copyOf(stops);
    }

    /** A Jinja chat template; {@code bos} and {@code eos} are the texts of the tokenizer's special tokens. */
    public static ChatTemplate jinja(String name, String source, String bos, String eos) {
        ChatTemplate t = new ChatTemplate(name, source, bos == null ? "" : bos, eos == null ? "" : eos,
                eos == null || eos.isEmpty() ? List.of() : List.of(eos));
        t.render(List.of(new Message("user", "hello"))); // a template that cannot render fails now, not per request
        return t;
    }

    /** Where a Hugging Face model folder (and a calm4j run) keeps its chat template and special tokens. */
    public static final String TOKENIZER_CONFIG = "tokenizer_config.json";

    /** The largest chat template file read (published templates are a few KB; the largest known about 20 KB). */
    static final int MAX_TEMPLATE_BYTES = 1 << 20;
    /** The largest tokenizer_config.json read for its template (Llama-3's, with its added tokens, is 50 KB). */
    static final int MAX_TOKENIZER_CONFIG_BYTES = 64 << 20;

    /** The Jinja template in {@code file} (as {@code vllm serve --chat-template} takes it). */
    public static ChatTemplate file(Path file) {
        return jinja(file.getFileName().toString(), new String(readBounded(file, MAX_TEMPLATE_BYTES, "chat template"),
                StandardCharsets.UTF_8), "", "");
    }

    /** A regular file's bytes, refused past {@code max} bytes without reading more than that (/dev/zero ends). */
    private static byte[] readBounded(Path file, int max, String what) {
        if (!Files.isRegularFile(file)) {
            throw new UserError("the " + what + " " + file + " is not a regular file: give a file");
        }
        try (var in = Files.newInputStream(file)) {
            byte[] bytes = in.readNBytes(max + 1);
            if (bytes.length > max) {
                throw new UserError("the " + what + " " + file + " is larger than " + max + " bytes: that is not a "
                        + what + " (give the right file)");
            }
            return bytes;
        } catch (IOException e) {
            throw new UserError("cannot read the " + what + " " + file + ": " + e.getMessage());
        }
    }

    /**
     * The template of the run in {@code dir}: {@code chat_template} of its {@code tokenizer_config.json} when it has
     * one (a string, or Hugging Face's list of named templates, of which "default" is taken), else {@link #PLAIN}.
     */
    public static ChatTemplate of(Path dir) {
        Path config = dir.resolve(TOKENIZER_CONFIG);
        if (!Files.isRegularFile(config)) return PLAIN;
        JsonNode root;
        try {
            root = Configs.JSON.readTree(readBounded(config, MAX_TOKENIZER_CONFIG_BYTES, "tokenizer config"));
        } catch (IOException e) {
            throw new UserError(config + " is not valid JSON (" + e.getMessage() + "): fix or remove it");
        }
        JsonNode t = root.path("chat_template");
        String source = null;
        if (t.isTextual()) {
            source = t.asText();
        } else if (t.isArray()) {
            for (JsonNode named : t) if (named.path("name").asText().equals("default")) source = named.path("template").asText(null);
        }
        if (source == null) return PLAIN;
        return jinja(config.toString(), source, tokenText(root.path("bos_token")), tokenText(root.path("eos_token")));
    }

    /** A special token is given as its text or as an object with a "content" field. */
    private static String tokenText(JsonNode token) {
        return token.isTextual() ? token.asText() : token.path("content").asText("");
    }

    public String name() {
        return name;
    }

    /** Strings that end the assistant's turn in this format (the next role line, or the end-of-turn token). */
    public List<String> stops() {
        return stops;
    }

    /** The prompt for the assistant's next message. */
    public String render(List<Message> messages) {
        if (messages.isEmpty()) throw new UserError("a chat needs at least one message");
        if (jinja == null) {
            StringBuilder b = new StringBuilder();
            for (Message m : messages) {
                b.append(Character.toUpperCase(m.role().charAt(0))).append(m.role().substring(1)).append(": ")
                        .append(m.content().strip()).append('\n');
            }
            return b.append("Assistant:").toString();
        }
        List<Map<String, Object>> list = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            list.add(map);
        }
        Map<String, Object> context = new HashMap<>();
        context.put("messages", list);
        context.put("add_generation_prompt", true);
        context.put("bos_token", bos);
        context.put("eos_token", eos);
        return sandbox.render(jinja, context);
    }

    /** {@code raise_exception(message)}, which Hugging Face templates call to refuse a conversation. */
    public static String raiseException(String message) {
        throw new UserError("the chat template refused the conversation: " + message);
    }
}
