package calm4j.chat;

import calm4j.engine.UserError;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.io.IOException;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * Renders a chat template, which may come from a downloaded model, within bounds a template cannot break: a deadline
 * on its time, limits on what it may build (output, strings, lists, maps, ranges, nesting), no file or classpath
 * access ({@code include}, {@code import}, {@code from} and {@code extends} are refused: a chat template needs none),
 * only the filters, functions and Java methods chat templates use whose results are bounded by their inputs, and at
 * most {@link #CONCURRENT} renders at once, so that hostile templates cannot take every core or the heap. A render
 * over a limit is a {@link UserError} naming it.
 */
final class JinjaSandbox {
    /** Renders allowed at once; others wait for a place until their deadline. */
    static final int CONCURRENT = 2;
    /** The longest a render may take (a real chat template renders in milliseconds). */
    static final long DEADLINE_MILLIS = 2_000;
    /** The most characters of rendered text, and of any string a template builds (far above any context). */
    static final long MAX_OUTPUT_CHARS = 4 << 20, MAX_STRING_CHARS = 4 << 20;
    static final int MAX_COLLECTION = 100_000, MAX_DEPTH = 16, RANGE_LIMIT = 10_000;
    /**
     * The Java methods a template may call on strings, lists and maps: none allocates more than its receiver and
     * arguments hold ({@code 'x'.repeat(10**9)} is refused), none has a side effect beyond the template's own values.
     */
    static final Set<String> METHODS = Set.of("strip", "trim", "stripLeading", "stripTrailing", "split",
            "startsWith", "endsWith", "toUpperCase", "toLowerCase", "contains", "length", "isEmpty", "size", "get",
            "containsKey", "keySet", "values", "entrySet", "items", "keys", "indexOf", "lastIndexOf", "substring",
            "charAt", "equals", "append", "extend", "insert", "pop", "update");
    /**
     * The filters a template may use: those chat templates use, each bounded by its input (Jinjava caps join,
     * replace and list growth at the limits above). Others are refused: center and format allocate what their
     * argument says, render re-enters the template engine.
     */
    static final Set<String> FILTERS = Set.of("abs", "attr", "bool", "capitalize", "count", "d", "default",
            "dictsort", "e", "escape", "first", "float", "groupby", "int", "join", "last", "length", "list", "lower",
            "map", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort",
            "split", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
            "wordcount");
    /** The functions a template may call ({@code raise_exception} is calm4j's, registered per render). */
    static final Set<String> FUNCTIONS = Set.of("namespace", "range", "raise_exception");
    /** Tags refused: they read other templates, from files or the classpath; a chat template needs none. */
    static final Set<String> TAGS_REFUSED = Set.of("include", "import", "from", "extends", "block");
    /** Every filter, function and tag of Jinjava's library not allowed above, by kind. */
    private static final Map<Context.Library, Set<String>> DISABLED = disabled();

    private static Map<Context.Library, Set<String>> disabled() {
        Context library = new Jinjava().getGlobalContext();
        Set<String> filters = new java.util.TreeSet<>(), functions = new java.util.TreeSet<>();
        library.getAllFilters().forEach(f -> {
            if (!FILTERS.contains(f.getName())) filters.add(f.getName());
        });
        library.getAllFunctions().forEach(f -> {
            if (!FUNCTIONS.contains(f.getLocalName())) functions.add(f.getName());
        });
        return Map.of(Context.Library.FILTER, filters, Context.Library.FUNCTION, functions,
                Context.Library.TAG, TAGS_REFUSED);
    }

    private final String name;
    private final Semaphore places = new Semaphore(CONCURRENT, true);

    JinjaSandbox(String name) {
        this.name = name;
    }

    /** The template {@code source} rendered with {@code context}; refused with the reason past any bound. */
    String render(String source, Map<String, Object> context) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DEADLINE_MILLIS);
        try {
            if (!places.tryAcquire(DEADLINE_MILLIS, TimeUnit.MILLISECONDS)) {
                throw new UserError("the chat template " + name + " is busy: " + CONCURRENT + " renders are under "
                        + "way and none finished within " + DEADLINE_MILLIS + " ms; retry");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UserError("rendering the chat template " + name + " was interrupted");
        }
        try {
            RenderResult result = engine(deadline).renderForResult(source, context);
            if (System.nanoTime() > deadline) {
                throw new UserError("the chat template " + name + " took longer than " + DEADLINE_MILLIS
                        + " ms to render: a chat template renders in milliseconds; fix its loops");
            }
            for (TemplateError e : result.getErrors()) {
                if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                    // Jinjava wraps what a function throws: a template's own raise_exception keeps its message.
                    for (Throwable c = e.getException(); c != null; c = c.getCause()) {
                        if (c instanceof UserError refused) throw refused;
                    }
                    throw new UserError("the chat template " + name + " failed: " + e.getMessage());
                }
            }
            return result.getOutput();
        } catch (StackOverflowError | OutOfMemoryError e) {
            throw new UserError("the chat template " + name + " failed: " + e + " (it nests or builds too much)");
        } finally {
            places.release();
        }
    }

    /** A Jinjava with the limits above; its node hook stops the render once {@code deadline} has passed. */
    private Jinjava engine(long deadline) {
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withFailOnUnknownTokens(false)
                .withMaxOutputSize(MAX_OUTPUT_CHARS)
                .withMaxStringLength(MAX_STRING_CHARS)
                .withMaxListSize(MAX_COLLECTION)
                .withMaxMapSize(MAX_COLLECTION)
                .withRangeLimit(RANGE_LIMIT)
                .withMaxRenderDepth(MAX_DEPTH)
                .withMaxMacroRecursionDepth(MAX_DEPTH)
                .withDisabled(DISABLED)
                .withElResolver(new AllowedMethods(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY))
                // Called before every node renders, loop bodies included: a loop stops within one pass of its body.
                .withNodePreProcessor((node, interpreter) -> {
                    if (System.nanoTime() > deadline) {
                        throw new IllegalStateException("render deadline of " + DEADLINE_MILLIS + " ms passed");
                    }
                })
                .build();
        Jinjava engine = new Jinjava(config);
        engine.setResourceLocator((path, encoding, interpreter) -> {
            throw new IOException("a chat template cannot read files (" + path + ")");
        });
        engine.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raiseException", String.class));
        return engine;
    }

    /** Jinjava's resolver, with method calls limited to {@link #METHODS}. */
    private static final class AllowedMethods extends ELResolver {
        private final ELResolver inner;

        AllowedMethods(ELResolver inner) {
            this.inner = inner;
        }

        @Override
        public Object invoke(ELContext context, Object base, Object method, Class<?>[] types, Object[] params) {
            boolean library = base != null && base.getClass().getName().startsWith("com.hubspot.jinjava.lib.");
            if (base != null && method != null && !library && !METHODS.contains(method.toString())) {
                throw new UnsupportedOperationException("a chat template may not call " + method + "() on a "
                        + base.getClass().getSimpleName());
            }
            return inner.invoke(context, base, method, types, params);
        }

        @Override
        public Class<?> getCommonPropertyType(ELContext context, Object base) {
            return inner.getCommonPropertyType(context, base);
        }

        @Override
        public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
            return inner.getFeatureDescriptors(context, base);
        }

        @Override
        public Class<?> getType(ELContext context, Object base, Object property) {
            return inner.getType(context, base, property);
        }

        @Override
        public Object getValue(ELContext context, Object base, Object property) {
            return inner.getValue(context, base, property);
        }

        @Override
        public boolean isReadOnly(ELContext context, Object base, Object property) {
            return inner.isReadOnly(context, base, property);
        }

        @Override
        public void setValue(ELContext context, Object base, Object property, Object value) {
            inner.setValue(context, base, property, value);
        }
    }
}
