import Crypto
import Foundation

/// What `muster verify` found.
public struct VerifyReport: Sendable, Codable, Equatable {
    /// One problem, located at an entry.
    public struct Problem: Sendable, Codable, Equatable {
        /// The entry's sequence number (1 is the first entry); nil when the problem is
        /// not at an entry (a table, index or trigger muster did not create, say).
        public let entry: Int64?
        public let reason: String
    }

    /// True when every entry and every piece of personal data checks out.
    public let ok: Bool
    /// Signatures that count: those in the ledger (forgotten ones included) less the
    /// withdrawn ones.
    public let count: Int64
    /// All entries: signatures, redactions and opt-outs.
    public let entries: Int64
    /// Signatures whose personal data was erased by `forget`.
    public let redacted: Int64
    /// Signatures withdrawn as duplicates (`muster dedupe --withdraw`), not in `count`.
    public let withdrawn: Int64
    /// The hash of the newest entry; a published report quotes it.
    public let head: String
    /// The earliest problem, when not ok.
    public let firstBad: Problem?
    /// How many problems were found in all.
    public let problems: Int
    /// Format 7 on: rows of `bounces` and `suppressions` without a valid seal, which
    /// muster did not write and ignores (Inbox/Suppression.swift); nil for older formats.
    public var unsealed: Ledger.UnsealedRows? = nil

    /// The report for a campaign that has no ledger yet.
    public static let empty = VerifyReport(ok: true, count: 0, entries: 0, redacted: 0, withdrawn: 0, head: Ledger.genesis, firstBad: nil, problems: 0)

    enum CodingKeys: String, CodingKey {
        case ok, count, entries, redacted, withdrawn, head
        case firstBad = "first_bad"
        case problems, unsealed
    }
}

extension Ledger {
    /// Recomputes the whole chain and every personal-data hash, cross-checks the
    /// ledger's own records of its head and count, and looks for anything the chain
    /// does not account for (rows outside entries 1…head, stray personal data or outbox
    /// rows, tables, indexes, views or triggers muster did not create).
    ///
    /// Large ledgers are checked in two halves on two connections that share one
    /// snapshot (both read transactions start while writers are held off), one per core.
    public func verify() throws -> VerifyReport {
        try verify(parallelFrom: 50_000)
    }

