import _CryptoExtras
import Crypto
import Foundation

/// DKIM signing by muster itself (RFC 6376), with `rsa-sha256` or `ed25519-sha256`
/// (RFC 8463), so that a collective whose relay does not sign still sends mail that a
/// receiver can tie to its domain.
///
/// The signature covers the body (its SHA-256, `bh=`) and the headers named in `h=`,
/// canonicalised `relaxed/relaxed` by default (`simple` exists for the RFC's test
/// vectors). `From` is signed twice (over-signed), as are `Subject`, `Date`, `To` and
/// `Message-ID` when present, so that a second such header added in transit breaks the
/// signature instead of being shown to the reader. docs/mail.md has the setup.
public struct DKIMSigner: Sendable {
    public enum Algorithm: String, Sendable {
        case rsaSHA256 = "rsa-sha256"
        case ed25519SHA256 = "ed25519-sha256"
    }

    public enum Canonicalization: String, Sendable {
        case simple, relaxed
    }

    enum Key: @unchecked Sendable {
        case rsa(_RSA.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    /// The signing domain (`d=`), ASCII.
    public let domain: String
    /// The selector (`s=`): the key is published at `<selector>._domainkey.<domain>`.
    public let selector: String
    let key: Key
    public var headerCanonicalization: Canonicalization = .relaxed
    public var bodyCanonicalization: Canonicalization = .relaxed

    public var algorithm: Algorithm {
        switch key {
        case .rsa: return .rsaSHA256
        case .ed25519: return .ed25519SHA256
        }
    }

    /// Headers signed when present, in this order; those in `overSigned` are named once
    /// more than they occur (RFC 6376 §8.15), so an added one fails verification.
    static let signedHeaders = ["from", "to", "cc", "reply-to", "subject", "date", "message-id", "mime-version", "content-type",
                                "list-id", "list-unsubscribe", "list-unsubscribe-post", "auto-submitted"]
    static let overSigned: Set<String> = ["from", "to", "subject", "date", "message-id", "reply-to", "cc"]

    init(domain: String, selector: String, key: Key) {
        self.domain = domain
        self.selector = selector
        self.key = key
    }

    /// A signer for `domain`/`selector` with the private key in `pem` (PKCS#8 for
    /// Ed25519 as `openssl genpkey -algorithm ed25519` writes it, PKCS#1 or PKCS#8 for RSA
    /// of 2048 bits or more). `source` names the key in errors.
    public init(domain: String, selector: String, pem: String, source: String) throws(DKIMError) {
        guard Self.isDomain(domain) else { throw .setting("dkim.domain '\(domain)' is not a domain name (ASCII, as in example.org)") }
        guard Self.isSelector(selector) else { throw .setting("dkim.selector '\(selector)' is not a selector (letters, digits, hyphens, dots)") }
        self.domain = domain.lowercased()
        self.selector = selector
        if let seed = Self.ed25519Seed(pem: pem) {
            do {
                key = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: seed))
            } catch {
                throw .key(source, "its Ed25519 key cannot be read")
            }
        } else if pem.contains("PRIVATE KEY") {
            do {
                let rsa = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
                key = .rsa(rsa)
            } catch {
                throw .key(source, "it holds no RSA key of 2048 bits or more, nor an Ed25519 key (\(error))")
            }
        } else {
            throw .key(source, "it is not a PEM private key (-----BEGIN PRIVATE KEY-----)")
        }
    }

    /// The DNS TXT record that publishes this key, at `<selector>._domainkey.<domain>`.
    public var dnsRecord: String {
        switch key {
        case .rsa: return "v=DKIM1; k=rsa; p=" + publicKeyBase64
        case .ed25519: return "v=DKIM1; k=ed25519; p=" + publicKeyBase64
        }
    }

    /// The public key as the `p=` of `dnsRecord`.
    public var publicKeyBase64: String {
        switch key {
        case .rsa(let rsa): return rsa.publicKey.derRepresentation.base64EncodedString()
        case .ed25519(let ed): return ed.publicKey.rawRepresentation.base64EncodedString()
        }
    }

