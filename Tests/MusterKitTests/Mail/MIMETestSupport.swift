import Foundation
@testable import MusterKit

/// Decodes RFC 2047 encoded words the way a mail client does (whitespace between
/// adjacent encoded words is dropped), for round-trip checks.
func decodeEncodedWords(_ value: String) -> String {
    let unfolded = value.replacingOccurrences(of: "\r\n", with: "")
    var result = ""
    var lastWasEncoded = false
    var pendingSpace = ""
    for piece in unfolded.split(separator: " ", omittingEmptySubsequences: false) {
        let word = String(piece)
        if word.hasPrefix("=?"), word.hasSuffix("?="), let decoded = decodeWord(word) {
            if !lastWasEncoded { result += pendingSpace }
            result += decoded
            lastWasEncoded = true
        } else {
            result += pendingSpace + word
            lastWasEncoded = false
        }
        pendingSpace = " "
    }
    return result
}

private func decodeWord(_ word: String) -> String? {
    let parts = word.dropFirst(2).dropLast(2).split(separator: "?", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0].uppercased() == "UTF-8" else { return nil }
    if parts[1].uppercased() == "B" {
        guard let data = Data(base64Encoded: String(parts[2])) else { return nil }
        return String(data: data, encoding: .utf8)
    }
    var bytes: [UInt8] = []
    var it = Array(parts[2].utf8).makeIterator()
    while let b = it.next() {
        if b == UInt8(ascii: "_") { bytes.append(0x20) }
        else if b == UInt8(ascii: "="), let h = it.next(), let l = it.next(),
                let v = UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16) { bytes.append(v) }
        else { bytes.append(b) }
    }
    return String(bytes: bytes, encoding: .utf8)
}

/// Decodes quoted-printable text (soft breaks removed, CRLF kept).
func decodeQuotedPrintable(_ text: String) -> String {
    var bytes: [UInt8] = []
    let input = Array(text.utf8)
    var i = 0
    while i < input.count {
        if input[i] == UInt8(ascii: "=") {
            if i + 2 < input.count, input[i + 1] == 0x0D, input[i + 2] == 0x0A { i += 3; continue }
            if i + 2 < input.count, let v = UInt8(String(decoding: input[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                bytes.append(v); i += 3; continue
            }
        }
        bytes.append(input[i]); i += 1
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Splits serialized message octets into header lines (unfolded map) and checks
/// line limits; returns nil when a bare CR or LF is present.
struct ParsedHeaders {
    var fields: [(name: String, value: String)] = []
    var rawLines: [String] = []
    func value(_ name: String) -> String? { fields.first { $0.name.lowercased() == name.lowercased() }?.value }
}

func headerBlock(of bytes: [UInt8]) -> ParsedHeaders {
    let text = String(decoding: bytes, as: UTF8.self)
    let head = text.components(separatedBy: "\r\n\r\n")[0]
    var parsed = ParsedHeaders()
    parsed.rawLines = head.components(separatedBy: "\r\n")
    for line in parsed.rawLines {
        if line.hasPrefix(" ") || line.hasPrefix("\t"), !parsed.fields.isEmpty {
            parsed.fields[parsed.fields.count - 1].value += "\r\n" + line
        } else if let colon = line.firstIndex(of: ":") {
            parsed.fields.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .init(charactersIn: " "))))
        }
    }
    return parsed
}

/// True when every line ends in CRLF (no bare CR or LF) and none exceeds 998 octets.
func hasOnlyCRLFAndShortLines(_ bytes: [UInt8]) -> Bool {
    var lineLength = 0
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        if b == 0x0D {
            guard i + 1 < bytes.count, bytes[i + 1] == 0x0A else { return false }
            lineLength = 0; i += 2; continue
        }
        if b == 0x0A { return false }
        lineLength += 1
        if lineLength > 998 { return false }
        i += 1
    }
    return true
}