    /// `verify`, checking in two halves once the ledger has `parallelFrom` entries.
    ///
    /// Only entries 1…head (the head `meta` records) are scanned, so the work and the
    /// memory follow the chain, never the size of a forged sequence number.
    func verify(parallelFrom threshold: Int64) throws -> VerifyReport {
        try withStorage(path: url.path) {
            let head = try metaInt("head_seq")
            guard head >= threshold && head >= 2 && ProcessInfo.processInfo.activeProcessorCount > 1 else {
                return try snapshot {
                    let recorded = try recordedHead()
                    return try finish([try ChainSegment.scan(database, from: 1, through: recorded.seq)], recorded: recorded, on: database,
                                      treeReaders: [database])
                }
            }
            let readers = try (0..<2).map { _ -> SQLiteDatabase in
                let reader = try SQLiteDatabase(path: url.path, create: false)
                reader.setBusyTimeout(milliseconds: Ledger.busyTimeoutMilliseconds)
                return reader
            }
            // Hold writers off only while both readers open their snapshots, so the
            // two halves see the same ledger; the scan itself blocks no one.
            let recorded: Head
            try database.execute("BEGIN IMMEDIATE")
            do {
                for reader in readers {
                    try reader.execute("BEGIN DEFERRED")
                    _ = try reader.scalarInt("SELECT count(*) FROM entries WHERE seq = 1")
                }
                recorded = try recordedHead()
                try database.execute("ROLLBACK")
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
            defer { for reader in readers { try? reader.execute("COMMIT") } }
            let middle = recorded.seq / 2
            let jobs = [SegmentJob(database: readers[0], from: 1, through: middle),
                        SegmentJob(database: readers[1], from: middle + 1, through: recorded.seq)]
            DispatchQueue.concurrentPerform(iterations: jobs.count) { index in jobs[index].run() }
            let segments = try jobs.map { job -> ChainSegment in
                if let error = job.error { throw error }
                return job.segment!
            }
            return try finish(segments, recorded: recorded, on: readers[0], treeReaders: readers)
        }
    }

    private func recordedHead() throws -> Head {
        Head(seq: try metaInt("head_seq"), hash: try metaText("head_hash"), signatures: try metaInt("signature_count"))
    }

    /// Joins scanned segments (consecutive ranges of 1…head, in order) and runs the checks
    /// that span the whole ledger, reading on `reader` (inside the segments' snapshot).
    private func finish(_ segments: [ChainSegment], recorded: Head, on reader: SQLiteDatabase, treeReaders: [SQLiteDatabase]) throws -> VerifyReport {
        var problems: [VerifyReport.Problem] = []
        func problem(_ entry: Int64?, _ reason: String) { problems.append(.init(entry: entry, reason: reason)) }

        var isSignature = SeqFlags()
        var withoutPersonal = Set<Int64>()
        var redactions: [(seq: Int64, target: Int64)] = []
        var withdrawals: [ChainSegment.Withdrawal] = []
        var signatures: Int64 = 0, entries: Int64 = 0
        // Where the chain stands before each segment: every segment's first entry must
        // follow it, whatever the segments before it held (the first follows the genesis).
        var lastSeq: Int64 = 0
        var lastHash = Array(Ledger.genesis.utf8)
        for segment in segments {
            problems += segment.problems
            if let firstSeq = segment.firstSeq, let segmentLast = segment.lastSeq {
                if firstSeq != lastSeq + 1 {
                    problem(lastSeq + 1, firstSeq == lastSeq + 2
                        ? "entry \(lastSeq + 1) is missing (deleted?); entry \(firstSeq) follows entry \(lastSeq)"
                        : "entries \(lastSeq + 1)–\(firstSeq - 1) are missing (deleted?); entry \(firstSeq) follows entry \(lastSeq)")
                } else if segment.firstPrev != lastHash {
                    problem(firstSeq, "entry \(firstSeq) does not follow entry \(firstSeq - 1): its previous-hash does not match (an entry was changed, removed or reordered)")
                }
                lastSeq = segmentLast
                lastHash = segment.lastHash
            }
            isSignature.append(contentsOf: segment.isSignature)
            withoutPersonal.formUnion(segment.withoutPersonal)
            redactions += segment.redactions
            withdrawals += segment.withdrawals
            signatures += segment.signatures
            entries += segment.entries
        }
        let headHash = String(decoding: lastHash, as: UTF8.self)

        var redacted = Set<Int64>()
        for (seq, target) in redactions {
            if target <= 0 || target >= seq || !isSignature[target] {
                problem(seq, "entry \(seq) redacts entry \(target), which is not an earlier signature")
            } else if !withoutPersonal.contains(target) {
                problem(seq, "entry \(seq) redacts entry \(target), but that signature's personal data is present again")
            }
            redacted.insert(target)
        }
        for seq in withoutPersonal.subtracting(redacted).sorted() {
            problem(seq, "the personal data of entry \(seq) is gone, but no redaction entry records its erasure")
        }

        // Each withdrawal takes one earlier signature out of the count, once, as a duplicate
        // of another earlier signature.
        var withdrawnBy: [Int64: Int64] = [:]
        for withdrawal in withdrawals {
            let (seq, target, original) = (withdrawal.seq, withdrawal.target, withdrawal.duplicateOf)
            if target <= 0 || target >= seq || !isSignature[target] {
                problem(seq, "entry \(seq) withdraws entry \(target), which is not an earlier signature")
            } else if let earlier = withdrawnBy[target] {
                problem(seq, "entry \(seq) withdraws entry \(target), which entry \(earlier) already withdrew")
            } else if original <= 0 || original >= seq || original == target || !isSignature[original] {
                problem(seq, "entry \(seq) withdraws entry \(target) as a duplicate of entry \(original), which is not another earlier signature")
            } else {
                withdrawnBy[target] = seq
            }
        }

        if recorded.seq != lastSeq || recorded.hash != headHash {
            if recorded.seq > lastSeq {
                problem(lastSeq + 1, "the ledger ends at entry \(lastSeq), but it recorded entry \(recorded.seq) as its newest: entries at the end were removed")
            } else {
                problem(max(lastSeq, 1), "the ledger's record of its newest entry (entry \(recorded.seq)) does not match its last entry (\(lastSeq))")
            }
        } else if recorded.signatures != signatures {
            problem(max(lastSeq, 1), "the ledger recorded \(recorded.signatures) signatures but holds \(signatures)")
        }

        problems += try besideTheChain(head: recorded.seq, withdrawn: Set(withdrawnBy.keys), on: reader)
        let unsealed = try sealProblems(on: reader, into: &problems)
        problems += try checkTree(leaves: segments.reduce(into: []) { $0 += $1.leaves }, on: treeReaders)

        let first = problems.min { ($0.entry ?? .max) < ($1.entry ?? .max) }
        return VerifyReport(ok: problems.isEmpty, count: signatures - Int64(withdrawnBy.count), entries: entries, redacted: Int64(redacted.count),
                            withdrawn: Int64(withdrawnBy.count), head: headHash, firstBad: first, problems: problems.count, unsealed: unsealed)
    }

    /// Format 7 on: the seal key, and the rows of `bounces` and `suppressions` whose seal
    /// is missing or wrong (one problem per table, with its count). Nil for older formats.
    private func sealProblems(on reader: SQLiteDatabase, into problems: inout [VerifyReport.Problem]) throws -> UnsealedRows? {
        guard try reader.scalarInt("SELECT value FROM meta WHERE key = 'schema_version'") ?? Ledger.schemaVersion >= 7 else { return nil }
        if try !Self.hasSealKey(reader) {
            problems.append(.init(entry: nil, reason: """
                the ledger has no seal key (meta.seal_key, 32 bytes) or a damaged one: no bounce or suppression can be told \
                from one written beside muster, so all are ignored and every address is mailed again; restore the ledger from a backup
                """))
        }
        let unsealed = try Self.unsealedRows(on: reader)
        if unsealed.total > 0, try Self.hasSealKey(reader),
           try reader.scalarInt("SELECT (SELECT count(*) FROM bounces) + (SELECT count(*) FROM suppressions)") == Int64(unsealed.total) {
            problems.append(.init(entry: nil, reason: """
                no bounce or suppression carries a valid seal: the seal key (meta.seal_key) was most likely replaced, and then \
                every suppression is unprovable; restore the ledger from a backup. Use `muster verify --drop-unsealed` only if you \
                know every one of these rows was written beside muster: it would delete every real bounce too
                """))
        }
        for (count, one, many, table) in [(unsealed.suppressions, "suppression", "suppressions", "suppressions"),
                                          (unsealed.bounces, "bounce record", "bounce records", "bounces")] where count > 0 {
            let single = count == 1
            problems.append(.init(entry: nil, reason: """
                \(count) \(single ? one : many) (table \(table)) \(single ? "was" : "were") not written by muster: \
                \(single ? "its" : "their") seal is missing or wrong (added or changed beside muster, with sqlite3 say). \
                muster ignores \(single ? "it" : "them"): \(single ? "it suppresses" : "they suppress") no one, and `mail send` refuses \
                to start a blast while \(single ? "it is" : "they are") there. \
                Delete \(single ? "it" : "them") with `muster verify --drop-unsealed`; `muster inbox` records real bounces again
                """))
        }
        return unsealed
    }

    /// Everything in the file that the chain 1…`head` does not account for.
    private func besideTheChain(head: Int64, withdrawn: Set<Int64>, on reader: SQLiteDatabase) throws -> [VerifyReport.Problem] {
        var problems: [VerifyReport.Problem] = []
        func problem(_ entry: Int64?, _ reason: String) { problems.append(.init(entry: entry, reason: reason)) }
        let limit = 100

        // The database objects: anything muster did not create could hide rows or change
        // them behind its back (a trigger, a view), and `seq` must stay the rowid (never NULL).
        let format = try reader.scalarInt("SELECT value FROM meta WHERE key = 'schema_version'") ?? Ledger.schemaVersion
        let expected = Self.schemaObjects(format: format)
        let objects = try reader.prepare("SELECT type, name FROM sqlite_schema ORDER BY type, name")
        while try objects.step() {
            let type = objects.text(0) ?? "", name = objects.text(1) ?? ""
            if !expected.contains("\(type) \(name)") {
                problem(nil, "the ledger holds \(type == "index" ? "an" : "a") \(type) '\(name)' that muster did not create")
            }
        }
        // Format 3 on: mailbox keys (merge verifies another machine's ledger without migrating it).
        let hasMailboxKeys = try reader.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'mailbox_keys'") == 1
        for table in ["entries", "personal"] + (hasMailboxKeys ? ["mailbox_keys"] : []) {
            let key = try reader.prepare("SELECT type, pk, (SELECT count(*) FROM pragma_table_info(?1) WHERE pk > 0) FROM pragma_table_info(?1) WHERE name = 'seq'")
            try key.bind([.text(table)])
            guard try key.step(), key.text(0)?.uppercased() == "INTEGER", key.int64(1) == 1, key.int64(2) == 1 else {
                problem(nil, "the table '\(table)' was redefined: its seq is no longer the row's integer key")
                // Then seq may be NULL or not a number: such rows belong to no entry.
                let stray = try reader.scalarInt("SELECT count(*) FROM \(table) WHERE typeof(seq) <> 'integer'") ?? 0
                if stray > 0 { problem(nil, "\(stray) row\(stray == 1 ? "" : "s") of '\(table)' \(stray == 1 ? "has" : "have") no entry number (seq is NULL or not an integer)") }
                continue
            }
        }

        // Rows outside 1…head (two range probes of the rowid b-tree each).
        let outside = try reader.prepare("""
            SELECT seq FROM (SELECT seq FROM entries WHERE seq < 1 UNION ALL SELECT seq FROM entries WHERE seq > ?1)
            WHERE typeof(seq) = 'integer' ORDER BY seq LIMIT \(limit)
            """)
        try outside.bind([.int(head)])
        while try outside.step() {
            let seq = outside.int64(0)
            problem(seq, "entry \(seq) is outside the hash chain (\(Self.chainExtent(head))): a row was added beside the chain")
        }
        let outsideCount = try reader.scalarInt("SELECT (SELECT count(*) FROM entries WHERE seq < 1 AND typeof(seq) = 'integer') + (SELECT count(*) FROM entries WHERE seq > ? AND typeof(seq) = 'integer')", .int(head)) ?? 0
        if outsideCount > Int64(limit) { problem(nil, "\(outsideCount - Int64(limit)) more entries are outside the hash chain") }

        // Personal data that no chained signature accounts for.
        let orphans = try reader.prepare("""
            SELECT p.seq FROM personal p
            WHERE typeof(p.seq) = 'integer' AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.seq = p.seq AND e.kind = 'signature' AND \(Self.chained("e")))
            ORDER BY p.seq LIMIT \(limit)
            """)
        while try orphans.step() {
            let seq = orphans.int64(0)
            problem(seq, seq < 1 || seq > head
                ? "personal data is stored for entry \(seq), which is outside the hash chain (\(Self.chainExtent(head)))"
                : "personal data is stored for entry \(seq), which is not a signature")
        }

        // Outbox rows: a signer's row must name a chained signature and that signer's
        // fingerprint; a target's row (no signature) can only be checked for its shape.
        let mail = try reader.prepare("""
            SELECT o.template, o.signature, typeof(o.signature) FROM outbox o
            WHERE (o.signature IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.seq = o.signature AND e.kind = 'signature'
                                                            AND e.fingerprint = o.recipient AND \(Self.chained("e"))))
               OR (o.signature IS NULL AND (length(o.recipient) <> 64 OR o.recipient GLOB '*[^0-9a-f]*'))
            LIMIT \(limit)
            """)
        while try mail.step() {
            let template = mail.text(0) ?? ""
            switch mail.text(2) {
            case "null":
                problem(nil, "the outbox of template '\(template)' has a row for a recipient key that muster cannot have written")
            case "integer":
                let seq = mail.int64(1)
                problem(seq, "the outbox of template '\(template)' has a row for entry \(seq), which is not that signer's signature in the hash chain")
            default:
                problem(nil, "the outbox of template '\(template)' has a row whose signature is not an entry number")
            }
        }

        if hasMailboxKeys {
            problems += try mailboxKeyProblems(head: head, withdrawn: withdrawn, limit: limit, on: reader)
        }

        // meta: the records muster keeps, and nothing else.
        let keys = try reader.prepare("SELECT key FROM meta ORDER BY key")
        while try keys.step() {
            let key = keys.text(0) ?? ""
            if !Self.metaKeys.contains(key) { problem(nil, "the ledger's meta table holds a record '\(key)' that muster did not write") }
        }
        return problems
    }

    /// Mailbox keys (derived data, MailboxKeys.swift) that muster cannot have written: a
    /// row for anything but a chained signature that counts and has its personal data, and
    /// a key that is not 16 bytes. A row that went missing cannot be told from a signature
    /// whose key is its fingerprint's start without the workspace's rules and every
    /// address: `muster dedupe` remakes every key and says how many were not as they
    /// should have been.
    private func mailboxKeyProblems(head: Int64, withdrawn: Set<Int64>, limit: Int, on reader: SQLiteDatabase) throws -> [VerifyReport.Problem] {
        var problems: [VerifyReport.Problem] = []
        func problem(_ entry: Int64?, _ reason: String) { problems.append(.init(entry: entry, reason: reason)) }
        let strays = try reader.prepare("""
            SELECT m.seq, e.kind, EXISTS (SELECT 1 FROM personal p WHERE p.seq = m.seq) FROM mailbox_keys m
            LEFT JOIN entries e ON e.seq = m.seq AND \(Self.chained("e"))
            WHERE typeof(m.seq) = 'integer' AND (e.seq IS NULL OR e.kind IS NOT 'signature'
                                                 OR NOT EXISTS (SELECT 1 FROM personal p WHERE p.seq = m.seq) OR \(Self.forgotten("m.seq")))
            ORDER BY m.seq LIMIT \(limit)
            """)
        while try strays.step() {
            let seq = strays.int64(0)
            if seq < 1 || seq > head {
                problem(seq, "a mailbox key is stored for entry \(seq), which is outside the hash chain (\(Self.chainExtent(head)))")
            } else if strays.text(1) != EntryKind.signature.rawValue {
                problem(seq, "a mailbox key is stored for entry \(seq), which is not a signature")
            } else {
                problem(seq, "a mailbox key is stored for entry \(seq), whose signer was forgotten (a forgotten signer has none)")
            }
        }
        let probe = try reader.prepare("SELECT count(*) FROM mailbox_keys WHERE seq = ?")
        for seq in withdrawn.sorted() {
            probe.reset()
            try probe.bind([.int(seq)])
            if try probe.step(), probe.int64(0) > 0 {
                problem(seq, "a mailbox key is stored for entry \(seq), which was withdrawn (a withdrawn signature has none)")
            }
        }
        probe.reset()
        let malformed = try reader.prepare("""
            SELECT seq FROM mailbox_keys WHERE typeof(seq) = 'integer'
              AND (typeof(key) <> 'blob' OR length(key) <> 16) ORDER BY seq LIMIT \(limit)
            """)
        while try malformed.step() {
            let seq = malformed.int64(0)
            problem(seq, "the mailbox key of entry \(seq) is not 16 bytes, as muster writes it")
        }
        return problems
    }

    static func redactedSeq(_ body: String) -> Int64? {
        integerMember("redacts", of: body)
    }

    /// The integer member `name` of a JSON object body; nil when absent or not an integer.
    static func integerMember(_ name: String, of body: String) -> Int64? {
        guard let data = body.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let value = object[name] as? NSNumber else { return nil }
        return value.int64Value
    }
}

/// One worker's share of `verify`: a connection and the range of entries it checks.
private final class SegmentJob: @unchecked Sendable {
    // Each job is touched by exactly one thread while it runs, and read after all have finished.
    let database: SQLiteDatabase
    let from: Int64, through: Int64
    var segment: ChainSegment?
    var error: Error?

