import Foundation

/// `verify`'s check that the stored Merkle tree agrees with the entries.
extension Ledger {
    /// Rebuilds the tree from `leaves` (the leaf hashes `verify` recomputed from the
    /// entries, 32 bytes each, in order) and compares every complete subtree with the row
    /// `merkle_nodes` holds for it; reports missing, altered and extra rows.
    ///
    /// With two readers and a large tree, the work is split at the largest power of two
    /// below the size: no complete subtree spans that point except, when the size is itself
    /// a power of two, the root, which is checked last from both halves' roots.
    func checkTree(leaves: [UInt8], on readers: [SQLiteDatabase]) throws -> [VerifyReport.Problem] {
        let reader = readers[0]
        guard try reader.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'merkle_nodes'") == 1 else {
            let version = try reader.scalarInt("SELECT value FROM meta WHERE key = 'schema_version'") ?? 0
            // A ledger of an older format read without migrating it (merge's other ledger).
            guard version >= LedgerMigration.merkleTree.version else { return [] }
            return [.init(entry: nil, reason: "the ledger's Merkle tree (the table merkle_nodes) is missing: it was removed outside muster")]
        }
        let size = Int64(leaves.count / 32)
        var problems: [VerifyReport.Problem] = []
        let expected = Merkle.storedNodeCount(size: size)
        let stray = try reader.scalarInt("SELECT count(*) FROM merkle_nodes WHERE pos < 1 OR pos > ? OR typeof(pos) <> 'integer'", .int(expected)) ?? 0
        if stray > 0 {
            problems.append(.init(entry: nil, reason: "the Merkle tree holds \(stray) node\(stray == 1 ? "" : "s") beyond the \(Number.grouped(size)) entries it covers: rows were added outside muster"))
        }
        guard size >= 2 else { return problems }

        let split = size >= 50_000 && readers.count > 1 ? Merkle.split(size) : size
        var jobs = [TreeCheckJob(database: readers[0], leaves: leaves, first: 0, end: split, lastPosition: Merkle.storedNodeCount(size: split))]
        if split < size {
            let topSpans = size & (size - 1) == 0
            jobs.append(TreeCheckJob(database: readers[1], leaves: leaves, first: split, end: size,
                                     lastPosition: expected - (topSpans ? 1 : 0)))
        }
        let running = jobs
        DispatchQueue.concurrentPerform(iterations: running.count) { index in running[index].run() }
        for job in jobs {
            if let error = job.error { throw error }
            if let problem = job.problem { problems.append(problem) }
        }
        if jobs.count == 2 && size & (size - 1) == 0 && problems.isEmpty {
            let root = Merkle.nodeHash(jobs[0].root, jobs[1].root)
            let level = size.trailingZeroBitCount
            let stored = try reader.prepare("SELECT hash FROM merkle_nodes WHERE pos = ?")
            try stored.bind([.int(Merkle.position(level: level, index: 0))])
            defer { stored.reset() }
            if !(try stored.step()) || stored.blob(0) != root {
                problems.append(TreeCheckJob.mismatch(level: level, index: 0))
            }
        }
        return problems
    }
}

/// Checks the subtrees within leaves `first..<end`; `first` is 0 or a power of two at
/// least as large as `end - first`, so the relative subtrees are the real ones.
private final class TreeCheckJob: @unchecked Sendable {
    // Touched by one thread while it runs, read after all have finished.
    let database: SQLiteDatabase
    let leaves: [UInt8]
    let first: Int64, end: Int64
    let lastPosition: Int64
    var problem: VerifyReport.Problem?
    var root: Merkle.Hash = []
    var error: Error?

    init(database: SQLiteDatabase, leaves: [UInt8], first: Int64, end: Int64, lastPosition: Int64) {
        self.database = database
        self.leaves = leaves
        self.first = first
        self.end = end
        self.lastPosition = lastPosition
    }

    static func mismatch(level: Int, index: Int64) -> VerifyReport.Problem {
        let from = (index << Int64(level)) + 1
        return .init(entry: nil, reason: """
            the Merkle tree does not match the entries: its node over entries \(from)–\(from + (1 << Int64(level)) - 1) \
            was altered or removed outside muster
            """)
    }

    private struct Stop: Error {}

    func run() {
        do {
            let firstPosition = first == 0 ? 1 : Merkle.storedNodeCount(size: first) + 1
            let rows = try database.prepare("SELECT pos, hash FROM merkle_nodes WHERE pos BETWEEN ? AND ? ORDER BY pos")
            try rows.bind([.int(firstPosition), .int(lastPosition)])
            defer { rows.reset() }
            var frontier = MerkleFrontier()
            do {
                try leaves.withUnsafeBytes { bytes in
                    for leaf in first..<end {
                        let start = Int(leaf) * 32
                        try frontier.append(leaf: Array(bytes[start..<(start + 32)])) { level, relative, hash in
                            guard level >= Merkle.storedLevel else { return }
                            let index = relative + (first >> Int64(level))
                            guard try rows.step(), rows.int64(0) == Merkle.position(level: level, index: index),
                                  rows.withBytes(1, { $0.elementsEqual(hash) }) else {
                                problem = Self.mismatch(level: level, index: index)
                                throw Stop()
                            }
                        }
                    }
                }
                root = frontier.root
            } catch is Stop {
                return
            }
        } catch {
            self.error = error
        }
    }
}
