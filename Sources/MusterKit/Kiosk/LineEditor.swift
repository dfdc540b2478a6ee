import Foundation

/// A one-line editor for a terminal in raw mode, fed byte by byte.
///
/// UTF-8 aware: the buffer holds characters (grapheme clusters), so a multi-byte
/// character — or a letter and the combining accent typed after it — moves and
/// deletes as one. Keys: Left/Right (and Ctrl-B/Ctrl-F), Home/End (and Ctrl-A/Ctrl-E),
/// Backspace, Delete, Ctrl-U (erase to the start), Ctrl-K (erase to the end),
/// Enter. Ctrl-C and Ctrl-D (on an empty line) are reported to the caller; Ctrl-D on
/// a non-empty line deletes the character under the cursor. Every other control
/// key and every escape sequence it does not know (Up, Down, F-keys, mouse
/// reports…) is ignored rather than stored. There is no history: a kiosk must not
/// let one signer recall another's answers.
public struct LineEditor: Sendable {
    /// What a byte did, when it ends the line or asks something of the caller.
    public enum Event: Equatable, Sendable {
        /// Enter: the line as edited.
        case submitted(String)
        /// Enter on a line into which bytes that are not UTF-8 were typed; they were
        /// dropped at this byte offset of the line. The line is cleared: type it again.
        case invalidUTF8(byteOffset: Int)
        /// Ctrl-C; `hadText` if anything had been typed on the line. The line is cleared.
        case interrupted(hadText: Bool)
        /// Ctrl-D on an empty line.
        case endRequested
    }

    /// Longest line kept, in UTF-8 bytes; typing beyond it is ignored.
    public static let maximumBytes = 4096

    public private(set) var characters: [Character] = []
    /// Cursor position, in characters from the start.
    public private(set) var cursor = 0
    private var byteCount = 0
    private var invalidAt: Int?

    private enum State: Sendable { case ground, escape, csi, ss3 }
    private var state = State.ground
    private var sequence: [UInt8] = []
    private var pendingUTF8: [UInt8] = []
    private var pendingLength = 0
    private var lastWasCR = false

    public init() {}

    /// The line as it stands.
    public var text: String { String(characters) }

    /// Empties the line (and forgets any half-read key).
    public mutating func reset() {
        characters.removeAll()
        cursor = 0
        byteCount = 0
        invalidAt = nil
        state = .ground
        sequence.removeAll()
        pendingUTF8.removeAll()
    }

    /// Feeds one byte read from the terminal.
    public mutating func feed(_ byte: UInt8) -> Event? {
        let afterCR = lastWasCR
        lastWasCR = false
        switch state {
        case .escape:
            if byte == 0x5B { state = .csi; sequence.removeAll(); return nil }       // ESC [
            if byte == 0x4F { state = .ss3; return nil }                             // ESC O
            state = .ground
            if byte == 0x1B { state = .escape; return nil }
            if byte < 0x20 || byte == 0x7F { return control(byte, afterCR: afterCR) }
            return nil                                                                // Alt-key: ignored
        case .ss3:
            state = .ground
            switch byte {
            case 0x44: moveLeft()                // D
            case 0x43: moveRight()               // C
            case 0x48: cursor = 0                // H
            case 0x46: cursor = characters.count // F
            default: if byte < 0x20 { return control(byte, afterCR: afterCR) }
            }
            return nil
        case .csi:
            if (0x40...0x7E).contains(byte) {
                state = .ground
                csi(parameters: sequence, final: byte)
                return nil
            }
            if (0x20...0x3F).contains(byte), sequence.count < 32 {
                sequence.append(byte)
                return nil
            }
            // Not part of a sequence: the sequence is abandoned; a control key still counts.
            state = .ground
            if byte < 0x20 || byte == 0x7F { return control(byte, afterCR: afterCR) }
            return nil
        case .ground:
            break
        }

        if !pendingUTF8.isEmpty {
            if byte & 0xC0 == 0x80 {
                pendingUTF8.append(byte)
                if pendingUTF8.count == pendingLength {
                    let bytes = pendingUTF8
                    pendingUTF8.removeAll()
                    if let string = String(validating: bytes, as: UTF8.self) {
                        for character in string { insert(character) }
                    } else {
                        markInvalid()
                    }
                }
                return nil
            }
            pendingUTF8.removeAll()
            markInvalid()
        }
        switch byte {
        case 0x00..<0x20, 0x7F:
            return control(byte, afterCR: afterCR)
        case 0x20..<0x7F:
            insert(Character(Unicode.Scalar(byte)))
        case 0xC2...0xDF: pendingUTF8 = [byte]; pendingLength = 2
        case 0xE0...0xEF: pendingUTF8 = [byte]; pendingLength = 3
        case 0xF0...0xF4: pendingUTF8 = [byte]; pendingLength = 4
        default:
            markInvalid()
        }
        return nil
    }

