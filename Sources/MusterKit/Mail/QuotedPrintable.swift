/// RFC 2045 quoted-printable encoding for text bodies.
public enum QuotedPrintable {
    /// Encodes UTF-8 text. Line breaks (CRLF, CR or LF) become CRLF; lines are at most
    /// 76 characters; `=`, control characters, non-ASCII bytes and whitespace before a
    /// line break are escaped. A `.` at the start of a line and a line-initial `From `
    /// are escaped too, so no relay or mbox mangles them. The result never contains
    /// `=_` nor a bare `=` other than a soft line break.
    public static func encode(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + text.utf8.count / 8)
        let lines = splitLines(Array(text.utf8))
        for (index, line) in lines.enumerated() {
            if index > 0 { out += [0x0D, 0x0A] }
            encodeLine(line, into: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hex = Array("0123456789ABCDEF".utf8)

    private static func splitLines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0D || bytes[i] == 0x0A {
                lines.append(bytes[start..<i])
                if bytes[i] == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
                start = i + 1
            }
            i += 1
        }
        lines.append(bytes[start..<bytes.count])
        return lines
    }

    private static func encodeLine(_ line: ArraySlice<UInt8>, into out: inout [UInt8]) {
        var length = 0
        for (offset, byte) in line.enumerated() {
            let isLast = offset == line.count - 1
            var literal: Bool
            switch byte {
            case 0x21...0x3C, 0x3E...0x7E: literal = true
            case 0x20, 0x09: literal = !isLast
            default: literal = false
            }
            let width = literal ? 1 : 3
            // Keep room for the soft break "=" (76 = 75 + "="), except on the last
            // character of the line, which may use the 76th column.
            if length + width > (isLast ? 76 : 75) {
                out += [UInt8(ascii: "="), 0x0D, 0x0A]
                length = 0
            }
            // At the start of an encoded line — the text's own or one after a soft break —
            // escape a "." and the "F" of "From " (found by fuzzing: a soft break could
            // leave "From " at the start of a line).
            if length == 0, byte == UInt8(ascii: ".") || (byte == UInt8(ascii: "F") && line.dropFirst(offset).starts(with: "From ".utf8)) {
                literal = false
            }
            if literal {
                out.append(byte)
                length += 1
            } else {
                out += [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
                length += 3
            }
        }
    }
}
