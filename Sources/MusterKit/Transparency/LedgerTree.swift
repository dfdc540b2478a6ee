import Crypto
import Foundation

/// The Merkle tree over the ledger's entries (docs/transparency.md).
///
/// Leaf n (0-based) is entry n + 1, and its leaf data is exactly the bytes the hash chain
/// hashes for that entry (`LedgerHash.entryBytes`). The table `merkle_nodes` keeps the
/// hash of every complete subtree of 16 leaves or more (`Merkle.storedLevel`), at
/// `Merkle.position(level:index:)`; smaller subtrees and leaves are recomputed from their
/// entries when needed. Each append adds the stored subtrees it completes in the same
/// transaction as the entry (one row per 8 entries on average), so the root of any size,
/// an inclusion proof or a consistency proof reads O(log n) rows and a few entries.
extension Ledger {
    /// The stored tree, read inside a transaction on `database`.
    struct StoredTree: MerkleNodeSource {
        let ledger: Ledger

        func subtree(level: Int, index: Int64) throws -> Merkle.Hash {
            if level == 0 { return try ledger.leafHash(seq: index + 1) }
            if level < Merkle.storedLevel {
                // Not stored: rebuilt from its 2…8 entries.
                let first = index << Int64(level)
                var frontier = MerkleFrontier()
                for seq in (first + 1)...(first + (1 << Int64(level))) {
                    frontier.append(leaf: try ledger.leafHash(seq: seq)) { _, _, _ in }
                }
                return frontier.root
            }
            // Kept prepared: an append reads the tree's right edge (up to log2 n rows).
            let statement = try ledger.database.cached("SELECT hash FROM merkle_nodes WHERE pos = ?")
            try statement.bind([.int(Merkle.position(level: level, index: index))])
            defer { statement.reset() }
            guard try statement.step(), case let hash = statement.blob(0), hash.count == 32 else {
                let first = (index << Int64(level)) + 1
                throw MusterError.failure("""
                    \(ledger.url.path): the Merkle tree has no node for entries \(first)–\(first + (1 << Int64(level)) - 1); \
                    the ledger was altered outside muster — run `muster verify`
                    """)
            }
            return hash
        }
    }

    /// The leaf hash of entry `seq`, recomputed from its stored columns.
    func leafHash(seq: Int64) throws -> Merkle.Hash {
        let statement = try database.cached("SELECT kind, at, fingerprint, body, personal_hash, prev FROM entries WHERE seq = ?")
        try statement.bind([.int(seq)])
        defer { statement.reset() }
        guard try statement.step() else {
            throw MusterError.failure("\(url.path) has no entry \(seq); the ledger was altered outside muster — run `muster verify`")
        }
        return Merkle.leafHash(Self.leafData(seq: seq, statement, from: 0))
    }

    /// The leaf data of entry `seq` from a row whose columns `first`… are kind, at,
    /// fingerprint, body, personal_hash and prev.
    static func leafData(seq: Int64, _ statement: SQLiteStatement, from first: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(400)
        LedgerHash.appendEntryFields(seq: seq, kind: statement.text(first) ?? "", at: statement.rawBytes(first + 1),
                                     fingerprint: statement.rawBytes(first + 2), body: statement.rawBytes(first + 3),
                                     personalHash: statement.rawBytes(first + 4), prev: statement.rawBytes(first + 5), to: &bytes)
        return bytes
    }

    /// The right edge of the stored tree of `size` leaves.
    func loadFrontier(size: Int64) throws -> MerkleFrontier {
        let tree = StoredTree(ledger: self)
        return MerkleFrontier(size: size, hashes: try MerkleFrontier.edge(size: size).map { try tree.subtree(level: $0.level, index: $0.index) })
    }

    /// Inside a write transaction: adds `leaf` as leaf `head.seq` (the entry being
    /// appended) and stores the subtrees it completes.
    func appendLeaf(_ leaf: Merkle.Hash, head: inout Head) throws {
        if head.tree?.size != head.seq { head.tree = try loadFrontier(size: head.seq) }
        if insertNode == nil { insertNode = try database.prepare("INSERT INTO merkle_nodes (pos, hash) VALUES (?, ?)") }
        let insert = insertNode!
        try head.tree!.append(leaf: leaf) { level, index, hash in
            guard level >= Merkle.storedLevel else { return }
            try insert.bindInt(1, Merkle.position(level: level, index: index))
            try insert.bindBlob(2, hash)
            try insert.runBound()
        }
    }

