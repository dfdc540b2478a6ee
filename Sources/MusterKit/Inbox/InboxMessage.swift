import Foundation

/// A received message, parsed just enough to classify it: header fields (unfolded),
/// and the MIME tree with each leaf's content decoded (base64, quoted-printable).
///
/// Bounded and total: never throws, never traps. At most `maxParts` parts and
/// `maxDepth` levels of nesting are read; what is beyond, or what does not parse
/// (a multipart without its boundary, header bytes that are not UTF-8), marks the
/// message `malformed`, which the processor treats as unrecognised.
struct InboxMessage: Sendable {
    static let maxParts = 64
    static let maxDepth = 6
    static let maxHeaderFields = 400

    let root: MIMEPart
    /// Whether something could not be parsed as it claims to be.
    let malformed: Bool
    /// The raw octets (for the content hash of a message without a Message-ID).
    let bytes: [UInt8]

    init(bytes: [UInt8]) {
        self.bytes = bytes
        var state = ParseState()
        root = MIMEPart.parse(bytes[...], depth: 0, state: &state, defaultType: "text/plain")
        var malformed = state.malformed
        // The top-level header must be UTF-8 (RFC 6532 allows UTF-8; anything else is not mail muster reads).
        if String(validating: root.rawHeader, as: UTF8.self) == nil { malformed = true }
        if root.headers.fields.isEmpty { malformed = true }
        self.malformed = malformed
    }

    var headers: MIMEHeaders { root.headers }

    /// Every part, depth first (the root first).
    var parts: [MIMEPart] {
        var out: [MIMEPart] = []
        func walk(_ part: MIMEPart) {
            out.append(part)
            for child in part.children { walk(child) }
        }
        walk(root)
        return out
    }

    /// The decoded text of every `text/plain` (and, failing that, `text/html`) leaf,
    /// joined; invalid UTF-8 replaced.
    var bodyText: String {
        let leaves = parts.filter { $0.children.isEmpty }
        var plain = leaves.filter { $0.contentType == "text/plain" }
        if plain.isEmpty { plain = leaves.filter { $0.contentType == "text/html" } }
        return plain.map { String(decoding: $0.content, as: UTF8.self) }.joined(separator: "\n")
    }
}

struct ParseState {
    var parts = 0
    var malformed = false
}

/// Header fields in order, names lower-cased, values unfolded and trimmed.
struct MIMEHeaders: Sendable {
    var fields: [(name: String, value: String)] = []

    func first(_ name: String) -> String? { fields.first { $0.name == name }?.value }
    func all(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }

    /// Parses a header block (the octets before the empty line); at most `limit` fields.
    static func parse(_ bytes: ArraySlice<UInt8>, limit: Int = InboxMessage.maxHeaderFields) -> MIMEHeaders {
        var headers = MIMEHeaders()
        let text = String(decoding: bytes, as: UTF8.self)
        var current: (String, String)?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            var line = Substring(rawLine)
            if line.last == "\r" { line = line.dropLast() }
            if line.isEmpty { continue }
            if line.first == " " || line.first == "\t" {
                if current != nil { current!.1 += " " + line.trimmingCharacters(in: .whitespaces) }
                continue
            }
            if let done = current { headers.fields.append((done.0, done.1.trimmingCharacters(in: .whitespaces))) }
            current = nil
            guard headers.fields.count < limit, let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            guard !name.isEmpty, !name.contains(" ") else { continue }
            current = (name, String(line[line.index(after: colon)...]))
        }
        if let done = current, headers.fields.count < limit { headers.fields.append((done.0, done.1.trimmingCharacters(in: .whitespaces))) }
        return headers
    }
}

/// One MIME part.
struct MIMEPart: Sendable {
    var rawHeader: ArraySlice<UInt8>
    var headers: MIMEHeaders
    /// `type/subtype`, lower case.
    var contentType: String
    /// Parameters of Content-Type, names lower case.
    var parameters: [String: String]
    /// The decoded content of a leaf (empty for a multipart).
    var content: [UInt8]
    var children: [MIMEPart]

