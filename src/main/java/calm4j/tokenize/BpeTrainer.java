package calm4j.tokenize;

import calm4j.engine.UserError;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Trains a byte-level BPE (the GPT-2 scheme) and writes it as a standard Hugging Face {@code tokenizer.json}.
 *
 * <p>The tokenizers library loads and encodes but cannot train, so training is done here: pre-tokenize with GPT-2's
 * pattern, count the distinct pieces, then repeatedly merge the most frequent adjacent symbol pair (ties broken by
 * the pair's text, so the result is deterministic). The alphabet is all 256 bytes, so every text is encodable and
 * decode(encode(x)) == x. Ids 0, 1, 2 are EOS, PAD and MASK.
 */
public final class BpeTrainer {
    public static final String EOS = "<|endoftext|>";
    public static final String PAD = "<|pad|>";
    public static final String MASK = "<|mask|>";
    static final List<String> SPECIALS = List.of(EOS, PAD, MASK);

    /** GPT-2's pre-tokenization pattern, the one the ByteLevel pre-tokenizer applies at encode time. */
    static final Pattern PRE_TOKENIZE = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

    private final Map<String, Long> pieceCounts = new HashMap<>();

    /** Adds one document's pieces to the counts. */
    public void add(String text) {
        Matcher m = PRE_TOKENIZE.matcher(text);
        while (m.find()) pieceCounts.merge(ByteLevel.encode(m.group()), 1L, Long::sum);
    }

    /** The result: symbols in id order and merges in rank order. */
    public record Bpe(List<String> vocab, List<String[]> merges) {}

    public Bpe train(int vocabSize) {
        int base = SPECIALS.size() + 256;
        if (vocabSize < base) {
            throw UserError.badValue("vocab_size", vocabSize + " is too small: byte-level BPE needs at least " + base
                    + " (256 bytes and " + SPECIALS.size() + " special tokens)");
        }
        if (pieceCounts.isEmpty()) throw new UserError("the tokenizer corpus is empty: no text to learn merges from");

        List<String> symbols = new ArrayList<>(SPECIALS);
        Map<String, Integer> idOf = new HashMap<>();
        for (int b = 0; b < 256; b++) symbols.add(String.valueOf(ByteLevel.charOf(b)));
        for (int i = 0; i < symbols.size(); i++) idOf.put(symbols.get(i), i);

        int n = pieceCounts.size();
        int[][] words = new int[n][];
        long[] freq = new long[n];
        int w = 0;
        for (var e : pieceCounts.entrySet()) {
            String piece = e.getKey();
            int[] syms = new int[piece.length()];
            for (int i = 0; i < syms.length; i++) syms[i] = idOf.get(String.valueOf(piece.charAt(i)));
            words[w] = syms;
            freq[w++] = e.getValue();
        }

        Map<Long, Long> pairCount = new HashMap<>();
        Map<Long, Set<Integer>> pairWords = new HashMap<>();
        for (int i = 0; i < n; i++) countPairs(i, words[i], freq[i], +1, pairCount, pairWords);

        List<String[]> merges = new ArrayList<>();
        while (symbols.size() < vocabSize) {
            long best = -1;
            long bestCount = 0;
            for (var e : pairCount.entrySet()) {
                long c = e.getValue();
                if (c > bestCount || (c == bestCount && c > 0 && lessThan(e.getKey(), best, symbols))) {
                    best = e.getKey();
                    bestCount = c;
                }
            }
            if (bestCount <= 0) break; // every piece is a single symbol: nothing left to merge
            int a = (int) (best >>> 32), b = (int) best;
            int merged = symbols.size();
            symbols.add(symbols.get(a) + symbols.get(b));
            merges.add(new String[] {symbols.get(a), symbols.get(b)});
            for (int i : new ArrayList<>(pairWords.getOrDefault(best, Set.of()))) {
                countPairs(i, words[i], freq[i], -1, pairCount, pairWords);
                words[i] = mergeIn(words[i], a, b, merged);
                countPairs(i, words[i], freq[i], +1, pairCount, pairWords);
            }
        }
        return new Bpe(symbols, merges);
    }

    private static boolean lessThan(long pair, long other, List<String> symbols) {
        if (other < 0) return true;
        int c = symbols.get((int) (pair >>> 32)).compareTo(symbols.get((int) (other >>> 32)));
        if (c != 0) return c < 0;
        return symbols.get((int) pair).compareTo(symbols.get((int) other)) < 0;
    }

    private static void countPairs(int word, int[] syms, long f, int sign,
                                   Map<Long, Long> pairCount, Map<Long, Set<Integer>> pairWords) {
        for (int j = 0; j + 1 < syms.length; j++) {
            long key = ((long) syms[j] << 32) | (syms[j + 1] & 0xFFFFFFFFL);
            long c = pairCount.merge(key, sign * f, Long::sum);
            if (sign > 0) {
                pairWords.computeIfAbsent(key, k -> new HashSet<>()).add(word);
            } else if (c <= 0) {
                pairCount.remove(key);
                pairWords.remove(key);
            }
        }
    }

    private static int[] mergeIn(int[] syms, int a, int b, int merged) {
        int[] out = new int[syms.length];
        int k = 0;
        for (int j = 0; j < syms.length; j++) {
            if (j + 1 < syms.length && syms[j] == a && syms[j + 1] == b) {
                out[k++] = merged;
                j++;
            } else {
                out[k++] = syms[j];
            }
        }
        return Arrays.copyOf(out, k);
    }

    /** Writes {@code bpe} as a Hugging Face tokenizer.json (atomically: a temporary file renamed into place). */
    public static void write(Bpe bpe, Path out) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("version", "1.0");
        json.put("truncation", null);
        json.put("padding", null);
        List<Map<String, Object>> added = new ArrayList<>();
        for (int i = 0; i < SPECIALS.size(); i++) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("id", i);
            t.put("content", SPECIALS.get(i));
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
            added.add(t);
        }
        json.put("added_tokens", added);
        json.put("normalizer", null);
        json.put("pre_tokenizer", byteLevel(false, true));
        json.put("post_processor", byteLevel(true, false));
        json.put("decoder", byteLevel(true, true));
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("type", "BPE");
        model.put("dropout", null);
        model.put("unk_token", null);
        model.put("continuing_subword_prefix", null);
        model.put("end_of_word_suffix", null);
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int i = 0; i < bpe.vocab().size(); i++) vocab.put(bpe.vocab().get(i), i);
        model.put("vocab", vocab);
        List<String> merges = new ArrayList<>();
        for (String[] m : bpe.merges()) merges.add(m[0] + " " + m[1]); // byte-level symbols never contain a space
        model.put("merges", merges);
        json.put("model", model);
        try {
            Path abs = out.toAbsolutePath();
            if (abs.getParent() != null) Files.createDirectories(abs.getParent());
            Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
            new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT).writeValue(tmp.toFile(), json);
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UserError("could not write " + out + ": " + e.getMessage());
        }
    }

    private static Map<String, Object> byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "ByteLevel");
        m.put("add_prefix_space", addPrefixSpace);
        m.put("trim_offsets", trimOffsets);
        m.put("use_regex", true);
        return m;
    }
}