    /// The tree over the entries the chain covers, for reading roots and proofs inside
    /// `snapshot`; its size is `meta.head_seq`.
    public func withTree<T>(_ body: (_ tree: any MerkleNodeSource, _ size: Int64) throws -> T) throws -> T {
        try snapshot {
            guard try database.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'merkle_nodes'") == 1 else {
                throw MusterError.failure("\(url.path) has no Merkle tree (ledger format below \(LedgerMigration.merkleTree.version)); open it with `muster verify` to migrate it")
            }
            return try body(StoredTree(ledger: self), try metaInt("head_seq"))
        }
    }

    /// The entry `seq` as the public log and receipts show it, and its leaf hash.
    public func publicEntry(seq: Int64) throws -> PublicEntry {
        let statement = try database.prepare("SELECT kind, at, fingerprint, body, personal_hash, prev, hash FROM entries WHERE seq = ?")
        try statement.bind([.int(seq)])
        defer { statement.reset() }
        guard try statement.step() else { throw MusterError.failure("\(url.path) has no entry \(seq)") }
        return PublicEntry(seq: seq, kind: statement.text(0) ?? "", at: statement.text(1) ?? "", fingerprint: statement.text(2),
                           body: statement.text(3) ?? "", personalHash: statement.text(4), prev: statement.text(5) ?? "",
                           hash: statement.text(6) ?? "")
    }

    /// Each chained entry in order, as the public log shows it.
    public func forEachPublicEntry(through size: Int64, _ body: (PublicEntry) throws -> Void) throws {
        let statement = try database.prepare("SELECT seq, kind, at, fingerprint, body, personal_hash, prev, hash FROM entries WHERE seq BETWEEN 1 AND ? ORDER BY seq")
        try statement.bind([.int(size)])
        defer { statement.reset() }
        while try statement.step() {
            try body(PublicEntry(seq: statement.int64(0), kind: statement.text(1) ?? "", at: statement.text(2) ?? "",
                                 fingerprint: statement.text(3), body: statement.text(4) ?? "", personalHash: statement.text(5),
                                 prev: statement.text(6) ?? "", hash: statement.text(7) ?? ""))
        }
    }

    /// The salt and personal data of entry `seq`, when they are there (read inside a transaction).
    func personal(seq: Int64) throws -> (salt: [UInt8], data: String)? {
        let statement = try database.prepare("SELECT salt, data FROM personal WHERE seq = ?")
        try statement.bind([.int(seq)])
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return (statement.blob(0), statement.text(1) ?? "")
    }

    /// The chained signature of `canonicalEmail`, with its salt and personal data when
    /// they are still there; nil when that address has not signed.
    public func signatureForReceipt(canonicalEmail: String) throws -> (entry: PublicEntry, salt: [UInt8]?, personal: String?)? {
        let fingerprint = try fingerprint(canonicalEmail: canonicalEmail)
        return try snapshot {
            guard let found = try firstSignature(fingerprint: fingerprint) else { return nil }
            let entry = try publicEntry(seq: found.seq)
            let statement = try database.prepare("SELECT salt, data FROM personal WHERE seq = ?")
            try statement.bind([.int(found.seq)])
            defer { statement.reset() }
            guard try statement.step() else { return (entry, nil, nil) }
            return (entry, statement.blob(0), statement.text(1))
        }
    }
}

/// An entry without personal data: what the public log and a receipt show.
public struct PublicEntry: Sendable, Equatable {
    public let seq: Int64
    public let kind: String
    public let at: String
    public let fingerprint: String?
    public let body: String
    public let personalHash: String?
    public let prev: String
    public let hash: String

    /// The leaf data: the bytes the chain hashes for this entry.
    public var leafData: [UInt8] {
        LedgerHash.entryBytes(seq: seq, kind: kind, at: at, fingerprint: fingerprint, body: body, personalHash: personalHash, prev: prev)
    }

    /// The canonical JSON object of the public log (docs/transparency.md).
    public var json: String {
        var object: [String: Any] = ["seq": seq, "kind": kind, "at": at, "body": body, "prev": prev, "hash": hash]
        if let fingerprint { object["fingerprint"] = fingerprint }
        if let personalHash { object["personal_hash"] = personalHash }
        return CanonicalJSON.encode(object)
    }
}

extension LedgerMigration {
    /// Format 4: the Merkle tree over the entries (RFC 9162 hashing), built here for the
    /// entries 1…head a ledger already holds, and kept by every append from now on.
    static let merkleTree = LedgerMigration(version: 4, name: "add the Merkle tree over the entries") { database in
        try database.execute("CREATE TABLE merkle_nodes (pos INTEGER PRIMARY KEY, hash BLOB NOT NULL)")
        let head = try database.scalarInt("SELECT value FROM meta WHERE key = 'head_seq'") ?? 0
        let entries = try database.prepare("SELECT seq, kind, at, fingerprint, body, personal_hash, prev FROM entries WHERE seq BETWEEN 1 AND ? ORDER BY seq")
        try entries.bind([.int(head)])
        defer { entries.reset() }
        let insert = try database.prepare("INSERT INTO merkle_nodes (pos, hash) VALUES (?, ?)")
        var frontier = MerkleFrontier()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(1024)
        // Leaves in the order of the entries; a missing entry (a damaged ledger) is left
        // out, and `verify` reports both the gap and the tree that does not match it.
        while try entries.step() {
            bytes.removeAll(keepingCapacity: true)
            bytes.append(0)
            LedgerHash.appendEntryFields(seq: entries.int64(0), kind: entries.text(1) ?? "", at: entries.rawBytes(2),
                                         fingerprint: entries.rawBytes(3), body: entries.rawBytes(4),
                                         personalHash: entries.rawBytes(5), prev: entries.rawBytes(6), to: &bytes)
            try frontier.append(leaf: Array(SHA256.hash(data: bytes))) { level, index, hash in
                guard level >= Merkle.storedLevel else { return }
                try insert.bindInt(1, Merkle.position(level: level, index: index))
                try insert.bindBlob(2, hash)
                try insert.runBound()
            }
        }
    }
}

