import Crypto
import Foundation

/// What a signature becomes before it is appended: its canonical bodies, salt and hashes.
extension Ledger {
    /// 16 random bytes from the system's generator (two draws, not sixteen).
    static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var salt = [UInt8](repeating: 0, count: 16)
        salt.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 8, as: UInt64.self)
        }
        return salt
    }

    /// The two halves of a signature's entry, each one canonical JSON object.
    enum SignaturePart {
        /// The non-personal part, which the entry holds (same bytes as `CanonicalJSON.encode`
        /// of the equivalent dictionary, without the casts).
        case body
        /// The personal data, kept apart in `personal` and erased by `forget`.
        case personal

        fileprivate func write(_ signature: ValidSignature, to writer: inout CanonicalObjectWriter) {
            switch self {
            case .body:
                if let collector = signature.collector { writer.string("collector", collector) }
                if !signature.consents.isEmpty { writer.strings("consent", signature.consents) }
                if !signature.publicFields.isEmpty { writer.object("fields", signature.publicFields) }
                writer.string("source", signature.source)
            case .personal:
                if let comment = signature.comment { writer.string("comment", comment) }
                writer.string("email", signature.email)
                if !signature.personalFields.isEmpty { writer.object("fields", signature.personalFields) }
                writer.string("name", signature.name)
            }
        }
    }

    /// `part` of `signature` as canonical JSON.
    static func canonical(_ part: SignaturePart, of signature: ValidSignature) -> String {
        CanonicalObjectWriter.object { part.write(signature, to: &$0) }
    }

    /// Appends the bytes of `canonical(part, of: signature)` to `buffer`.
    static func appendCanonical(_ part: SignaturePart, of signature: ValidSignature, to buffer: inout [UInt8]) {
        CanonicalObjectWriter.append(to: &buffer) { part.write(signature, to: &$0) }
    }
}

/// A signature with everything computed that does not depend on the ledger's head.
public struct PreparedSignature: Sendable {
    let fingerprint: String
    /// The mailbox key (MailboxKeys.swift), under the rules of the ledger that prepared it.
    let mailboxKey: [UInt8]
    let at: String
    let body: String
    let personal: String
    let salt: [UInt8]
    let personalHash: String
}

/// Prepared signatures packed in one buffer, with no object per row: what the import's
/// reading thread hands to the writing one.
public struct PreparedBatch: Sendable {
    /// Per row: its fingerprint (64 hex digits), personal-data hash (64 hex digits), salt
    /// (16 bytes) and mailbox key (16 bytes), then its time, body and personal data; rows
    /// back to back.
    var bytes: [UInt8] = []
    var rows: [Row] = []

    struct Row: Sendable {
        var start: Int
        var atCount: Int
        var bodyCount: Int
        var personalCount: Int
        /// The fingerprint's raw bytes, for a bulk append's duplicate check.
        var key: FingerprintKey
        /// The mailbox key's raw bytes, likewise.
        var mailbox: FingerprintKey
    }

    /// Where a row's time starts: after fingerprint, personal-data hash, salt and mailbox key.
    static let fixedBytes = 160

    public init() {}

    /// Room for `rows` rows of about `bytesPerRow` bytes.
    public init(capacity rows: Int, bytesPerRow: Int = 384) {
        self.rows.reserveCapacity(rows)
        bytes.reserveCapacity(rows * bytesPerRow)
    }

    public var count: Int { rows.count }
}

/// Prepares signatures for one ledger (it holds that ledger's fingerprint key and rules).
public struct SignaturePreparer: @unchecked Sendable {
    // The salt source is used by the one thread that prepares.
    let hmac: KeyedHash
    let mailboxes: MailboxKeyMaker
    let salts = SaltSource()

    init(hmac: KeyedHash, rules: MailboxRules) {
        self.hmac = hmac
        mailboxes = MailboxKeyMaker(hmac: hmac, rules: rules)
    }

