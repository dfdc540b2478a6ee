import Foundation
import Testing
@testable import MusterKit

/// The kiosk's line editor, fed byte sequences as a terminal in raw mode sends them.
@Suite struct LineEditorTests {
    /// Feeds `bytes`; returns the events in order and the editor.
    static func feed(_ bytes: [UInt8], into editor: inout LineEditor) -> [LineEditor.Event] {
        bytes.compactMap { editor.feed($0) }
    }

    static func typed(_ keys: String...) -> (events: [LineEditor.Event], editor: LineEditor) {
        var editor = LineEditor()
        let events = feed(Array(keys.joined().utf8), into: &editor)
        return (events, editor)
    }

    static let left = "\u{1B}[D", right = "\u{1B}[C", home = "\u{1B}[H", end = "\u{1B}[F"

    @Test func arrowsHomeEndAndBackspaceEditTheLine() {
        #expect(Self.typed("Ana Lma", Self.left, Self.left, "i", Self.home, "Dr ", Self.end, "!", "\u{7F}", "\r").events == [.submitted("Dr Ana Lima")])
        // The SS3 forms (application cursor mode) and the VT forms of Home/End.
        #expect(Self.typed("bc", "\u{1B}OH", "a", "\u{1B}OF", "d", "\u{1B}OD", "\u{1B}OC", "e\r").events == [.submitted("abcde")])
        #expect(Self.typed("bc", "\u{1B}[1~", "a", "\u{1B}[4~", "d", "\u{1B}[7~", "\u{1B}[8~", "e\r").events == [.submitted("abcde")])
        // Delete (ESC [3~) removes the character under the cursor.
        #expect(Self.typed("abXc", Self.left, Self.left, "\u{1B}[3~", "\r").events == [.submitted("abc")])
        // Moving beyond either end stays at the end.
        #expect(Self.typed("ab", Self.left, Self.left, Self.left, "\u{7F}", "x", Self.right, Self.right, Self.right, "y\r").events == [.submitted("xaby")])
    }

    @Test func emacsKeys() {
        #expect(Self.typed("xyz\u{15}abc\r").events == [.submitted("abc")], "Ctrl-U erases to the start")
        #expect(Self.typed("abc", Self.left, "\u{15}", "\r").events == [.submitted("c")])
        #expect(Self.typed("abcdef", Self.left, Self.left, "\u{0B}\r").events == [.submitted("abcd")], "Ctrl-K erases to the end")
        #expect(Self.typed("bc\u{01}a\u{05}d\r").events == [.submitted("abcd")], "Ctrl-A, Ctrl-E")
        #expect(Self.typed("ac\u{02}b\u{06}d\r").events == [.submitted("abcd")], "Ctrl-B, Ctrl-F")
        #expect(Self.typed("abx\u{08}c\r").events == [.submitted("abc")], "Ctrl-H is Backspace")
        #expect(Self.typed("abXc", Self.left, Self.left, "\u{04}\r").events == [.submitted("abc")], "Ctrl-D on a non-empty line deletes forward")
    }

    @Test func aMultiByteCharacterMovesAndDeletesAsOne() {
        #expect(Self.typed("Zoë", "\u{7F}", "e\r").events == [.submitted("Zoe")])
        #expect(Self.typed("日本", Self.left, "x", Self.right, "\u{7F}\r").events == [.submitted("日x")])
        #expect(Self.typed("a👍🏽b", Self.left, "\u{7F}\r").events == [.submitted("ab")], "an emoji with its skin tone is one character")
        // A combining accent typed after its letter joins it: one character to delete.
        #expect(Self.typed("Jose\u{301}", "\u{7F}\r").events == [.submitted("Jos")])
        #expect(Self.typed("Jose\u{301}", Self.left, "\u{7F}\r").events == [.submitted("Joe\u{301}")])
    }