    /// `message` (CRLF line endings, as `MIMEMessage` writes it) with a `DKIM-Signature`
    /// header in front.
    ///
    /// Nothing of the message is copied to canonicalise it: the header fields are found as
    /// ranges, only the signed ones are canonicalised, and the body is canonicalised as it
    /// streams into SHA-256 (`canonicalizeBody`). The only copy is the signed message itself.
    public func sign(_ message: [UInt8], at date: Date) throws(DKIMError) -> [UInt8] {
        let (fields, bodyStart) = Self.headerFields(message)
        let present = fields.map(\.name)
        var names: [String] = []
        for name in Self.signedHeaders {
            let count = present.reduce(0) { $0 + ($1 == name ? 1 : 0) }
            if count > 0 { names.append(contentsOf: repeatElement(name, count: count)) }
        }
        for name in Self.signedHeaders where Self.overSigned.contains(name) && present.contains(name) { names.append(name) }
        guard names.contains("from") else { throw .message("it has no From header") }
        let tags = "v=1; a=\(algorithm.rawValue); c=\(headerCanonicalization.rawValue)/\(bodyCanonicalization.rawValue);\r\n\td=\(domain); s=\(selector); t=\(Int(date.timeIntervalSince1970));\r\n\th=\(Self.foldList(names));\r\n\tbh=\(Self.bodyHash(message, from: bodyStart, bodyCanonicalization));\r\n\tb="
        let signature = try self.signature(message, fields: fields, signed: names, tags: tags)
        var out = Array("DKIM-Signature: \(tags)\(Self.fold(signature))\r\n".utf8)
        out.reserveCapacity(out.count + message.count)
        out.append(contentsOf: message)
        return out
    }

    /// The `b=` value for a `DKIM-Signature` whose tags up to and including `b=` are
    /// `tags`, over the header `fields` of `message` named in `signed` (bottom-most first
    /// for repeats; a name with no field left counts as an empty, unsigned one, RFC 6376
    /// §5.4.2).
    func signature(_ message: [UInt8], fields: [Field], signed: [String], tags: String) throws(DKIMError) -> String {
        var hasher = SHA256()
        var data: [UInt8] = []
        data.reserveCapacity(1024)
        var used = [Bool](repeating: false, count: fields.count)
        message.withUnsafeBufferPointer { bytes in
            for name in signed {
                guard let index = fields.indices.reversed().first(where: { !used[$0] && fields[$0].name == name }) else { continue }
                used[index] = true
                Self.appendCanonical(bytes, fields[index], headerCanonicalization, to: &data)
                data += [13, 10]
            }
        }
        let own = Array("DKIM-Signature: \(tags)".utf8)
        own.withUnsafeBufferPointer { bytes in
            Self.appendCanonical(bytes, Field(bytes, start: 0, end: bytes.count), headerCanonicalization, to: &data)
        }
        hasher.update(data: data)
        let digest = hasher.finalize()
        switch key {
        case .rsa(let rsa):
            do {
                return try rsa.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation.base64EncodedString()
            } catch {
                throw .message("RSA signing failed (\(error))")
            }
        case .ed25519(let ed):
            // RFC 8463 §3: Ed25519 (PureEdDSA) over the SHA-256 of the data.
            do {
                return try ed.signature(for: Data(digest)).base64EncodedString()
            } catch {
                throw .message("Ed25519 signing failed (\(error))")
            }
        }
    }

    // MARK: - Canonicalisation (RFC 6376 §3.4)

    /// One header field where it stands in the message: `start..<end` is its whole raw
    /// text (name, colon, value, folding) without the final line end; `colon` is the index
    /// of its first colon (`end` if none); `name` is the name before it, trimmed and
    /// lower-cased.
    struct Field: Equatable {
        let start: Int
        let colon: Int
        let end: Int
        let name: String

        init(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int) {
            self.start = start
            self.end = end
            var colon = start
            while colon < end, bytes[colon] != UInt8(ascii: ":") { colon += 1 }
            self.colon = colon
            var from = start, to = colon
            while from < to, DKIMSigner.isWSP(bytes[from]) { from += 1 }
            while to > from, DKIMSigner.isWSP(bytes[to - 1]) { to -= 1 }
            let raw = UnsafeBufferPointer(rebasing: bytes[from..<to])
            if raw.allSatisfy({ $0 < 0x80 }) {
                name = String(unsafeUninitializedCapacity: raw.count) { out in
                    for (index, byte) in raw.enumerated() { out[index] = (byte >= 65 && byte <= 90) ? byte + 32 : byte }
                    return raw.count
                }
            } else {
                name = String(decoding: raw, as: UTF8.self).lowercased()
            }
        }
    }