    /// Fingerprint, canonical bodies, salt and personal-data hash of `signature` made at `date`.
    public func prepare(_ signature: ValidSignature, at date: Date) -> PreparedSignature {
        var personal = Ledger.canonical(.personal, of: signature)
        let salt = salts.next()
        var hasher = SHA256()
        hasher.update(data: salt)
        personal.withUTF8 { hasher.update(data: UnsafeRawBufferPointer($0)) }
        let mac = hmac.code(signature.canonicalEmail)
        return PreparedSignature(fingerprint: Hex.encode(mac), mailboxKey: MailboxKeyMaker.key(mailboxes.code(for: signature, fingerprint: mac)),
                                 at: Timestamp.format(date), body: Ledger.canonical(.body, of: signature),
                                 personal: personal, salt: salt, personalHash: Hex.encode(hasher.finalize()))
    }

    /// The same as `prepare(_:at:)`, appended to `batch` without allocating per row.
    public func prepare(_ signature: ValidSignature, at date: Date, into batch: inout PreparedBatch) {
        let mac = hmac.code(signature.canonicalEmail)
        let start = batch.bytes.count
        // Fingerprint and (until it is known) personal-data hash.
        batch.bytes.append(contentsOf: repeatElement(0, count: 128))
        let key = mac.withUnsafeBytes { raw in
            batch.bytes.withUnsafeMutableBytes { Hex.write(raw, to: $0.baseAddress! + start) }
            return FingerprintKey(raw)
        }
        salts.next(appendingTo: &batch.bytes)
        let mailbox = mailboxes.code(for: signature, fingerprint: mac).withUnsafeBytes { raw in
            let key = UnsafeRawBufferPointer(rebasing: raw[..<MailboxKeyMaker.keyLength])
            batch.bytes.append(contentsOf: key)
            return FingerprintKey(mailboxKey: key)
        }
        Timestamp.append(date, to: &batch.bytes)
        let bodyStart = batch.bytes.count
        Ledger.appendCanonical(.body, of: signature, to: &batch.bytes)
        let personalStart = batch.bytes.count
        Ledger.appendCanonical(.personal, of: signature, to: &batch.bytes)
        let end = batch.bytes.count
        batch.bytes.withUnsafeMutableBytes { bytes in
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[(start + 128)..<(start + 144)]))
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[personalStart..<end]))
            hasher.finalize().withUnsafeBytes { Hex.write($0, to: bytes.baseAddress! + start + 64) }
        }
        batch.rows.append(PreparedBatch.Row(start: start, atCount: bodyStart - start - PreparedBatch.fixedBytes, bodyCount: personalStart - bodyStart,
                                            personalCount: end - personalStart, key: key, mailbox: mailbox))
    }
}

/// 16-byte salts cut from a buffer refilled from /dev/urandom 4 KiB at a time
/// (one system call per 256 salts instead of two per salt).
final class SaltSource {
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var offset = 4096
    private let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    deinit { if urandom >= 0 { close(urandom) } }

    func next() -> [UInt8] {
        if offset == buffer.count { refill() }
        defer { offset += 16 }
        return Array(buffer[offset..<(offset + 16)])
    }

    /// Appends the next salt to `out`.
    func next(appendingTo out: inout [UInt8]) {
        if offset == buffer.count { refill() }
        out.append(contentsOf: buffer[offset..<(offset + 16)])
        offset += 16
    }

    private func refill() {
        buffer.withUnsafeMutableBytes { bytes in
            var filled = 0
            if urandom >= 0 {
                while filled < bytes.count {
                    let got = read(urandom, bytes.baseAddress! + filled, bytes.count - filled)
                    if got > 0 { filled += got } else if got < 0 && errno == EINTR { continue } else { break }
                }
            }
            // Should /dev/urandom be unreadable, the system generator fills the rest.
            var generator = SystemRandomNumberGenerator()
            while filled < bytes.count {
                bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: filled, as: UInt64.self)
                filled += 8
            }
        }
        offset = 0
    }
}