    init(database: SQLiteDatabase, from: Int64, through: Int64) {
        self.database = database
        self.from = from
        self.through = through
    }

    func run() {
        do { segment = try ChainSegment.scan(database, from: from, through: through) } catch { self.error = error }
    }
}

/// What one scan over a range of entries found.
private struct ChainSegment {
    var problems: [VerifyReport.Problem] = []
    var signatures: Int64 = 0
    var entries: Int64 = 0
    var firstSeq: Int64?
    var lastSeq: Int64?
    /// The `prev` stored in the first entry (checked against the segment before, or
    /// against the genesis value, when the segments are joined).
    var firstPrev: [UInt8] = []
    var lastHash: [UInt8] = []
    var isSignature = SeqFlags()
    var withoutPersonal = Set<Int64>()
    var redactions: [(seq: Int64, target: Int64)] = []
    var withdrawals: [Withdrawal] = []
    /// The Merkle leaf hash of each entry scanned, 32 bytes each, in order.
    var leaves: [UInt8] = []

    /// A withdrawal entry: `seq` withdraws `target` as a duplicate of `duplicateOf`.
    struct Withdrawal {
        var seq: Int64
        var target: Int64
        var duplicateOf: Int64
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    private static let prefix = Array("muster-ledger-v1\0".utf8)

