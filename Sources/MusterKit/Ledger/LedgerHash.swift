import Crypto

/// The hashes that chain the ledger.
public enum LedgerHash {
    private static let entryPrefix = Array("muster-ledger-v1\0".utf8)

    /// Appends the bytes `entry` hashes for these fields (given as their UTF-8 bytes).
    static func appendEntryFields(seq: Int64, kind: String, at: UnsafeRawBufferPointer, fingerprint: UnsafeRawBufferPointer,
                                  body: UnsafeRawBufferPointer, personalHash: UnsafeRawBufferPointer, prev: UnsafeRawBufferPointer,
                                  to buffer: inout [UInt8]) {
        buffer.append(contentsOf: entryPrefix)
        buffer.append(contentsOf: String(seq).utf8)
        buffer.append(0); buffer.append(contentsOf: kind.utf8)
        buffer.append(0); buffer.append(contentsOf: at)
        buffer.append(0); buffer.append(contentsOf: fingerprint)
        buffer.append(0); buffer.append(contentsOf: body)
        buffer.append(0); buffer.append(contentsOf: personalHash)
        buffer.append(0); buffer.append(contentsOf: prev)
    }

    /// SHA-256 over `muster-ledger-v1`, then each field NUL-separated (no field can hold NUL).
    public static func entry(seq: Int64, kind: String, at: String, fingerprint: String?, body: String,
                             personalHash: String?, prev: String) -> String {
        Hex.encode(SHA256.hash(data: entryBytes(seq: seq, kind: kind, at: at, fingerprint: fingerprint, body: body,
                                                personalHash: personalHash, prev: prev)))
    }

    /// The bytes `entry` hashes ("muster-ledger-v1\0\(seq)\0…", gathered in one buffer),
    /// which are also the entry's leaf in the Merkle tree (Transparency/LedgerTree.swift).
    public static func entryBytes(seq: Int64, kind: String, at: String, fingerprint: String?, body: String,
                                  personalHash: String?, prev: String) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(320 + body.utf8.count)
        buffer.append(contentsOf: entryPrefix)
        buffer.append(contentsOf: String(seq).utf8)
        buffer.append(0); buffer.append(contentsOf: kind.utf8)
        buffer.append(0); buffer.append(contentsOf: at.utf8)
        buffer.append(0); if let fingerprint { buffer.append(contentsOf: fingerprint.utf8) }
        buffer.append(0); buffer.append(contentsOf: body.utf8)
        buffer.append(0); if let personalHash { buffer.append(contentsOf: personalHash.utf8) }
        buffer.append(0); buffer.append(contentsOf: prev.utf8)
        return buffer
    }

    /// SHA-256 of the salt followed by the personal data's bytes.
    public static func personal(salt: [UInt8], data: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: data)
        return Hex.encode(hasher.finalize())
    }
}
