import Foundation

/// `muster review`: the held submissions of the sign page (over a `web:` limit), grouped
/// by cause, approved or rejected in bulk. Nothing here shows or returns an address.
extension Ledger {
    /// Held submissions of one cause, one client or domain, and one hour.
    public struct HeldGroup: Sendable, Equatable {
        /// `client` or `domain`.
        public var cause: String
        /// For `client`, the first 8 hex digits of the client's keyed hash (`unknown` when
        /// the server had no peer address); for `domain`, the email domain.
        public var bucket: String
        /// The hour the forms arrived in, `YYYY-MM-DDTHH:00Z` (UTC).
        public var window: String
        public var count: Int
        /// What `--approve`/`--reject` take to name this group (all its hours).
        public var id: String { "\(cause):\(bucket)" }
    }

    /// The held submissions that have not expired, grouped, most recent hour first.
    public func heldGroups(at date: Date) throws -> [HeldGroup] {
        try withStorage(path: url.path) {
            guard try hasPendingTable() else { return [] }
            return try heldRows(at: date).reduce(into: [String: HeldGroup]()) { groups, row in
                let key = "\(row.cause)\u{0}\(row.bucket)\u{0}\(row.window)"
                groups[key, default: HeldGroup(cause: row.cause, bucket: row.bucket, window: row.window, count: 0)].count += 1
            }.values.sorted { ($0.window, $0.count, $1.id) > ($1.window, $1.count, $0.id) }
        }
    }

    /// How many held submissions of new signers wait for review (not expired).
    public func heldCount(at date: Date) throws -> Int64 {
        try withStorage(path: url.path) {
            guard try hasPendingTable() else { return 0 }
            return try database.scalarInt("SELECT count(*) FROM pending WHERE purpose = 'confirm' AND held IS NOT NULL AND expires_at > ?",
                                          .text(Timestamp.format(date))) ?? 0
        }
    }

    /// Whether `selector` names the group: `all`, a cause (`client`, `domain`), a group id
    /// (`client:3f9a1c2b`, `domain:acme.example`), or a group id and one hour
    /// (`client:3f9a1c2b@2026-12-03T04:00Z`).
    static func heldSelectorMatches(_ selector: String, cause: String, bucket: String, window: String) -> Bool {
        let wanted = selector.lowercased()
        return wanted == "all" || wanted == cause || wanted == "\(cause):\(bucket)" || wanted == "\(cause):\(bucket)@\(window)".lowercased()
    }

    /// Whether `selector` has a form `heldSelectorMatches` understands.
    public static func isHeldSelector(_ selector: String) -> Bool {
        let wanted = selector.lowercased()
        return wanted == "all" || HeldCause.allCases.contains { wanted == $0.rawValue || wanted.hasPrefix($0.rawValue + ":") }
    }

    /// Approves the held submissions `selector` names, in one durable transaction: each
    /// becomes an ordinary pending submission whose mail is queued (the running server
    /// sends it), with a fresh 7 days to confirm. How many.
    public func approveHeld(_ selector: String, at date: Date) throws -> Int {
        try changeHeld(selector, at: date) { ids in
            for id in ids {
                try database.prepare("UPDATE pending SET held = NULL, expires_at = ? WHERE id = ?")
                    .run(.text(Timestamp.format(date.addingTimeInterval(Self.pendingLifetime))), .int(id))
            }
        }
    }

    /// Rejects them: the rows are deleted with their personal data, no mail sent. How many.
    public func rejectHeld(_ selector: String, at date: Date) throws -> Int {
        try changeHeld(selector, at: date) { ids in
            for id in ids { try database.prepare("DELETE FROM pending WHERE id = ?").run(.int(id)) }
        }
    }

    private func changeHeld(_ selector: String, at date: Date, _ change: ([Int64]) throws -> Void) throws -> Int {
        try withStorage(path: url.path) {
            guard try hasPendingTable() else { return 0 }
            return try database.writeTransaction {
                try erasePendingExpired(at: date)
                let ids = try heldRows(at: date)
                    .filter { Self.heldSelectorMatches(selector, cause: $0.cause, bucket: $0.bucket, window: $0.window) }.map(\.id)
                try change(ids)
                return ids.count
            }
        }
    }

    private func hasPendingTable() throws -> Bool {
        try database.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'pending'") == 1
    }

    private func heldRows(at date: Date) throws -> [(id: Int64, cause: String, bucket: String, window: String)] {
        let select = try database.prepare("""
            SELECT id, held, client_key, domain, created_at FROM pending WHERE held IS NOT NULL AND expires_at > ? ORDER BY id
            """)
        try select.bind([.text(Timestamp.format(date))])
        defer { select.reset() }
        var rows: [(Int64, String, String, String)] = []
        while try select.step() {
            let cause = select.text(1) ?? ""
            let bucket: String
            if cause == HeldCause.client.rawValue {
                bucket = select.isNull(2) ? "unknown" : String(Hex.encode(select.blob(2)).prefix(8))
            } else {
                bucket = select.text(3) ?? ""
            }
            rows.append((select.int64(0), cause, bucket, String((select.text(4) ?? "").prefix(13)) + ":00Z"))
        }
        return rows
    }
}
