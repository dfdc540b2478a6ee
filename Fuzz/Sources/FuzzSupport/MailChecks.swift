import Foundation

// Independent decoders and checkers for what MusterKit writes, so the fuzz targets can
// assert properties of the output instead of only "did not crash".

/// Checks one folded header field (`Name: value`, CRLF between lines, no final CRLF) and
/// returns it unfolded. `tokens` are what was folded: a line longer than `HeaderLimits.fold`
/// is accepted only when it holds a single token (no fold point was available).
public func checkFoldedField(_ field: String, name: String, tokens: [String]) -> String {
    let bytes = Array(field.utf8)
    checkLineBreaks(bytes, what: name)
    let lines = field.crlfLines
    require(lines[0].hasPrefix(name + ":"), "\(name): field does not start with its name: \(field.debugDescription)")
    for (index, line) in lines.enumerated() {
        require(line.utf8.count <= 998, "\(name): line of \(line.utf8.count) octets")
        if index > 0 {
            require(line.hasPrefix(" ") && line.utf8.count > 1, "\(name): continuation line not starting with a space or empty: \(line.debugDescription)")
            require(line.contains(where: { $0 != " " && $0 != "\t" }), "\(name): whitespace-only continuation line")
        }
        if line.utf8.count > 78 {
            let body = index == 0 ? String(line.dropFirst(name.utf8.count + 1)) : line
            let single = tokens.contains { " " + $0 == body }
            require(single, "\(name): line of \(line.utf8.count) octets with a fold point: \(line.debugDescription)")
        }
    }
    return lines.joined()
}

extension String {
    /// The text split at every CRLF (bytewise; Foundation's `components` is slow under ASAN).
    public var crlfLines: [String] { split(bytes: [0x0D, 0x0A]) }

    /// The text split at every occurrence of `separator` (bytewise).
    public func split(bytes separator: [UInt8]) -> [String] {
        let b = Array(utf8)
        var out: [String] = []
        var start = 0
        var i = 0
        while i + separator.count <= b.count {
            if b[i] == separator[0] && Array(b[i..<i + separator.count]) == separator {
                out.append(String(decoding: b[start..<i], as: UTF8.self))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        out.append(String(decoding: b[start...], as: UTF8.self))
        return out
    }
}

/// No bare CR, no bare LF, no NUL.
public func checkLineBreaks(_ bytes: [UInt8], what: String) {
    for (index, byte) in bytes.enumerated() {
        if byte == 0x0D { require(index + 1 < bytes.count && bytes[index + 1] == 0x0A, "\(what): bare CR at octet \(index)") }
        if byte == 0x0A { require(index > 0 && bytes[index - 1] == 0x0D, "\(what): bare LF at octet \(index)") }
        require(byte != 0, "\(what): NUL at octet \(index)")
    }
}

/// Decodes one RFC 2047 encoded word (`=?UTF-8?Q?…?=` / `B`), or nil when `token` is not one.
public func decodeEncodedWord(_ token: String) -> [UInt8]? {
    guard token.hasPrefix("=?"), token.hasSuffix("?="), token.utf8.count >= 12 else { return nil }
    let parts = token.dropFirst(2).dropLast(2).split(separator: "?", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].uppercased() == "UTF-8" else { return nil }
    let text = Array(parts[2].utf8)
    switch parts[1].uppercased() {
    case "B":
        return Data(base64Encoded: String(parts[2])).map { Array($0) }
    case "Q":
        var out: [UInt8] = []
        var index = 0
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: "_") {
                out.append(0x20)
            } else if byte == UInt8(ascii: "=") {
                guard index + 2 < text.count, let value = UInt8(String(decoding: text[index + 1...index + 2], as: UTF8.self), radix: 16) else { return nil }
                out.append(value)
                index += 2
            } else {
                guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "?") else { return nil }
                out.append(byte)
            }
            index += 1
        }
        return out
    default:
        return nil
    }
}

