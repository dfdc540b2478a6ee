/// Escapes `& < > " '` for HTML text and attribute values.
func htmlEscape(_ value: String) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(value.utf8.count)
    appendHTMLEscaped(value, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// Appends `value` escaped as `htmlEscape` does (NUL becomes U+FFFD) to `out`.
func appendHTMLEscaped(_ value: String, to out: inout [UInt8]) {
    for byte in value.utf8 {
        switch byte {
        case UInt8(ascii: "&"): out += "&amp;".utf8
        case UInt8(ascii: "<"): out += "&lt;".utf8
        case UInt8(ascii: ">"): out += "&gt;".utf8
        case UInt8(ascii: "\""): out += "&quot;".utf8
        case UInt8(ascii: "'"): out += "&#39;".utf8
        case 0: out += "\u{FFFD}".utf8
        default: out.append(byte)
        }
    }
}
