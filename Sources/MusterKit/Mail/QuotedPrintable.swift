/// RFC 2045 quoted-printable encoding for text bodies.
public enum QuotedPrintable {
    /// Encodes UTF-8 text. Line breaks (CRLF, CR or LF) become CRLF; lines are at most
    /// 76 characters; `=`, control characters, non-ASCII bytes and whitespace before a
    /// line break are escaped. A `.` at the start of a line and a line-initial `From `
    /// are escaped too, so no relay or mbox mangles them. The result never contains
    /// `=_` nor a bare `=` other than a soft line break.
    public static func encode(_ text: String) -> String {
        String(decoding: encodeBytes(text), as: UTF8.self)
    }

    /// `encode`, as the octets a message carries.
    public static func encodeBytes(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8 { bytes in
            // Worst case: every byte escaped (3 octets), a soft break ("=\r\n") every 25
            // escaped bytes, and CR/LF or LF becoming CRLF.
            let capacity = bytes.count * 3 + bytes.count / 25 * 3 + bytes.count + 16
            let out = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                guard let base = buffer.baseAddress else { count = 0; return }
                var written = 0
                var start = 0
                var i = 0
                while i < bytes.count {
                    let byte = bytes[i]
                    if byte == 0x0D || byte == 0x0A {
                        written = encodeLine(UnsafeBufferPointer(rebasing: bytes[start..<i]), into: base, at: written)
                        base[written] = 0x0D
                        base[written + 1] = 0x0A
                        written += 2
                        if byte == 0x0D, i + 1 < bytes.count, bytes[i + 1] == 0x0A { i += 1 }
                        start = i + 1
                    }
                    i += 1
                }
                written = encodeLine(UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]), into: base, at: written)
                count = written
            }
            return out
        }
    }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x37 + nibble }

    /// Writes one encoded line at `out + start`; returns the offset after it.
    private static func encodeLine(_ line: UnsafeBufferPointer<UInt8>, into out: UnsafeMutablePointer<UInt8>, at start: Int) -> Int {
        var written = start
        var length = 0
        let count = line.count
        for offset in 0..<count {
            let byte = line[offset]
            // The common case, taken first: a printable character other than `=`, inside a
            // line and with room before the soft-break column (what the rules below give).
            if length != 0, length < 75, offset < count - 1, byte >= 0x21, byte <= 0x7E, byte != 0x3D {
                out[written] = byte
                written += 1
                length += 1
                continue
            }
            let isLast = offset == count - 1
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
                out[written] = UInt8(ascii: "=")
                out[written + 1] = 0x0D
                out[written + 2] = 0x0A
                written += 3
                length = 0
            }
            // At the start of an encoded line — the text's own or one after a soft break —
            // escape a "." and the "F" of "From " (found by fuzzing: a soft break could
            // leave "From " at the start of a line).
            if length == 0, byte == UInt8(ascii: ".") || (byte == UInt8(ascii: "F") && line.dropFirst(offset).starts(with: "From ".utf8)) {
                literal = false
            }
            if literal {
                out[written] = byte
                written += 1
                length += 1
            } else {
                out[written] = UInt8(ascii: "=")
                out[written + 1] = hexDigit(byte >> 4)
                out[written + 2] = hexDigit(byte & 0x0F)
                written += 3
                length += 3
            }
        }
        return written
    }
}
