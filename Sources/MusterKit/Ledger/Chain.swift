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

    /// The SQL condition "the signature `seq` (an SQL expression) was forgotten": a
    /// redaction entry the chain covers names it.
    ///
    /// That, and not the absence of a `personal` row, is what makes a signer forgotten: a
    /// personal row put back for a forgotten signer (with `sqlite3`, say) is tampering,
    /// which `verify` reports, and every reader ignores it, so the signer is never
    /// exported, merged or mailed again. The redacted seqs are an uncorrelated subquery,
    /// which SQLite evaluates once per statement; a body that is not JSON or has no integer
    /// `redacts` names nothing (and `verify` reports it).
    static func forgotten(_ seq: String) -> String {
        """
        \(seq) IN (SELECT json_extract(r.body, '$.redacts') FROM entries r WHERE r.kind = 'redaction' AND \(chained("r"))         AND CASE WHEN json_valid(r.body) THEN json_type(r.body, '$.redacts') = 'integer' ELSE 0 END)
        """
    }

    /// The tables and indexes muster creates in a ledger of the newest format (names as
    /// in `sqlite_schema`); `verify` reports any other table, index, view or trigger. The
    /// unique fingerprint index may be missing only inside a bulk import's own
    /// transaction, which no reader sees.
    static let schemaObjects: Set<String> = [
        "table meta", "table entries", "table personal", "table outbox",
        "index sqlite_autoindex_meta_1",
        "index entries_one_signature_per_signer", "index entries_by_kind_and_time", "index entries_opt_outs",
        "index outbox_in_order",
        "table migrations", // format 2
        "table mailbox_keys", "index mailbox_keys_by_key", // format 3: derived data (MailboxKeys.swift)
        "table merkle_nodes", // format 4: the Merkle tree's stored subtrees (Transparency/LedgerTree.swift)
        // Format 5: signatures from the sign page awaiting confirmation (Web/PendingStore.swift).
        "table pending", "index sqlite_autoindex_pending_1", "index pending_by_key", "index pending_by_expiry",
        "index pending_mail_queue", "index pending_by_client", "index pending_by_domain",
        // Format 6: bounces, suppressions and processed mailbox messages (Inbox/Suppression.swift).
        "table bounces", "index bounces_by_recipient", "table suppressions", "table inbox_processed",
        "index inbox_processed_by_uid",
        // SQLite's own statistics (ANALYZE, `PRAGMA optimize`): they hold no rows of muster's.
        "table sqlite_stat1", "table sqlite_stat4",
    ]

    /// `schemaObjects` as a ledger of `format` has them. Only merge reads (and verifies) a
    /// ledger of an older format, another machine's, without migrating it. A migration
    /// that creates or drops an object adds a line here for the formats before it.
    static func schemaObjects(format: Int64) -> Set<String> {
        var objects = schemaObjects
        if format < 6 {
            // Format 6 adds bounces and suppressions.
            objects.subtract(["table bounces", "index bounces_by_recipient", "table suppressions", "table inbox_processed",
                              "index inbox_processed_by_uid"])
        }
        if format < 5 {
            // Format 5 adds the sign page's pending signatures.
            objects.subtract(["table pending", "index sqlite_autoindex_pending_1", "index pending_by_key", "index pending_by_expiry",
                              "index pending_mail_queue", "index pending_by_client", "index pending_by_domain"])
        }
        if format < 4 {
            // Format 4 adds the Merkle tree.
            objects.remove("table merkle_nodes")
        }
        if format < 3 {
            // Format 3 adds the mailbox keys.
            objects.remove("table mailbox_keys")
            objects.remove("index mailbox_keys_by_key")
        }
        if format < 2 {
            // Format 2 records its migrations, and drops the state index that format-1
            // ledgers made before 2026-11-27 have.
            objects.remove("table migrations")
            objects.insert("index outbox_by_state")
        }
        return objects
    }

    /// "entries 1–N", or "no entries yet" for an empty chain, for messages.
    static func chainExtent(_ head: Int64) -> String {
        head >= 1 ? "entries 1–\(head)" : "no entries yet"
    }

    /// The records muster keeps in `meta`; `verify` reports any other.
    static let metaKeys: Set<String> = ["fingerprint_key", "head_seq", "head_hash", "signature_count", "schema_version", "mailbox_rules", "mail_token_key", "seal_key"]

    /// SQL: the entries that chained withdrawals withdraw (`{"withdraws":N}`), a list for
    /// `seq IN (…)`. A body that is not JSON or names no integer is skipped here (`verify`
    /// reports it); the CASE keeps `json_type` off bodies that are not JSON.
    static func withdrawnSeqs(upTo instant: String? = nil) -> String {
        """
        SELECT json_extract(w.body, '$.withdraws') FROM entries w WHERE w.kind = 'withdrawal' AND \(chained("w"))
          AND CASE WHEN json_valid(w.body) THEN json_type(w.body, '$.withdraws') = 'integer' ELSE 0 END\(instant.map { " AND w.at <= \($0)" } ?? "")
        """
    }

    /// SQL: how many chained signatures are withdrawn (each counted once). The unary `+`
    /// keeps SQLite from answering `kind = 'signature'` or the chain's range through an
    /// index — a scan of every signature (150 ms on a million, on every `sign`) — instead
    /// of looking up each withdrawn entry by its number.
    static let withdrawnCountSQL = """
        SELECT count(*) FROM entries s WHERE s.seq IN (\(withdrawnSeqs())) AND +s.kind = 'signature'
          AND +s.seq BETWEEN 1 AND (SELECT value FROM meta WHERE key = 'head_seq')
        """

    /// Throws (exit 1) when the ledger holds anything outside its chain, so that a
    /// long-lived writer such as the kiosk refuses before it starts rather than at its
    /// first signature (each write checks again).
    public func ensureWritable() throws {
        try snapshot { try ensureNothingBesideChain() }
    }

    /// Inside a write transaction: throws (exit 1, nothing written) when the ledger holds
    /// an entry, personal data or a mailbox key outside its chain (seq ≤ 0 or beyond the head).
    ///
    /// Writing would be wrong either way: an entry beside the chain could make a real new
    /// signer look like a duplicate (the unique fingerprint index sees every row), and
    /// appending would give the forged row a place inside the range the chain covers.
    /// Six probes of the rowid b-trees: it costs nothing however large the ledger.
    func ensureNothingBesideChain() throws {
        let head = try metaInt("head_seq")
        for table in ["entries", "personal", "mailbox_keys"] {
            let outside = try database.scalarInt("SELECT seq FROM \(table) WHERE seq < 1 ORDER BY seq LIMIT 1")
                ?? database.scalarInt("SELECT seq FROM \(table) WHERE seq > ? ORDER BY seq LIMIT 1", .int(head))
            if let outside {
                let what = table == "entries" ? "an entry" : table == "personal" ? "personal data" : "a mailbox key"
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