    /// Checks entries `from…through`: each hash, each link within the range, each
    /// personal-data hash. The link of its first entry to what precedes it (the genesis
    /// value or another segment) is checked when segments are joined (`finish`).
    static func scan(_ database: SQLiteDatabase, from: Int64, through: Int64) throws -> ChainSegment {
        var segment = ChainSegment()
        func problem(_ entry: Int64, _ reason: String) { segment.problems.append(.init(entry: entry, reason: reason)) }
        let statement = try database.prepare("""
            SELECT e.seq, e.kind, e.at, e.fingerprint, e.body, e.personal_hash, e.prev, e.hash, p.salt, p.data, p.seq IS NOT NULL
            FROM entries e LEFT JOIN personal p ON p.seq = e.seq WHERE e.seq BETWEEN ? AND ? ORDER BY e.seq
            """)
        try statement.bind([.int(from), .int(through)])
        var expectedSeq = from
        var previousHash: [UInt8] = []
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1024)
        segment.leaves.reserveCapacity(32 * Int(min(max(through - from + 1, 0), 1 << 22)))
        var hex = [UInt8](repeating: 0, count: 64)
        var columns = [UnsafeRawBufferPointer](repeating: UnsafeRawBufferPointer(start: nil, count: 0), count: 10)

        while try statement.step() {
            segment.entries += 1
            let seq = statement.int64(0)
            if segment.firstSeq == nil {
                segment.firstSeq = seq
                expectedSeq = seq
            }
            if seq != expectedSeq {
                problem(expectedSeq, expectedSeq == seq - 1
                    ? "entry \(expectedSeq) is missing (deleted?); entry \(seq) follows entry \(expectedSeq - 1)"
                    : "entries \(expectedSeq)–\(seq - 1) are missing (deleted?); entry \(seq) follows entry \(expectedSeq - 1)")
                expectedSeq = seq
            }
            // Each column's bytes, read once: 1 kind, 2 at, 3 fingerprint, 4 body,
            // 5 personal_hash, 6 prev, 7 hash, 8 salt, 9 data. Column 10 says whether a
            // personal row exists: its bytes cannot (SQLite gives a NULL pointer for an
            // empty blob, so an empty salt would look like no row at all).
            for column in 1...9 { columns[column] = statement.rawBytes(Int32(column)) }

            if segment.entries == 1 {
                segment.firstPrev = Array(columns[6])
            } else {
                let linked = columns[6].count == previousHash.count
                    && (previousHash.isEmpty || previousHash.withUnsafeBytes { memcmp(columns[6].baseAddress!, $0.baseAddress!, $0.count) == 0 })
                if !linked && segment.problems.last?.entry != seq {
                    problem(seq, "entry \(seq) does not follow entry \(seq - 1): its previous-hash does not match (an entry was changed, removed or reordered)")
                }
            }

            // Recompute this entry's hash from its stored fields (see LedgerHash.entry),
            // after a 0x00 byte: the whole buffer is then the entry's Merkle leaf.
            buffer.removeAll(keepingCapacity: true)
            buffer.append(0)
            buffer.append(contentsOf: prefix)
            appendDecimal(seq, to: &buffer)
            for column in 1...6 {
                buffer.append(0)
                buffer.append(contentsOf: columns[column])
            }
            buffer.withUnsafeBytes { bytes in
                hexInto(&hex, SHA256.hash(data: UnsafeRawBufferPointer(rebasing: bytes.dropFirst())))
                SHA256.hash(data: bytes).withUnsafeBytes { segment.leaves.append(contentsOf: $0) }
            }
            if !(columns[7].count == 64 && memcmp(columns[7].baseAddress!, hex, 64) == 0) {
                problem(seq, "entry \(seq) was altered: its contents no longer match its hash")
            }

            let entryKind = kind(of: columns[1])
            segment.isSignature.append(seq, entryKind == .signature)
            switch entryKind {
            case .signature:
                segment.signatures += 1
                if statement.int64(10) == 0 {
                    segment.withoutPersonal.insert(seq)
                } else {
                    buffer.removeAll(keepingCapacity: true)
                    buffer.append(contentsOf: columns[8])
                    buffer.append(contentsOf: columns[9])
                    hexInto(&hex, SHA256.hash(data: buffer))
                    if !(columns[5].count == 64 && memcmp(columns[5].baseAddress!, hex, 64) == 0) {
                        problem(seq, "the personal data of entry \(seq) was altered: it no longer matches the hash the entry recorded")
                    }
                }
            case .redaction:
                if let target = Ledger.redactedSeq(statement.text(4) ?? "") {
                    segment.redactions.append((seq, target))
                } else {
                    problem(seq, "entry \(seq) is a redaction without a valid target")
                }
            case .optout:
                break
            case .withdrawal:
                let body = statement.text(4) ?? ""
                if let target = Ledger.integerMember("withdraws", of: body), let original = Ledger.integerMember("duplicate_of", of: body) {
                    segment.withdrawals.append(Withdrawal(seq: seq, target: target, duplicateOf: original))
                } else {
                    problem(seq, "entry \(seq) is a withdrawal without a valid target")
                }
            case nil:
                problem(seq, "entry \(seq) has an unknown kind '\(statement.text(1) ?? "")'")
            }
            previousHash.removeAll(keepingCapacity: true)
            previousHash.append(contentsOf: columns[7])
            expectedSeq = seq + 1
            segment.lastSeq = seq
        }
        if segment.entries > 0 { segment.lastHash = previousHash }
        return segment
    }

