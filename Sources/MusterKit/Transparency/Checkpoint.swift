import Crypto
import Foundation

/// Why a note, key or checkpoint was refused.
public struct TransparencyError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An Ed25519 verifier key in the C2SP signed-note `vkey` form:
/// `<name>+<8 hex digits of key ID>+<base64(0x01 ‖ 32-byte public key)>`.
public struct NoteVerifierKey: Sendable, Equatable {
    public let name: String
    public let keyID: UInt32
    public let publicKey: [UInt8]

    /// The key ID: the first 4 bytes (big-endian) of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
    static func keyID(name: String, publicKey: [UInt8]) -> UInt32 {
        var hasher = SHA256()
        hasher.update(data: Array(name.utf8) + [0x0A, 0x01] + publicKey)
        return Array(hasher.finalize()).prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A key name: non-empty, no white space, no `+` (C2SP signed-note).
    static func checkName(_ name: String) throws {
        guard !name.isEmpty, !name.unicodeScalars.contains(where: { $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 }) else {
            throw TransparencyError("'\(name)' cannot be a key name (it must be non-empty, without spaces or '+')")
        }
    }

    init(name: String, publicKey: [UInt8]) {
        self.name = name
        self.publicKey = publicKey
        self.keyID = Self.keyID(name: name, publicKey: publicKey)
    }

    public init(parsing text: String) throws {
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = line.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].count == 8, let id = UInt32(parts[1], radix: 16),
              let key = Data(base64Encoded: String(parts[2])), key.count == 33 else {
            throw TransparencyError("not a verifier key of the form <name>+<8 hex digits>+<base64 key>")
        }
        guard key.first == 0x01 else { throw TransparencyError("the verifier key is not an Ed25519 key (its type byte is \(key.first!), not 1)") }
        try Self.checkName(String(parts[0]))
        self.init(name: String(parts[0]), publicKey: Array(key.dropFirst()))
        guard keyID == id else { throw TransparencyError("the verifier key's ID \(parts[1]) does not match its name and key (\(String(format: "%08x", keyID)))") }
    }

    /// The one-line text form.
    public var text: String { "\(name)+\(String(format: "%08x", keyID))+\(Data([0x01] + publicKey).base64EncodedString())" }

    func isValid(signature: [UInt8], for message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }
}

/// An Ed25519 signing key, stored as `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ 32-byte seed)>`
/// (the form of Go's golang.org/x/mod/sumdb/note).
public struct NoteSigner: @unchecked Sendable {
    // The key is an immutable value (swift-crypto does not mark it Sendable).

    public let name: String
    let privateKey: Curve25519.Signing.PrivateKey

    public var verifier: NoteVerifierKey { NoteVerifierKey(name: name, publicKey: Array(privateKey.publicKey.rawRepresentation)) }

    public static func generate(name: String) throws -> NoteSigner {
        try NoteVerifierKey.checkName(name)
        return NoteSigner(name: name, privateKey: Curve25519.Signing.PrivateKey())
    }

    init(name: String, privateKey: Curve25519.Signing.PrivateKey) {
        self.name = name
        self.privateKey = privateKey
    }

    public init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY", let id = UInt32(parts[3], radix: 16),
              let seed = Data(base64Encoded: String(parts[4])), seed.count == 33, seed.first == 0x01,
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed.dropFirst()) else {
            throw TransparencyError("not a signing key of the form PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
        }
        try NoteVerifierKey.checkName(String(parts[2]))
        self.init(name: String(parts[2]), privateKey: key)
        guard verifier.keyID == id else { throw TransparencyError("the signing key's ID does not match its key") }
    }

    public var text: String {
        "PRIVATE+KEY+\(name)+\(String(format: "%08x", verifier.keyID))+\(Data([0x01] + privateKey.rawRepresentation).base64EncodedString())"
    }

    /// The note `text` (which ends with a newline) signed: the text, a blank line, and
    /// `— <name> <base64(key ID ‖ signature)>`.
    public func sign(_ text: String) throws -> String {
        "\(text)\n\(try signatureLine(text))"
    }

    /// `— <name> <base64(key ID ‖ signature of text)>` and a newline.
    func signatureLine(_ text: String) throws -> String {
        let signature = try privateKey.signature(for: Array(text.utf8))
        let id = verifier.keyID
        let blob = [UInt8(id >> 24), UInt8(id >> 16 & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF)] + Array(signature)
        return "\u{2014} \(name) \(Data(blob).base64EncodedString())\n"
    }

    /// `note` with this key's signature line added after the others (a witness's
    /// cosignature, docs/transparency.md "Witnesses"): the text is unchanged, so every
    /// signature already on it still verifies. A note this key already signed is returned
    /// as it is.
    public func cosign(_ note: String) throws -> String {
        let signed = try SignedNote(parsing: note)
        if signed.signatures.contains(where: { $0.name == name && $0.keyID == verifier.keyID }) { return note }
        return note + (try signatureLine(signed.text))
    }
}

/// A C2SP signed note: a text and one or more signature lines.
public struct SignedNote: Sendable, Equatable {
    /// The signed text, ending with a newline.
    public let text: String
    public struct Signature: Sendable, Equatable {
        public let name: String
        public let keyID: UInt32
        public let signature: [UInt8]
    }
    public let signatures: [Signature]

