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
    public func sign(_ message: [UInt8], at date: Date) throws(DKIMError) -> [UInt8] {
        let (headers, body) = Self.split(message)
        let present = headers.map { $0.name.lowercased() }
        var names: [String] = []
        for name in Self.signedHeaders where present.contains(name) {
            names.append(contentsOf: repeatElement(name, count: present.filter { $0 == name }.count))
        }
        for name in Self.signedHeaders where Self.overSigned.contains(name) && present.contains(name) { names.append(name) }
        guard names.contains("from") else { throw .message("it has no From header") }
        let tags = "v=1; a=\(algorithm.rawValue); c=\(headerCanonicalization.rawValue)/\(bodyCanonicalization.rawValue);\r\n\td=\(domain); s=\(selector); t=\(Int(date.timeIntervalSince1970));\r\n\th=\(Self.foldList(names));\r\n\tbh=\(Self.bodyHash(body, bodyCanonicalization));\r\n\tb="
        let signature = try self.signature(headers: headers, signed: names, tags: tags)
        var out = Array("DKIM-Signature: \(tags)\(Self.fold(signature))\r\n".utf8)
        out.reserveCapacity(out.count + message.count)
        out.append(contentsOf: message)
        return out
    }

    /// The `b=` value for a `DKIM-Signature` whose tags up to and including `b=` are
    /// `tags`, over `headers` named in `signed` (bottom-most first for repeats; a name
    /// with no header left counts as an empty, unsigned one, RFC 6376 §5.4.2).
    func signature(headers: [Header], signed: [String], tags: String) throws(DKIMError) -> String {
        var data: [UInt8] = []
        var used = Set<Int>()
        for name in signed {
            guard let index = headers.indices.reversed().first(where: { !used.contains($0) && headers[$0].name.lowercased() == name }) else { continue }
            used.insert(index)
            data += Self.canonical(headers[index], headerCanonicalization)
            data += [13, 10]
        }
        data += Self.canonical(Header(name: "DKIM-Signature", raw: Array("DKIM-Signature: \(tags)".utf8)), headerCanonicalization)
        let digest = SHA256.hash(data: data)
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

    /// One header field as it stands in the message: its name and its whole raw text
    /// (name, colon, value, folding), without the final CRLF.
    struct Header: Equatable {
        let name: String
        let raw: [UInt8]
    }

    /// The header fields and the body (everything after the first empty line).
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
                current += [13, 10] + line // a continuation line
            } else {
                flush()
                current = line
            }
        }
        flush()
        return (headers, [])
    }

    static func isWSP(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }

    static func canonical(_ header: Header, _ mode: Canonicalization) -> [UInt8] {
        switch mode {
        case .simple:
            return header.raw
        case .relaxed:
            // Name lower-cased; value unfolded, runs of WSP to one space, WSP at both
            // ends of the value and around the colon removed.
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

    /// The base64 SHA-256 of the canonical body.
    static func bodyHash(_ body: ArraySlice<UInt8>, _ mode: Canonicalization) -> String {
        Data(SHA256.hash(data: canonicalBody(body, mode))).base64EncodedString()
    }

    static func canonicalBody(_ body: ArraySlice<UInt8>, _ mode: Canonicalization) -> [UInt8] {
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
                return out // WSP at the end of a line is dropped
            }
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        // An empty body: "" for relaxed, CRLF for simple (RFC 6376 §3.4.3, §3.4.4).
        if lines.isEmpty { return mode == .simple ? [13, 10] : [] }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 2)
        for line in lines { out += line; out += [13, 10] }
        return out
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
