import Foundation

/// Signatures that the current rules consider one person (`muster dedupe`).
public struct DuplicateGroup: Sendable, Codable, Equatable {
    /// One signature of a group. No address unless asked for (`--show-addresses`).
    public struct Member: Sendable, Codable, Equatable {
        /// The signature's entry number.
        public let entry: Int64
        public let signedAt: String
        public let source: String
        public let collector: String?
        /// The address as typed; nil unless addresses were asked for.
        public let email: String?

        enum CodingKeys: String, CodingKey {
            case entry
            case signedAt = "signed_at"
            case source, collector, email
        }
    }

    /// The earliest signature (by time, then entry number): it stays.
    public let keep: Member
    /// The later ones, in the same order: `--withdraw` withdraws them.
    public let later: [Member]
}

/// What `muster dedupe` found and did.
public struct DedupeSummary: Sendable, Codable, Equatable {
    /// The groups, earliest kept signature first.
    public var groups: [DuplicateGroup]
    /// The later signatures of all groups: what `--withdraw` withdraws.
    public var duplicates: Int
    /// Withdrawal entries appended by this run (0 without `--withdraw`, or in a dry run).
    public var withdrawn: Int
    /// Signatures withdrawn before this run.
    public var withdrawnBefore: Int64
    /// Signatures that count afterwards (after a real run, for a dry run).
    public var count: Int64
    public var dryRun: Bool

    public init(groups: [DuplicateGroup], duplicates: Int, withdrawn: Int, withdrawnBefore: Int64, count: Int64, dryRun: Bool) {
        self.groups = groups
        self.duplicates = duplicates
        self.withdrawn = withdrawn
        self.withdrawnBefore = withdrawnBefore
        self.count = count
        self.dryRun = dryRun
    }

    enum CodingKeys: String, CodingKey {
        case groups, duplicates, withdrawn
        case withdrawnBefore = "withdrawn_before"
        case count
        case dryRun = "dry_run"
    }
}

extension Ledger {
    /// Lists the groups of signatures that count and share a mailbox key under
    /// `mailboxRules` (bringing the keys in line with the rules first); with `withdraw`,
    /// appends a `withdrawal` entry for each later signature of each group, keeping the
    /// earliest, and deletes its mailbox key. One write transaction, rolled back when
    /// `commit` is false (a dry run: the keys are not even rebuilt).
    public func dedupe(withdraw: Bool, commit: Bool, showAddresses: Bool, at date: Date) throws -> DedupeSummary {
        var note: String?
        let summary: DedupeSummary = try withStorage(path: url.path) {
            try database.execute("BEGIN IMMEDIATE")
            do {
                try ensureNothingBesideChain()
                // Every key is made again: dedupe also repairs keys that went missing.
                note = try syncMailboxKeys(force: true)
                let withdrawnBefore = try database.scalarInt(Self.withdrawnCountSQL) ?? 0
                let groups = try duplicateGroups(showAddresses: showAddresses)
                var withdrawn = 0
                if withdraw {
                    var head = try readHead()
                    let at = Timestamp.format(date)
                    let delete = try database.prepare("DELETE FROM mailbox_keys WHERE seq = ?")
                    for group in groups {
                        for member in group.later {
                            try appendEntry(kind: .withdrawal, at: at, fingerprint: nil,
                                            body: CanonicalJSON.encode(["duplicate_of": group.keep.entry, "withdraws": member.entry]),
                                            personal: nil, head: &head)
                            try delete.run(.int(member.entry))
                            withdrawn += 1
                        }
                    }
                    try writeHead(head)
                }
                let count = try countedSignatures()
                try database.execute(commit ? "COMMIT" : "ROLLBACK")
                if !commit { note = nil }
                return DedupeSummary(groups: groups, duplicates: groups.reduce(0) { $0 + $1.later.count }, withdrawn: commit ? withdrawn : 0,
                                     withdrawnBefore: withdrawnBefore, count: count, dryRun: !commit)
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
        }
        Self.announce(note)
        return summary
    }

    /// Inside a transaction: the groups of counted signatures with the same mailbox key
    /// (a row's key, or the fingerprint's start; both as 32 hex digits here — `hex(NULL)`
    /// is '', not NULL, hence the CASE).
    private func duplicateGroups(showAddresses: Bool) throws -> [DuplicateGroup] {
        let statement = try database.prepare("""
            WITH counted AS (
              SELECT e.seq, e.at, e.body, CASE WHEN m.key IS NULL THEN substr(e.fingerprint, 1, 32) ELSE lower(hex(m.key)) END AS key
              FROM entries e LEFT JOIN mailbox_keys m ON m.seq = e.seq
              WHERE e.kind = 'signature' AND \(Self.chained("e")) AND NOT \(Self.forgotten("e.seq"))
                AND e.seq NOT IN (\(Self.withdrawnSeqs()))
            )
            SELECT c.key, c.seq, c.at, c.body, p.data FROM counted c JOIN personal p ON p.seq = c.seq
            WHERE c.key IN (SELECT key FROM counted GROUP BY key HAVING count(*) > 1)
            ORDER BY c.key, c.at, c.seq
            """)
        defer { statement.reset() }
        var groups: [DuplicateGroup] = []
        var currentKey: String?
        var members: [DuplicateGroup.Member] = []
        func close() {
            if members.count > 1 { groups.append(DuplicateGroup(keep: members[0], later: Array(members.dropFirst()))) }
            members = []
        }
        while try statement.step() {
            let key = statement.text(0)
            if key != currentKey {
                close()
                currentKey = key
            }
            let body = Self.jsonObject(statement.text(3))
            var email: String?
            if showAddresses { email = Self.jsonObject(statement.text(4))["email"] as? String }
            members.append(.init(entry: statement.int64(1), signedAt: statement.text(2) ?? "", source: body["source"] as? String ?? "",
                                 collector: body["collector"] as? String, email: email))
        }
        close()
        return groups.sorted { ($0.keep.signedAt, $0.keep.entry) < ($1.keep.signedAt, $1.keep.entry) }
    }
}
