import Foundation

/// What "the entries the chain covers" means, in one place.
///
/// The ledger's hash chain runs from entry 1 to the head recorded in `meta`
/// (`head_seq`), and the published head hash vouches for exactly those entries. A row
/// anywhere else — a sequence number of 0 or below, or beyond the head — was put there
/// outside muster (with `sqlite3`, say): no hash covers it. Every query that counts,
/// lists, exports, merges or mails signatures reads only the chained entries, through
/// `chained(_:)`, so such a row can never be counted or mailed; `verify` reports it, and
/// a command that writes refuses a ledger holding one (`ensureNothingBesideChain`).
extension Ledger {
    /// The SQL condition "entry `alias` is covered by the chain": its seq lies in 1…head.
    ///
    /// `seq` is the table's rowid, so the condition is a range on it; the head is a
    /// constant subquery, evaluated once per statement.
    static func chained(_ alias: String) -> String {
        "\(alias).seq BETWEEN 1 AND (SELECT value FROM meta WHERE key = 'head_seq')"
    }

    /// The tables and indexes muster creates (names as in `sqlite_schema`); `verify`
    /// reports any other table, index, view or trigger. The unique fingerprint index may
    /// be missing only inside a bulk import's own transaction, which no reader sees.
    static let schemaObjects: Set<String> = [
        "table meta", "table entries", "table personal", "table outbox",
        "index sqlite_autoindex_meta_1",
        "index entries_one_signature_per_signer", "index entries_by_kind_and_time", "index entries_opt_outs",
        "index outbox_in_order", "table migrations",
        // Format 3: the Merkle tree's complete subtrees (Transparency/LedgerTree.swift).
        "table merkle_nodes",
        // Format-1 ledgers made before 2026-11-27 have it until migrated to format 2 (merge
        // reads another machine's ledger, and verifies it, without migrating it).
        "index outbox_by_state",
        // SQLite's own statistics (ANALYZE, `PRAGMA optimize`): they hold no rows of muster's.
        "table sqlite_stat1", "table sqlite_stat4",
    ]

    /// "entries 1–N", or "no entries yet" for an empty chain, for messages.
    static func chainExtent(_ head: Int64) -> String {
        head >= 1 ? "entries 1–\(head)" : "no entries yet"
    }

    /// The records muster keeps in `meta`; `verify` reports any other.
    static let metaKeys: Set<String> = ["fingerprint_key", "head_seq", "head_hash", "signature_count", "schema_version"]

    /// Throws (exit 1) when the ledger holds anything outside its chain, so that a
    /// long-lived writer such as the kiosk refuses before it starts rather than at its
    /// first signature (each write checks again).
    public func ensureWritable() throws {
        try snapshot { try ensureNothingBesideChain() }
    }

    /// Inside a write transaction: throws (exit 1, nothing written) when the ledger holds
    /// an entry or personal data outside its chain (seq ≤ 0 or beyond the head).
    ///
    /// Writing would be wrong either way: an entry beside the chain could make a real new
    /// signer look like a duplicate (the unique fingerprint index sees every row), and
    /// appending would give the forged row a place inside the range the chain covers.
    /// Four probes of the rowid b-trees: it costs nothing however large the ledger.
    func ensureNothingBesideChain() throws {
        let head = try metaInt("head_seq")
        for table in ["entries", "personal"] {
            let outside = try database.scalarInt("SELECT seq FROM \(table) WHERE seq < 1 ORDER BY seq LIMIT 1")
                ?? database.scalarInt("SELECT seq FROM \(table) WHERE seq > ? ORDER BY seq LIMIT 1", .int(head))
            if let outside {
                let what = table == "entries" ? "an entry" : "personal data"
                throw MusterError.failure("""
                    \(url.path) holds \(what) numbered \(outside), outside its hash chain (\(Self.chainExtent(head))): \
                    the ledger was altered outside muster; nothing was written — run `muster verify`
                    """)
            }
        }
    }
}

/// Which sequence numbers were signatures, in memory proportional to the entries seen —
/// never to the size of a (possibly forged) sequence number.
struct SeqFlags {
    /// Where each run of consecutive sequence numbers starts, and its first flag's index.
    private var runs: [(seq: Int64, index: Int)] = []
    private var flags: [Bool] = []
    private var lastSeq: Int64 = 0

    /// Records `flag` for `seq`; calls come in increasing seq order.
    mutating func append(_ seq: Int64, _ flag: Bool) {
        if runs.isEmpty || seq != lastSeq &+ 1 { runs.append((seq, flags.count)) }
        flags.append(flag)
        lastSeq = seq
    }

    /// Appends all of `other`, whose sequence numbers follow this one's.
    mutating func append(contentsOf other: SeqFlags) {
        for (number, run) in other.runs.enumerated() {
            let end = number + 1 < other.runs.count ? other.runs[number + 1].index : other.flags.count
            for offset in 0..<(end - run.index) { append(run.seq + Int64(offset), other.flags[run.index + offset]) }
        }
    }

    /// The flag recorded for `seq`; false when none was.
    subscript(seq: Int64) -> Bool {
        // The last run starting at or before seq.
        var low = 0, high = runs.count
        while low < high {
            let middle = (low + high) / 2
            if runs[middle].seq <= seq { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return false }
        let run = runs[low - 1]
        let end = low < runs.count ? runs[low].index : flags.count
        let offset = seq - run.seq
        guard offset < Int64(end - run.index) else { return false }
        return flags[run.index + Int(offset)]
    }
}