/// The tree's right edge for appending many leaves at once (`Ledger.appendPacked`, the
/// path of `import` and `merge`): hashes in fixed storage (no allocation per leaf), and
/// the stored subtrees it completes kept in memory, in the order they complete (their
/// positions ascend), then inserted together by `flush`, 64 rows per statement, instead
/// of one statement per row between the entries' inserts.
final class BulkTreeAppender {
    private(set) var size: Int64
    /// The complete subtree of each level the edge has (size's bit `level` set), 32 bytes each.
    private let edge: UnsafeMutableRawBufferPointer
    /// Stored subtrees completed since the last flush: positions, and their hashes, 32 bytes each.
    private var positions: [Int64] = []
    private var hashes: [UInt8] = []

    init(_ frontier: MerkleFrontier) {
        size = frontier.size
        edge = .allocate(byteCount: 64 * 32, alignment: 8)
        // `frontier.hashes` holds the edge largest first: the highest set bit first.
        var levels = (0..<64).filter { frontier.size >> Int64($0) & 1 == 1 }
        levels.reverse()
        for (level, hash) in zip(levels, frontier.hashes) {
            hash.withUnsafeBytes { edge.baseAddress!.advanced(by: level * 32).copyMemory(from: $0.baseAddress!, byteCount: 32) }
        }
        positions.reserveCapacity(1024)
        hashes.reserveCapacity(1024 * 32)
    }

    deinit { edge.deallocate() }

    /// Appends the leaf whose leaf data, after its 0x00 prefix, is `prefixedLeaf`.
    func append(prefixedLeaf: UnsafeRawBufferPointer) {
        var leafHasher = SHA256()
        leafHasher.update(bufferPointer: prefixedLeaf)
        var current = leafHasher.finalize()
        var level = 0
        while size >> Int64(level) & 1 == 1 {
            var hasher = SHA256()
            withUnsafeBytes(of: UInt8(1)) { hasher.update(bufferPointer: $0) }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: edge[(level * 32)..<(level * 32 + 32)]))
            current.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            current = hasher.finalize()
            level += 1
            if level >= Merkle.storedLevel {
                positions.append(Merkle.position(level: level, index: ((size + 1) >> Int64(level)) - 1))
                current.withUnsafeBytes { hashes.append(contentsOf: $0) }
            }
        }
        current.withUnsafeBytes { edge.baseAddress!.advanced(by: level * 32).copyMemory(from: $0.baseAddress!, byteCount: 32) }
        size += 1
    }

    /// The edge as a `MerkleFrontier`, for the appends that follow one at a time.
    var frontier: MerkleFrontier {
        let levels = (0..<64).reversed().filter { size >> Int64($0) & 1 == 1 }
        return MerkleFrontier(size: size, hashes: levels.map { Array(UnsafeRawBufferPointer(rebasing: edge[($0 * 32)..<($0 * 32 + 32)])) })
    }

    static let rowsPerInsert = 64

    /// Inserts the stored subtrees completed so far into `merkle_nodes`.
    func flush(into database: SQLiteDatabase, many: inout SQLiteStatement?, one: inout SQLiteStatement?) throws {
        guard !positions.isEmpty else { return }
        let rows = Self.rowsPerInsert
        if many == nil {
            many = try database.prepare("INSERT INTO merkle_nodes (pos, hash) VALUES " + Array(repeating: "(?, ?)", count: rows).joined(separator: ", "))
        }
        if one == nil { one = try database.prepare("INSERT INTO merkle_nodes (pos, hash) VALUES (?, ?)") }
        try hashes.withUnsafeBytes { bytes in
            var start = 0
            while start < positions.count {
                let statement = positions.count - start >= rows ? many! : one!
                let count = statement === many! ? rows : 1
                for offset in 0..<count {
                    let row = start + offset
                    try statement.bindInt(Int32(2 * offset + 1), positions[row])
                    try statement.bindBlob(Int32(2 * offset + 2), borrowing: UnsafeRawBufferPointer(rebasing: bytes[(row * 32)..<(row * 32 + 32)]))
                }
                try statement.runBound()
                statement.clearBindings()
                start += count
            }
        }
        positions.removeAll(keepingCapacity: true)
        hashes.removeAll(keepingCapacity: true)
    }
}