    /// The header fields of `message` and where its body starts (after the first empty
    /// line; `message.count` when there is none). A line starting with WSP continues the
    /// field before it.
    static func headerFields(_ message: [UInt8]) -> (fields: [Field], bodyStart: Int) {
        message.withUnsafeBufferPointer { bytes in
            var fields: [Field] = []
            fields.reserveCapacity(16)
            var fieldStart = -1, fieldEnd = -1
            func flush() {
                if fieldStart >= 0, fieldEnd > fieldStart { fields.append(Field(bytes, start: fieldStart, end: fieldEnd)) }
                fieldStart = -1
            }
            var index = 0
            let count = bytes.count
            while index < count {
                var lineEnd = index
                while lineEnd < count, bytes[lineEnd] != 10 { lineEnd += 1 }
                let contentEnd = lineEnd > index && bytes[lineEnd - 1] == 13 ? lineEnd - 1 : lineEnd
                if contentEnd == index {
                    flush()
                    return (fields, min(lineEnd + 1, count))
                }
                if isWSP(bytes[index]), fieldStart >= 0 {
                    fieldEnd = contentEnd // a continuation line
                } else {
                    flush()
                    fieldStart = index
                    fieldEnd = contentEnd
                }
                index = lineEnd + 1
            }
            flush()
            return (fields, count)
        }
    }

    static func isWSP(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }

    /// Appends `field` canonicalised to `out`. Simple: as it stands, every line end as
    /// CRLF. Relaxed: name lower-cased; value unfolded, runs of WSP to one space, WSP at
    /// both ends of the value and around the colon removed.
    static func appendCanonical(_ bytes: UnsafeBufferPointer<UInt8>, _ field: Field, _ mode: Canonicalization, to out: inout [UInt8]) {
        switch mode {
        case .simple:
            var previous: UInt8 = 0
            for byte in bytes[field.start..<field.end] {
                if byte == 10 && previous != 13 { out.append(13) }
                out.append(byte)
                previous = byte
            }
        case .relaxed:
            out.append(contentsOf: field.name.utf8)
            out.append(UInt8(ascii: ":"))
            var pendingSpace = false, started = false
            var index = min(field.colon + 1, field.end)
            while index < field.end {
                let byte = bytes[index]
                index += 1
                if byte == 13 || byte == 10 { continue }
                if isWSP(byte) {
                    pendingSpace = true
                } else {
                    if pendingSpace && started { out.append(32) }
                    pendingSpace = false
                    started = true
                    out.append(byte)
                }
            }
        }
    }

    /// The base64 SHA-256 of the canonical body of `message` (which starts at `bodyStart`).
    static func bodyHash(_ message: [UInt8], from bodyStart: Int, _ mode: Canonicalization) -> String {
        var hasher = SHA256()
        canonicalizeBody(message, from: bodyStart, mode) { hasher.update(bufferPointer: $0) }
        return Data(hasher.finalize()).base64EncodedString()
    }

    /// The canonical body, as bytes (for tests; signing streams it into the hash).
    static func canonicalBody(_ message: [UInt8], from bodyStart: Int, _ mode: Canonicalization) -> [UInt8] {
        var out: [UInt8] = []
        canonicalizeBody(message, from: bodyStart, mode) { out.append(contentsOf: $0) }
        return out
    }

