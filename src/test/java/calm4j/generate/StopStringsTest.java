package calm4j.generate;

import calm4j.engine.UserError;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** OpenAI's {@code stop}, matched on text as it is decoded. */
class StopStringsTest {
    @Test
    void textBeforeAStopStringIsReleasedAndNothingAfterIt() {
        StopStrings s = new StopStrings(List.of("END"));
        assertEquals("hello ", s.add("hello END and more"));
        assertTrue(s.stopped());
        assertEquals("", s.add("still more"), "nothing is released once stopped");
        assertEquals("", s.flush());
    }

    @Test
    void aStopStringSpanningSeveralPiecesIsFoundAndItsBeginningWasHeldBack() {
        StopStrings s = new StopStrings(List.of("\nUser:"));
        assertEquals("Hi there.", s.add("Hi there.\nUs"), "a tail that may begin the stop string is held back");
        assertFalse(s.stopped());
        assertEquals("", s.add("e"));
        assertEquals("", s.add("r: next"));
        assertTrue(s.stopped());
    }

    @Test
    void aHeldTailThatTurnsOutNotToBeAStopStringIsReleased() {
        StopStrings s = new StopStrings(List.of("\nUser:"));
        assertEquals("a", s.add("a\nU"));
        assertEquals("\nUnder", s.add("nder"));
        assertEquals("tail\n", s.add("tail\n") + s.flush(), "what is held at the end is flushed");
        assertFalse(s.stopped());
    }

    @Test
    void theEarliestOfSeveralStopStringsWins() {
        StopStrings s = new StopStrings(List.of("b", "a"));
        assertEquals("xx", s.add("xxab"));
    }

    @Test
    void anEmptyStopStringIsRefused() {
        assertThrows(UserError.class, () -> new StopStrings(List.of("")));
    }

    @Test
    void withoutStopStringsEverythingIsReleasedAtOnce() {
        StopStrings s = new StopStrings(List.of());
        assertEquals("any text", s.add("any text"));
        assertEquals("", s.flush());
    }
}