    public init(parsing note: String) throws {
        guard note.utf8.count <= 1 << 20 else { throw TransparencyError("the note is over 1 MiB") }
        guard !note.contains("\r") else { throw TransparencyError("the note holds a carriage return (notes use LF line ends only)") }
        guard let blank = note.range(of: "\n\n", options: .backwards) else {
            throw TransparencyError("the note has no blank line before its signatures: it is truncated or not a signed note")
        }
        text = String(note[..<blank.lowerBound]) + "\n"
        let block = note[blank.upperBound...]
        guard block.hasSuffix("\n") else { throw TransparencyError("the note's last signature line does not end with a newline: the note is truncated") }
        var signatures: [Signature] = []
        for line in block.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0] == "\u{2014}", let blob = Data(base64Encoded: String(fields[2])), blob.count > 4 else {
                throw TransparencyError("the note's signature line '\(line.prefix(80))' is malformed (truncated?)")
            }
            let id = blob.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            signatures.append(Signature(name: String(fields[1]), keyID: id, signature: Array(blob.dropFirst(4))))
        }
        guard !signatures.isEmpty else { throw TransparencyError("the note has no signature lines") }
        self.signatures = signatures
    }

    /// Throws unless a signature by `key` (same name and key ID) verifies over the text.
    public func verify(with key: NoteVerifierKey) throws {
        guard let signature = signatures.first(where: { $0.name == key.name && $0.keyID == key.keyID }) else {
            let names = signatures.map { "\($0.name) (key \(String(format: "%08x", $0.keyID)))" }.joined(separator: ", ")
            throw TransparencyError("the note is not signed by the key \(key.name) (key \(String(format: "%08x", key.keyID))); it is signed by \(names)")
        }
        guard signature.signature.count == 64, key.isValid(signature: signature.signature, for: Array(text.utf8)) else {
            throw TransparencyError("the signature by \(key.name) does not verify: the note was changed after it was signed")
        }
    }
}

/// A tlog checkpoint (C2SP tlog-checkpoint): origin, tree size, root hash, then muster's
/// extension lines `signatures N` and `time T`.
public struct Checkpoint: Sendable, Equatable {
    public let origin: String
    public let size: Int64
    public let root: Merkle.Hash
    /// The signatures that count among the first `size` entries (forgotten ones included,
    /// withdrawn ones not).
    public let signatures: Int64?
    /// When it was made (UTC, muster's timestamp form).
    public let time: String?
    /// Extension lines muster does not know, kept as they are.
    public let otherExtensions: [String]

    public init(origin: String, size: Int64, root: Merkle.Hash, signatures: Int64?, time: String?, otherExtensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.root = root
        self.signatures = signatures
        self.time = time
        self.otherExtensions = otherExtensions
    }

    /// The note text (what is signed).
    public var body: String {
        var lines = [origin, String(size), Data(root).base64EncodedString()]
        if let signatures { lines.append("signatures \(signatures)") }
        if let time { lines.append("time \(time)") }
        lines += otherExtensions
        return lines.joined(separator: "\n") + "\n"
    }

    public init(body: String) throws {
        var lines = body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.last == "" else { throw TransparencyError("the checkpoint text does not end with a newline") }
        lines.removeLast()
        guard lines.count >= 3 else { throw TransparencyError("the checkpoint has \(lines.count) line\(lines.count == 1 ? "" : "s"); it needs origin, tree size and root hash") }
        guard !lines[0].isEmpty else { throw TransparencyError("the checkpoint's origin line is empty") }
        guard let size = Int64(lines[1]), size >= 0, String(size) == lines[1] else {
            throw TransparencyError("the checkpoint's tree size '\(lines[1].prefix(40))' is not a decimal number")
        }
        guard let root = Data(base64Encoded: lines[2]), root.count == 32 else {
            throw TransparencyError("the checkpoint's root hash '\(lines[2].prefix(60))' is not 32 bytes of base64")
        }
        var signatures: Int64?, time: String?, others: [String] = []
        for line in lines.dropFirst(3) {
            guard !line.isEmpty else { throw TransparencyError("the checkpoint has an empty extension line") }
            if line.hasPrefix("signatures "), signatures == nil, let count = Int64(line.dropFirst(11)), count >= 0 {
                signatures = count
            } else if line.hasPrefix("time "), time == nil {
                time = String(line.dropFirst(5))
            } else {
                others.append(line)
            }
        }
        self.init(origin: lines[0], size: size, root: Array(root), signatures: signatures, time: time, otherExtensions: others)
    }

    /// Parses a signed checkpoint and checks its signature by `key` and its origin.
    public static func verified(_ note: String, key: NoteVerifierKey, origin: String? = nil) throws -> Checkpoint {
        let signed = try SignedNote(parsing: note)
        let checkpoint = try Checkpoint(body: signed.text)
        if let origin, checkpoint.origin != origin {
            throw TransparencyError("the checkpoint is for '\(checkpoint.origin)', not for this campaign ('\(origin)')")
        }
        try signed.verify(with: key)
        return checkpoint
    }
}