/// Decodes an unstructured header value as a mail reader would: words separated by one
/// space, encoded words decoded, whitespace between adjacent encoded words dropped.
/// Each encoded word must be complete UTF-8 on its own terms only when joined.
public func decodeUnstructured(_ value: String) -> String {
    if value.isEmpty { return "" }
    var out: [UInt8] = []
    var previousEncoded = false
    for (index, token) in value.split(separator: " ", omittingEmptySubsequences: false).enumerated() {
        if let decoded = decodeEncodedWord(String(token)) {
            require(token.utf8.count <= 75, "encoded word longer than 75: \(token)")
            require(String(validating: decoded, as: UTF8.self) != nil, "encoded word splits a UTF-8 sequence: \(token)")
            if index > 0 && !previousEncoded { out.append(0x20) }
            out += decoded
            previousEncoded = true
        } else {
            if index > 0 { out.append(0x20) }
            out += token.utf8
            previousEncoded = false
        }
    }
    guard let text = String(validating: out, as: UTF8.self) else {
        require(false, "encoded words do not decode to UTF-8: \(value.debugDescription)")
        return ""
    }
    return text
}

/// Decodes a display-name phrase: a quoted string, encoded words, or atoms.
public func decodePhrase(_ phrase: String) -> String {
    if phrase.hasPrefix("\"") {
        require(phrase.hasSuffix("\"") && phrase.utf8.count >= 2, "unterminated quoted string: \(phrase.debugDescription)")
        var out = ""
        var escaped = false
        for character in phrase.dropFirst().dropLast() {
            if escaped { out.append(character); escaped = false; continue }
            if character == "\\" { escaped = true; continue }
            require(character != "\"", "unescaped quote inside a quoted string: \(phrase.debugDescription)")
            out.append(character)
        }
        require(!escaped, "quoted string ends with a lone backslash: \(phrase.debugDescription)")
        return out
    }
    for token in phrase.split(separator: " ") where decodeEncodedWord(String(token)) == nil {
        let specials = "()<>[]:;@\\,.\""
        require(!token.contains(where: { specials.contains($0) }), "unquoted special in a phrase: \(phrase.debugDescription)")
    }
    return decodeUnstructured(phrase)
}

/// Decodes quoted-printable text, checking RFC 2045 line rules on the way; line breaks
/// come back as CRLF.
public func decodeQuotedPrintable(_ encoded: String) -> [UInt8] {
    let bytes = Array(encoded.utf8)
    checkLineBreaks(bytes, what: "quoted-printable")
    var out: [UInt8] = []
    let lines = encoded.crlfLines
    for (number, line) in lines.enumerated() {
        let l = Array(line.utf8)
        require(l.count <= 76, "quoted-printable line of \(l.count) characters")
        require(l.first != UInt8(ascii: "."), "quoted-printable line starts with a dot: \(line.debugDescription)")
        require(!line.hasPrefix("From "), "quoted-printable line starts with 'From '")
        if let last = l.last { require(last != 0x20 && last != 0x09, "quoted-printable line ends with whitespace") }
        var index = 0
        var soft = false
        while index < l.count {
            let byte = l[index]
            require(byte == 0x09 || (byte >= 0x20 && byte < 0x7F), "quoted-printable literal byte 0x\(String(byte, radix: 16))")
            if byte == UInt8(ascii: "=") {
                if index == l.count - 1 { soft = true; break }
                require(index + 2 < l.count, "truncated =XX escape")
                let hex = String(decoding: l[index + 1...index + 2], as: UTF8.self)
                guard let value = UInt8(hex, radix: 16), hex == hex.uppercased() else {
                    require(false, "bad =XX escape: \(hex)")
                    return out
                }
                out.append(value)
                index += 3
            } else {
                out.append(byte)
                index += 1
            }
        }
        if !soft && number < lines.count - 1 { out += [0x0D, 0x0A] }
    }
    return out
}

/// `text` with every line break (CRLF, CR, LF) as CRLF.
public func crlfNormalised(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    let bytes = Array(text.utf8)
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        if byte == 0x0D {
            out += [0x0D, 0x0A]
            if index + 1 < bytes.count, bytes[index + 1] == 0x0A { index += 1 }
        } else if byte == 0x0A {
            out += [0x0D, 0x0A]
        } else {
            out.append(byte)
        }
        index += 1
    }
    return out
}