    @Test func unknownEscapeSequencesAndControlKeysAreIgnoredNotStored() {
        let ignored = ["\u{1B}[A", "\u{1B}[B", "\u{1B}[15~", "\u{1B}[2~", "\u{1B}OP", "\u{1B}[200~", "\u{1B}[<0;12;5M",
                       "\u{1B}x", "\u{09}", "\u{1A}", "\u{1C}", "\u{0C}", "\u{00}", "\u{1B}[?1;2c"]
        for key in ignored {
            let (events, editor) = Self.typed("ab", key, "c\r")
            #expect(events == [.submitted("abc")], "\(key.debugDescription)")
            #expect(editor.text.isEmpty)
        }
        // A control key ends a broken sequence and still counts.
        #expect(Self.typed("ab\u{1B}[1\r").events == [.submitted("ab")])
        // C1 control characters (U+0080…U+009F) never get in.
        #expect(Self.typed("a\u{85}b\r").events == [.submitted("ab")])
        // Ctrl-Left (ESC [1;5D) moves like Left.
        #expect(Self.typed("bc", "\u{1B}[1;5D", "\u{1B}[1;5D", "a\r").events == [.submitted("abc")])
    }

    @Test func enterCtrlCAndCtrlD() {
        #expect(Self.typed("a\r\nb\r").events == [.submitted("a"), .submitted("b")], "CR LF is one Enter")
        #expect(Self.typed("a\n\n").events == [.submitted("a"), .submitted("")], "LF alone is Enter")
        #expect(Self.typed("\u{04}").events == [.endRequested], "Ctrl-D on an empty line")
        #expect(Self.typed("\u{03}").events == [.interrupted(hadText: false)])
        let (events, editor) = Self.typed("half\u{03}")
        #expect(events == [.interrupted(hadText: true)])
        #expect(editor.text.isEmpty, "Ctrl-C clears the line")
        #expect(Self.typed("ab\u{03}cd\r").events == [.interrupted(hadText: true), .submitted("cd")])
    }

    @Test func invalidUTF8IsReportedAtItsOffsetNotStored() {
        var editor = LineEditor()
        #expect(Self.feed(Array("Ly".utf8) + [0xC3, 0x28] + Array("on\r".utf8), into: &editor) == [.invalidUTF8(byteOffset: 2)])
        #expect(editor.text.isEmpty)
        #expect(Self.feed(Array("é".utf8) + [0xFF, 0x0D], into: &editor) == [.invalidUTF8(byteOffset: 2)])
        #expect(Self.feed([0x41, 0xE2, 0x82, 0x0D], into: &editor) == [.invalidUTF8(byteOffset: 1)], "a truncated sequence")
        #expect(Self.feed([0xED, 0xA0, 0x80, 0x0D], into: &editor) == [.invalidUTF8(byteOffset: 0)], "a surrogate")
        #expect(Self.feed([0xC0, 0xAF, 0x0D], into: &editor) == [.invalidUTF8(byteOffset: 0)], "an overlong form")
        #expect(Self.feed(Array("ok\r".utf8), into: &editor) == [.submitted("ok")], "the next line is fine")
    }

    @Test func aLineStopsGrowingAtItsLimit() {
        var editor = LineEditor()
        _ = Self.feed(Array(String(repeating: "é", count: LineEditor.maximumBytes).utf8), into: &editor)
        #expect(editor.text.utf8.count == LineEditor.maximumBytes)
        #expect(Self.feed(Array("\r".utf8), into: &editor) == [.submitted(String(repeating: "é", count: LineEditor.maximumBytes / 2))])
    }

    @Test func renderingPutsTheCursorBackAndScrollsLongLines() {
        var (_, editor) = Self.typed("abc", Self.left)
        #expect(editor.render(prompt: "Name: ", columns: 80) == "\rName: abc\u{1B}[K\u{1B}[1D")
        #expect(editor.render(prompt: "Pass: ", columns: 80, secret: true) == "\rPass: \u{1B}[K", "a secret shows nothing")
        (_, editor) = Self.typed("日本")
        #expect(editor.render(prompt: "> ", columns: 80) == "\r> 日本\u{1B}[K", "wide characters")
        _ = Self.feed(Array(Self.left.utf8), into: &editor)
        #expect(editor.render(prompt: "> ", columns: 80) == "\r> 日本\u{1B}[K\u{1B}[2D", "a wide character is two columns back")
        // A line longer than the terminal scrolls so the cursor stays in view.
        (_, editor) = Self.typed(String(repeating: "x", count: 30) + "END")
        let shown = editor.render(prompt: "Name: ", columns: 20)
        #expect(shown == "\rName: " + String(repeating: "x", count: 10) + "END\u{1B}[K", "\(shown.debugDescription)")
        #expect(LineEditor.width("Zoë") == 3 && LineEditor.width("e\u{301}") == 1 && LineEditor.width("👍") == 2)
    }
}