    /// Canonicalises the body (`message` from `bodyStart`) in one pass, handing the result
    /// to `sink` in pieces of up to 16 KiB from one scratch buffer: lines end at LF (a CR
    /// right before it, or at the very end, belongs to the line end); relaxed turns runs of
    /// WSP into one space and drops WSP at line ends; empty lines are held back until a
    /// line with content follows, so those at the end are dropped; a last line without a
    /// line end gets one. An empty body is "" relaxed, CRLF simple (RFC 6376 §3.4.3, §3.4.4).
    static func canonicalizeBody(_ message: [UInt8], from bodyStart: Int, _ mode: Canonicalization,
                                 into sink: (UnsafeRawBufferPointer) -> Void) {
        let capacity = 16 * 1024
        let relaxed = mode == .relaxed
        message.withUnsafeBufferPointer { bytes in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { scratch in
                var used = 0
                var wrote = false
                func flush() {
                    if used > 0 { sink(UnsafeRawBufferPointer(start: scratch.baseAddress, count: used)) }
                    used = 0
                }
                @inline(__always) func put(_ byte: UInt8) {
                    if used == capacity { flush() }
                    scratch[used] = byte
                    used += 1
                }
                var blank = 0 // empty lines held back
                var index = min(bodyStart, bytes.count)
                let count = bytes.count
                while index < count {
                    var content = false, space = false
                    while index < count {
                        let byte = bytes[index]
                        if byte == 10 { break }
                        index += 1
                        if byte == 13 && (index == count || bytes[index] == 10) { continue }
                        if relaxed && isWSP(byte) {
                            space = true
                            continue
                        }
                        if !content {
                            content = true
                            while blank > 0 { put(13); put(10); blank -= 1 }
                        }
                        if space {
                            put(32)
                            space = false
                        }
                        put(byte)
                    }
                    if content {
                        put(13); put(10)
                        wrote = true
                    } else {
                        blank += 1
                    }
                    index += 1 // the LF
                }
                if !wrote && !relaxed { put(13); put(10) }
                flush()
            }
        }
    }

    /// The `h=` names joined by colons, folded after a colon (RFC 6376 allows FWS there)
    /// so that no line passes 72 characters.
    static func foldList(_ names: [String]) -> String {
        var out = "", line = 2 // after "h="
        for (index, name) in names.enumerated() {
            let piece = name + (index < names.count - 1 ? ":" : "")
            if line + piece.count > 72 {
                out += "\r\n\t"
                line = 1
            }
            out += piece
            line += piece.count
        }
        return out
    }

    /// `b=`'s base64 folded into lines of at most 72 characters.
    static func fold(_ base64: String) -> String {
        var parts: [Substring] = []
        var rest = Substring(base64)
        while rest.count > 72 {
            parts.append(rest.prefix(72))
            rest = rest.dropFirst(72)
        }
        parts.append(rest)
        return parts.joined(separator: "\r\n\t")
    }

    // MARK: - Keys and settings

    /// The 32-byte seed of an Ed25519 PKCS#8 PEM (RFC 8410: the DER is a fixed 16-byte
    /// prefix and the seed), or nil for anything else.
    static func ed25519Seed(pem: String) -> [UInt8]? {
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: "-----BEGIN PRIVATE KEY-----"),
              let end = lines.firstIndex(of: "-----END PRIVATE KEY-----"), begin < end,
              let der = Data(base64Encoded: lines[(begin + 1)..<end].joined()) else { return nil }
        let prefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
        let bytes = [UInt8](der)
        guard bytes.count == 48, Array(bytes.prefix(16)) == prefix else { return nil }
        return Array(bytes.suffix(32))
    }

    /// A new key's PEM (PKCS#8): Ed25519 by default, or RSA of `bits`.
    public static func newKeyPEM(algorithm: Algorithm, bits: Int = 2048) throws -> String {
        switch algorithm {
        case .ed25519SHA256:
            let key = Curve25519.Signing.PrivateKey()
            let der = Data([0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]) + key.rawRepresentation
            let body = der.base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
            return "-----BEGIN PRIVATE KEY-----\n\(body)\n-----END PRIVATE KEY-----\n"
        case .rsaSHA256:
            let size: _RSA.Signing.KeySize = bits >= 4096 ? .bits4096 : bits >= 3072 ? .bits3072 : .bits2048
            return try _RSA.Signing.PrivateKey(keySize: size).pkcs8PEMRepresentation
        }
    }

    static func isDomain(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && text.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" }
        }
    }

    static func isSelector(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 63 && text.first != "." && text.last != "."
            && text.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "." || $0 == "_" }
    }
}

/// Why a DKIM key, setting or signature could not be used.
public enum DKIMError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A `dkim:` setting in muster.yaml is wrong.
    case setting(String)
    /// The key file (named) cannot be used, and why.
    case key(String, String)
    /// The message cannot be signed.
    case message(String)

    public var description: String {
        switch self {
        case .setting(let text): return text
        case .key(let file, let why): return "the DKIM key \(file) cannot be used: \(why)"
        case .message(let why): return "cannot DKIM-sign the message: \(why)"
        }
    }
}
