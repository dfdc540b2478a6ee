import Crypto
import Foundation
import Testing
@testable import MusterKit

/// Test helpers over `DKIMSigner`'s in-place canonicalisation.
enum DKIMCanonicalForm {
    static func header(_ message: [UInt8], _ field: DKIMSigner.Field, _ mode: DKIMSigner.Canonicalization) -> [UInt8] {
        var out: [UInt8] = []
        message.withUnsafeBufferPointer { DKIMSigner.appendCanonical($0, field, mode, to: &out) }
        return out
    }
}

/// The canonicalisation muster used before it streamed (commit 8d9842e): each message
/// copied line by line into arrays. Kept here as the reference the streaming one must
/// match byte for byte.
enum ReferenceDKIM {
    struct Header {
        let name: String
        let raw: [UInt8]
    }

    static func split(_ message: [UInt8]) -> (headers: [Header], body: ArraySlice<UInt8>) {
        var headers: [Header] = []
        var index = 0
        var current: [UInt8] = []
        func flush() {
            guard !current.isEmpty else { return }
            let colon = current.firstIndex(of: UInt8(ascii: ":")) ?? current.count
            let name = String(decoding: current[..<colon], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            headers.append(Header(name: name, raw: current))
            current = []
        }
        while index < message.count {
            let end = message[index...].firstIndex(of: 10) ?? message.count
            var line = Array(message[index..<end])
            if line.last == 13 { line.removeLast() }
            index = min(end + 1, message.count)
            if line.isEmpty {
                flush()
                return (headers, message[index...])
            }
            if line.first == 32 || line.first == 9 {
                current += [13, 10] + line
            } else {
                flush()
                current = line
            }
        }
        flush()
        return (headers, [])
    }

    static func isWSP(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }

    static func canonical(_ header: Header, _ mode: DKIMSigner.Canonicalization) -> [UInt8] {
        switch mode {
        case .simple:
            return header.raw
        case .relaxed:
            let colon = header.raw.firstIndex(of: UInt8(ascii: ":")) ?? header.raw.count
            var out = Array(header.name.lowercased().utf8)
            out.append(UInt8(ascii: ":"))
            var value: [UInt8] = []
            var pendingSpace = false
            for byte in header.raw[min(colon + 1, header.raw.count)...] where byte != 13 && byte != 10 {
                if isWSP(byte) {
                    pendingSpace = true
                } else {
                    if pendingSpace && !value.isEmpty { value.append(32) }
                    pendingSpace = false
                    value.append(byte)
                }
            }
            return out + value
        }
    }

    static func canonicalBody(_ body: ArraySlice<UInt8>, _ mode: DKIMSigner.Canonicalization) -> [UInt8] {
        var lines: [[UInt8]] = []
        var index = body.startIndex
        while index < body.endIndex {
            let end = body[index...].firstIndex(of: 10) ?? body.endIndex
            var line = Array(body[index..<end])
            if line.last == 13 { line.removeLast() }
            lines.append(line)
            index = end == body.endIndex ? end : end + 1
        }
        if mode == .relaxed {
            lines = lines.map { line in
                var out: [UInt8] = []
                var pendingSpace = false
                for byte in line {
                    if isWSP(byte) {
                        pendingSpace = true
                    } else {
                        if pendingSpace { out.append(32) }
                        pendingSpace = false
                        out.append(byte)
                    }
                }
                return out
            }
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        if lines.isEmpty { return mode == .simple ? [13, 10] : [] }
        var out: [UInt8] = []
        for line in lines { out += line; out += [13, 10] }
        return out
    }
}

/// The streaming canonicaliser against the copying one it replaced, on the edges where
/// they could part: empty bodies, blank lines at the end, runs of WSP, CRLF against lone
/// LF and lone CR, lines longer than the scratch buffer, 8-bit bytes; and on many
/// generated messages.
@Suite struct DKIMCanonicalisationTests {
    static let modes: [DKIMSigner.Canonicalization] = [.relaxed, .simple]

    static let bodies: [(String, [UInt8])] = [
        ("empty", []),
        ("one CRLF", Array("\r\n".utf8)),
        ("only blank lines", Array("\r\n\r\n\n\r\n".utf8)),
        ("only WSP lines", Array(" \r\n\t\t\r\n  \t \r\n".utf8)),
        ("trailing blank lines", Array("Hi.\r\n\r\nBye.\r\n\r\n\r\n".utf8)),
        ("trailing WSP-only lines", Array("Hi.\r\n \r\n\t\r\n".utf8)),
        ("blank lines between", Array("a\r\n\r\n\r\n \r\nb\r\n".utf8)),
        ("WSP runs", Array("  lead  and \t\t inner\t \tand trail \t \r\n\tTab\r\n".utf8)),
        ("lone LF", Array("one\ntwo  \n\nthree\n\n".utf8)),
        ("mixed CRLF and LF", Array("one\r\ntwo\n \nthree\r\n\n".utf8)),
        ("lone CR inside", Array("a\rb\r\r\nc \r d\r\n".utf8)),
        ("CR at the very end", Array("last\r".utf8)),
        ("CR CR at the end", Array("last\r\r".utf8)),
        ("no final line end", Array("no end  ".utf8)),
        ("no final line end after blank", Array("x\r\n\r\ny".utf8)),
        ("8-bit", [0xC3, 0xA9, 0x20, 0x20, 0xFF, 0x09, 0x80, 13, 10, 0xE2, 0x80, 0xAF, 32, 13, 10]),
        ("NUL and DEL", [0, 32, 32, 0x7F, 13, 10]),
        ("very long line", Array((String(repeating: "word  \t", count: 12_000) + "\r\n").utf8)),
        ("many blank lines then text", Array((String(repeating: "\r\n", count: 20_000) + "x\r\n").utf8)),
        ("very long WSP run", Array(("a" + String(repeating: " ", count: 40_000) + "b\r\n").utf8)),
    ]

    @Test func bodiesMatchTheCopyingCanonicaliser() {
        for (label, body) in Self.bodies {
            let message = Array("From: a@example.org\r\n\r\n".utf8) + body
            let (_, start) = DKIMSigner.headerFields(message)
            for mode in Self.modes {
                let expected = ReferenceDKIM.canonicalBody(ReferenceDKIM.split(message).body, mode)
                #expect(DKIMSigner.canonicalBody(message, from: start, mode) == expected, "\(label), \(mode)")
                #expect(DKIMSigner.bodyHash(message, from: start, mode) == Data(SHA256.hash(data: expected)).base64EncodedString(), "\(label), \(mode)")
            }
        }
    }

    static let headerBlocks: [(String, String)] = [
        ("plain", "From: Ana <ana@example.org>\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nbody\r\n"),
        ("folded", "Subject: a\r\n  long\r\n\tsubject \t\r\nFrom:x@example.org\r\n\r\n"),
        ("WSP around the colon", "SUBJECT \t:   spaced   out  \r\nFrom :\t a@example.org\r\n\r\n"),
        ("empty value", "X-Empty:\r\nX-Blank:   \r\nFrom: a@example.org\r\n\r\n"),
        ("lone LF", "From: a@example.org\nSubject: b\n  c\n\nbody\n"),
        ("no colon", "Not a header\r\nFrom: a@example.org\r\n\r\n"),
        ("8-bit value", "Subject: caf\u{E9} \u{2014}  \u{1F600}\r\nFrom: a@example.org\r\n\r\n"),
        ("no body", "From: a@example.org\r\nTo: b@example.org\r\n"),
        ("lone CR in value", "Subject: a\rb \r c\r\nFrom: a@example.org\r\n\r\n"),
        ("repeated", "Received: 1\r\nReceived: 2\r\nFrom: a@example.org\r\nFrom: b@example.org\r\n\r\n"),
    ]

    @Test func headersMatchTheCopyingCanonicaliser() {
        for (label, text) in Self.headerBlocks {
            let message = Array(text.utf8)
            let (fields, start) = DKIMSigner.headerFields(message)
            let (headers, body) = ReferenceDKIM.split(message)
            #expect(fields.map(\.name) == headers.map { $0.name.lowercased() }, "\(label)")
            #expect(start == body.startIndex || (body.isEmpty && start == message.count), "\(label)")
            for mode in Self.modes {
                #expect(fields.map { DKIMCanonicalForm.header(message, $0, mode) } == headers.map { ReferenceDKIM.canonical($0, mode) }, "\(label), \(mode)")
            }
        }
    }

    /// Many messages drawn from the bytes that matter (WSP, CR, LF, colon, 8-bit) by a
    /// seeded generator, so a failure can be replayed.
    @Test func generatedMessagesMatchTheCopyingCanonicaliser() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
        let alphabet: [UInt8] = [UInt8(ascii: "a"), UInt8(ascii: "B"), UInt8(ascii: ":"), 32, 32, 9, 13, 10, 10, 0xC3, 0xA9, 0xFF]
        for round in 0..<2_000 {
            let length = Int(next() % 200)
            var message = Array("From: a@example.org\r\n".utf8)
            message += (0..<length).map { _ in alphabet[Int(next() % UInt64(alphabet.count))] }
            let (fields, start) = DKIMSigner.headerFields(message)
            let (headers, body) = ReferenceDKIM.split(message)
            #expect(fields.count == headers.count, "round \(round)")
            for mode in Self.modes {
                #expect(DKIMSigner.canonicalBody(message, from: start, mode) == ReferenceDKIM.canonicalBody(body, mode), "round \(round), \(mode)")
            }
            // A name that runs over a line end (no colon on the field's first line) is never
            // one muster signs; the old code kept its line end as CRLF, the new one as it stands.
            for (field, header) in zip(fields, headers) where !header.name.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
                #expect(field.name == header.name.lowercased(), "round \(round)")
                for mode in Self.modes {
                    #expect(DKIMCanonicalForm.header(message, field, mode) == ReferenceDKIM.canonical(header, mode), "round \(round), \(mode)")
                }
            }
        }
    }
}