/// A serialised message taken apart: unfolded header fields in order and the decoded parts.
public struct ParsedMessage {
    public var fields: [(name: String, value: String)]
    public var text: [UInt8]
    public var html: [UInt8]?

    public func field(_ name: String) -> String? { fields.first { $0.name == name }?.value }
}

/// Parses what `MIMEMessage.serialized()` writes and checks the invariants every message
/// must hold: CRLF only, lines ≤ 998 octets, header lines ≤ 78 unless one unbreakable
/// token, exactly the expected header fields (no injected ones), parts that decode.
public func parseMessage(_ message: [UInt8], expectedFields: [String]) -> ParsedMessage {
    checkLineBreaks(message, what: "message")
    let text = String(decoding: message, as: UTF8.self)
    require(Array(text.utf8) == message, "message is not UTF-8")
    guard let split = text.range(of: "\r\n\r\n") else {
        require(false, "no blank line after the header")
        fatalError()
    }
    let header = String(text[..<split.lowerBound])
    let body = String(text[split.upperBound...])
    var fields: [(name: String, value: String)] = []
    for line in header.crlfLines {
        require(line.utf8.count <= 998, "header line of \(line.utf8.count) octets")
        if line.hasPrefix(" ") || line.hasPrefix("\t") {
            require(!fields.isEmpty, "header starts with a continuation line")
            fields[fields.count - 1].value += line
        } else {
            guard let colon = line.firstIndex(of: ":") else {
                require(false, "header line without a colon: \(line.debugDescription)")
                fatalError()
            }
            fields.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
    }
    require(fields.map(\.name) == expectedFields, "header fields \(fields.map(\.name)) instead of \(expectedFields)")
    for line in body.crlfLines {
        require(line.utf8.count <= 998, "body line of \(line.utf8.count) octets")
    }
    let contentType = fields.first { $0.name == "Content-Type" }?.value ?? ""
    if contentType.contains("multipart/alternative") {
        guard let b = contentType.range(of: "boundary=\"") else { require(false, "no boundary"); fatalError() }
        let boundary = String(contentType[b.upperBound...].prefix { $0 != "\"" })
        let delimiter = "\r\n--" + boundary
        let pieces = body.split(bytes: Array(delimiter.utf8))
        require(pieces.count == 4, "multipart body has \(pieces.count - 1) delimiters, expected 3")
        require(pieces[3] == "--\r\n", "bad closing delimiter: \(pieces[3].debugDescription)")
        func part(_ piece: String, type: String) -> [UInt8] {
            let head = "\r\nContent-Type: \(type); charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            require(piece.hasPrefix(head), "part header: \(piece.prefix(120).debugDescription)")
            return decodeQuotedPrintable(String(piece.dropFirst(head.count)))
        }
        return ParsedMessage(fields: fields, text: part(pieces[1], type: "text/plain"), html: part(pieces[2], type: "text/html"))
    }
    return ParsedMessage(fields: fields, text: decodeQuotedPrintable(body), html: nil)
}

/// How often `needle` occurs in `haystack` (bytes, overlapping allowed).
public func occurrences(of needle: String, in haystack: [UInt8]) -> Int {
    let n = Array(needle.utf8)
    guard !n.isEmpty, haystack.count >= n.count else { return 0 }
    var count = 0
    for start in 0...(haystack.count - n.count) where haystack[start] == n[0] && Array(haystack[start..<start + n.count]) == n {
        count += 1
    }
    return count
}

/// Splits a fuzz input into `count` UTF-8 strings at NUL bytes (invalid UTF-8 repaired,
/// missing parts empty).
public func nulSeparatedStrings(_ input: UnsafeBufferPointer<UInt8>, count: Int) -> [String] {
    var parts = input.split(separator: 0, maxSplits: count - 1, omittingEmptySubsequences: false)
        .map { String(decoding: $0, as: UTF8.self) }
    while parts.count < count { parts.append("") }
    return parts
}