    /// Splits `bytes` into header and body at the first empty line.
    static func splitHeader(_ bytes: ArraySlice<UInt8>) -> (header: ArraySlice<UInt8>, body: ArraySlice<UInt8>) {
        var index = bytes.startIndex
        // An empty line first: no header at all.
        if bytes.starts(with: [13, 10]) { return (bytes[index..<index], bytes[(index + 2)...]) }
        if bytes.first == 10 { return (bytes[index..<index], bytes[(index + 1)...]) }
        while index < bytes.endIndex {
            if bytes[index] == 10 {
                let next = index + 1
                if next < bytes.endIndex, bytes[next] == 10 { return (bytes[..<next], bytes[(next + 1)...]) }
                if next + 1 < bytes.endIndex, bytes[next] == 13, bytes[next + 1] == 10 { return (bytes[..<next], bytes[(next + 2)...]) }
            }
            index += 1
        }
        return (bytes, bytes[bytes.endIndex...])
    }

    static func parse(_ bytes: ArraySlice<UInt8>, depth: Int, state: inout ParseState, defaultType: String) -> MIMEPart {
        state.parts += 1
        let (rawHeader, body) = splitHeader(bytes)
        let headers = MIMEHeaders.parse(rawHeader)
        let (type, parameters) = contentType(headers.first("content-type"), default: defaultType)
        var part = MIMEPart(rawHeader: rawHeader, headers: headers, contentType: type, parameters: parameters, content: [], children: [])
        if type.hasPrefix("multipart/") {
            guard let boundary = parameters["boundary"], !boundary.isEmpty, depth < InboxMessage.maxDepth else {
                state.malformed = true
                return part
            }
            guard let pieces = split(body, boundary: Array(boundary.utf8)) else {
                state.malformed = true
                return part
            }
            let childDefault = type == "multipart/digest" ? "message/rfc822" : "text/plain"
            for piece in pieces {
                guard state.parts < InboxMessage.maxParts else { state.malformed = true; break }
                part.children.append(parse(piece, depth: depth + 1, state: &state, defaultType: childDefault))
            }
        } else if type == "message/rfc822" || type == "message/global", depth < InboxMessage.maxDepth, state.parts < InboxMessage.maxParts {
            let decoded = decode(body, encoding: headers.first("content-transfer-encoding"))
            part.children.append(parse(decoded[...], depth: depth + 1, state: &state, defaultType: "text/plain"))
        } else {
            part.content = decode(body, encoding: headers.first("content-transfer-encoding"))
        }
        return part
    }

    /// The body parts between `--boundary` lines; nil when the first delimiter is missing.
    static func split(_ body: ArraySlice<UInt8>, boundary: [UInt8]) -> [ArraySlice<UInt8>]? {
        let delimiter: [UInt8] = [45, 45] + boundary
        var lines: [Range<Int>] = []
        var start = body.startIndex
        while start < body.endIndex {
            var end = body[start...].firstIndex(of: 10) ?? body.endIndex
            let next = end < body.endIndex ? end + 1 : end
            if end > start, body[end - 1] == 13 { end -= 1 }
            lines.append(start..<end)
            start = next
        }
        var pieces: [ArraySlice<UInt8>] = []
        var pieceStart: Int?
        var previousLineEnd = body.startIndex
        var sawDelimiter = false
        for line in lines {
            let content = body[line]
            if content.starts(with: delimiter) {
                let rest = content.dropFirst(delimiter.count)
                let closing = rest.starts(with: [45, 45])
                if rest.allSatisfy({ $0 == 32 || $0 == 9 }) || closing {
                    if let begin = pieceStart {
                        // The line break before the delimiter belongs to the delimiter.
                        var end = previousLineEnd
                        if end > begin, body[end - 1] == 10 { end -= 1 }
                        if end > begin, body[end - 1] == 13 { end -= 1 }
                        pieces.append(body[begin..<max(begin, end)])
                    }
                    sawDelimiter = true
                    if closing { return pieces }
                    pieceStart = min(line.upperBound + (line.upperBound < body.endIndex && body[line.upperBound] == 13 ? 2 : 1), body.endIndex)
                    previousLineEnd = pieceStart!
                    continue
                }
            }
            previousLineEnd = min(line.upperBound + (line.upperBound < body.endIndex && body[line.upperBound] == 13 ? 2 : 1), body.endIndex)
        }
        guard sawDelimiter else { return nil }
        // No closing delimiter (a truncated message, as bounces often return): keep what is there.
        if let begin = pieceStart, begin < body.endIndex { pieces.append(body[begin...]) }
        return pieces
    }