    private static func hexInto(_ buffer: inout [UInt8], _ digest: SHA256.Digest) {
        digest.withUnsafeBytes { bytes in
            buffer.withUnsafeMutableBufferPointer { out in
                hexDigits.withUnsafeBufferPointer { digits in
                    for index in 0..<bytes.count {
                        let byte = bytes[index]
                        out[index &* 2] = digits[Int(byte >> 4)]
                        out[index &* 2 &+ 1] = digits[Int(byte & 0x0F)]
                    }
                }
            }
        }
    }

    private static func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
        var digits: [UInt8] = []
        var rest = value.magnitude
        repeat {
            digits.append(UInt8(48 + rest % 10))
            rest /= 10
        } while rest > 0
        if value < 0 { buffer.append(45) }
        buffer.append(contentsOf: digits.reversed())
    }

    private static func kind(of bytes: UnsafeRawBufferPointer) -> EntryKind? {
        switch bytes.count {
        case 9 where memcmp(bytes.baseAddress!, "signature", 9) == 0: return .signature
        case 9 where memcmp(bytes.baseAddress!, "redaction", 9) == 0: return .redaction
        case 6 where memcmp(bytes.baseAddress!, "optout", 6) == 0: return .optout
        case 10 where memcmp(bytes.baseAddress!, "withdrawal", 10) == 0: return .withdrawal
        default: return nil
        }
    }
}