    private mutating func control(_ byte: UInt8, afterCR: Bool) -> Event? {
        switch byte {
        case 0x0D, 0x0A:                       // Enter (CR; LF too, but not the LF of a CR LF pair)
            if byte == 0x0D { lastWasCR = true } else if afterCR { return nil }
            defer { reset() }
            if !pendingUTF8.isEmpty { markInvalid() }
            if let invalidAt { return .invalidUTF8(byteOffset: invalidAt) }
            return .submitted(text)
        case 0x03:                             // Ctrl-C
            let hadText = !characters.isEmpty || invalidAt != nil || !pendingUTF8.isEmpty
            reset()
            return .interrupted(hadText: hadText)
        case 0x04:                             // Ctrl-D
            if characters.isEmpty && invalidAt == nil && pendingUTF8.isEmpty { return .endRequested }
            deleteForward()
        case 0x1B: state = .escape
        case 0x7F, 0x08: deleteBackward()      // Backspace (DEL or Ctrl-H)
        case 0x01: cursor = 0                  // Ctrl-A
        case 0x05: cursor = characters.count   // Ctrl-E
        case 0x02: moveLeft()                  // Ctrl-B
        case 0x06: moveRight()                 // Ctrl-F
        case 0x15:                             // Ctrl-U
            characters.removeSubrange(..<cursor)
            cursor = 0
            recount()
        case 0x0B:                             // Ctrl-K
            characters.removeSubrange(cursor...)
            recount()
        default: break                         // Ctrl-Z, Ctrl-\, Tab, … ignored
        }
        return nil
    }

    private mutating func csi(parameters: [UInt8], final: UInt8) {
        let first = String(decoding: parameters.prefix { $0 != 0x3B }, as: UTF8.self)
        switch final {
        case 0x44: moveLeft()                  // D
        case 0x43: moveRight()                 // C
        case 0x48: cursor = 0                  // H
        case 0x46: cursor = characters.count   // F
        case 0x7E:                             // ~
            switch first {
            case "1", "7": cursor = 0
            case "4", "8": cursor = characters.count
            case "3": deleteForward()
            default: break
            }
        default: break
        }
    }

    private mutating func insert(_ character: Character) {
        // Control and format characters of the C1 range never get in.
        if let scalar = character.unicodeScalars.first, character.unicodeScalars.count == 1,
           (0x80...0x9F).contains(scalar.value) { return }
        let size = character.utf8.count
        guard byteCount + size <= Self.maximumBytes else { return }
        if cursor > 0 {
            // A combining mark joins the character before it, as it will in the stored text.
            let joined = String(characters[cursor - 1]) + String(character)
            if joined.count == 1 {
                characters[cursor - 1] = joined.first!
                byteCount += size
                return
            }
        }
        characters.insert(character, at: cursor)
        cursor += 1
        byteCount += size
    }

    private mutating func markInvalid() {
        if invalidAt == nil { invalidAt = characters[..<cursor].reduce(0) { $0 + $1.utf8.count } }
    }

    private mutating func moveLeft() { if cursor > 0 { cursor -= 1 } }
    private mutating func moveRight() { if cursor < characters.count { cursor += 1 } }

    private mutating func deleteBackward() {
        guard cursor > 0 else { return }
        cursor -= 1
        byteCount -= characters.remove(at: cursor).utf8.count
    }

    private mutating func deleteForward() {
        guard cursor < characters.count else { return }
        byteCount -= characters.remove(at: cursor).utf8.count
    }

    private mutating func recount() { byteCount = characters.reduce(0) { $0 + $1.utf8.count } }

    /// What to write to redraw the line after `prompt` on a terminal `columns` wide:
    /// carriage return, prompt, as much of the line as fits around the cursor
    /// (scrolling sideways when it is longer), erase to the end of the row, and the
    /// cursor put back. A `secret` line shows nothing of what is typed.
    public func render(prompt: String, columns: Int, secret: Bool = false) -> String {
        var out = "\r" + prompt
        guard !secret else { return out + "\u{1B}[K" }
        let room = max(columns - Self.width(prompt) - 1, 8)
        var start = 0
        var before = characters[..<cursor].reduce(0) { $0 + Self.width($1) }
        while before > room, start < cursor {
            before -= Self.width(characters[start])
            start += 1
        }
        var end = start, used = 0
        while end < characters.count, used + Self.width(characters[end]) <= room {
            used += Self.width(characters[end])
            end += 1
        }
        out += String(characters[start..<end]) + "\u{1B}[K"
        let back = characters[max(cursor, start)..<max(end, cursor)].reduce(0) { $0 + Self.width($1) }
        if back > 0 { out += "\u{1B}[\(back)D" }
        return out
    }

    /// Columns a character takes on a terminal: 2 for East Asian wide characters and
    /// emoji, 0 for a lone combining mark, else 1.
    public static func width(_ character: Character) -> Int {
        guard let scalar = character.unicodeScalars.first else { return 0 }
        if character.unicodeScalars.count > 1, character.unicodeScalars.contains(where: { $0.properties.isEmojiPresentation || $0.value == 0xFE0F }) {
            return 2
        }
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if scalar.properties.isEmojiPresentation { return 2 }
        switch scalar.value {
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
             0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
             0xFFE0...0xFFE6, 0x20000...0x3FFFD:
            return 2
        default:
            return 1
        }
    }

    /// Columns a string takes on a terminal.
    public static func width(_ text: String) -> Int { text.reduce(0) { $0 + width($1) } }
}