    /// `type/subtype` (lower case) and the parameters of a Content-Type value.
    static func contentType(_ value: String?, default defaultType: String) -> (String, [String: String]) {
        guard let value else { return (defaultType, [:]) }
        var items = splitParameters(value)
        let type = items.isEmpty ? "" : items.removeFirst().trimmingCharacters(in: .whitespaces).lowercased()
        var parameters: [String: String] = [:]
        for item in items {
            guard let equals = item.firstIndex(of: "=") else { continue }
            let name = item[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var raw = item[item.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if raw.hasPrefix("\""), raw.hasSuffix("\""), raw.count >= 2 { raw = String(raw.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"") }
            parameters[name] = raw
        }
        return (type.contains("/") ? type : defaultType, parameters)
    }

    /// Splits at `;` outside double quotes.
    static func splitParameters(_ value: String) -> [String] {
        var items: [String] = []
        var current = ""
        var quoted = false, escaped = false
        for character in value {
            if escaped { current.append(character); escaped = false; continue }
            if character == "\\" && quoted { escaped = true; current.append(character); continue }
            if character == "\"" { quoted.toggle() }
            if character == ";" && !quoted { items.append(current); current = ""; continue }
            current.append(character)
        }
        items.append(current)
        return items
    }

    /// The content with its transfer encoding undone (unknown encodings as they are).
    static func decode(_ body: ArraySlice<UInt8>, encoding: String?) -> [UInt8] {
        switch encoding?.trimmingCharacters(in: .whitespaces).lowercased() {
        case "base64": return base64(body)
        case "quoted-printable": return quotedPrintable(body)
        default: return Array(body)
        }
    }

    static func base64(_ body: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count * 3 / 4)
        var buffer: UInt32 = 0, bits = 0
        for byte in body {
            let value: UInt32
            switch byte {
            case 65...90: value = UInt32(byte - 65)
            case 97...122: value = UInt32(byte - 97 + 26)
            case 48...57: value = UInt32(byte - 48 + 52)
            case 43: value = 62
            case 47: value = 63
            case 61: return out  // padding: the end
            default: continue    // line breaks, spaces, junk
            }
            buffer = (buffer << 6) | value
            bits += 6
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return out
    }

    static func quotedPrintable(_ body: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var index = body.startIndex
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 48...57: return byte - 48
            case 65...70: return byte - 55
            case 97...102: return byte - 87
            default: return nil
            }
        }
        while index < body.endIndex {
            let byte = body[index]
            if byte == 61 {  // "="
                let a = index + 1, b = index + 2
                if a < body.endIndex, body[a] == 10 { index = a + 1; continue }
                if b < body.endIndex, body[a] == 13, body[b] == 10 { index = b + 1; continue }
                if b < body.endIndex, let high = hex(body[a]), let low = hex(body[b]) {
                    out.append(high << 4 | low)
                    index = b + 1
                    continue
                }
            }
            out.append(byte)
            index += 1
        }
        return out
    }
}
