import Foundation

/// One signature as the ledger holds it, for export and merge.
public struct StoredSignature: Sendable, Equatable {
    /// The signer's personal data; nil once forgotten.
    public struct Personal: Sendable, Equatable {
        public var name: String
        public var email: String
        public var comment: String?
        public var fields: [String: String]
    }

    /// The entry's sequence number.
    public var seq: Int64
    /// When it was signed (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    public var signedAt: String
    public var source: String
    public var collector: String?
    public var consents: [String]
    /// Fields kept after `forget`.
    public var publicFields: [String: String]
    public var personal: Personal?
    /// Whether the address has opted out of mail.
    public var unsubscribed: Bool
    /// Why the address is suppressed (`bounce`, `soft_bounce`, `complaint`), if it is.
    public var suppressed: String? = nil
}

extension Ledger {
    /// Calls `body` for every signature that counts (withdrawn ones left out), in ledger
    /// order or, with `byTime`, in `signed_at` order (ties in ledger order), on one
    /// consistent snapshot. A forgotten signature comes without personal data, even if a
    /// personal row was put back for it.
    public func forEachSignature(byTime: Bool = false, _ body: (StoredSignature) throws -> Void) throws {
        try snapshot {
            try withStorage(path: url.path) {
                var optedOut = Set<String>()
                let optouts = try database.prepare("SELECT e.fingerprint FROM entries e WHERE e.kind = 'optout' AND \(Self.chained("e"))")
                while try optouts.step() { if let text = optouts.text(0) { optedOut.insert(text) } }
                // Format 7 on, sealed rows only (merge reads older ledgers as they are;
                // their suppressions are not read: no seal tells which muster wrote).
                var suppressed: [String: String] = [:]
                if try database.scalarInt("SELECT count(*) FROM pragma_table_info('suppressions') WHERE name = 'seal'") == 1 {
                    let rows = try database.prepare("SELECT s.recipient, s.reason FROM suppressions s WHERE \(Self.sealed(suppression: "s"))")
                    while try rows.step() { if let key = rows.text(0) { suppressed[key] = rows.text(1) } }
                }
                let statement = try database.prepare("""
                    SELECT e.seq, e.at, e.fingerprint, e.body, p.data
                    FROM entries e LEFT JOIN personal p ON p.seq = e.seq AND NOT \(Self.forgotten("e.seq"))
                    WHERE e.kind = 'signature' AND \(Self.chained("e")) AND e.seq NOT IN (\(Self.withdrawnSeqs()))
                    ORDER BY \(byTime ? "e.at, e.seq" : "e.seq")
                    """)
                while try statement.step() {
                    let fields = Self.jsonObject(statement.text(3))
                    var personal: StoredSignature.Personal?
                    if !statement.isNull(4) {
                        let data = Self.jsonObject(statement.text(4))
                        personal = .init(name: data["name"] as? String ?? "", email: data["email"] as? String ?? "",
                                         comment: data["comment"] as? String, fields: data["fields"] as? [String: String] ?? [:])
                    }
                    try body(StoredSignature(
                        seq: statement.int64(0), signedAt: statement.text(1) ?? "",
                        source: fields["source"] as? String ?? "", collector: fields["collector"] as? String,
                        consents: fields["consent"] as? [String] ?? [], publicFields: fields["fields"] as? [String: String] ?? [:],
                        personal: personal, unsubscribed: statement.text(2).map(optedOut.contains) ?? false,
                        suppressed: statement.text(2).flatMap { suppressed[$0] }))
                }
            }
        }
    }

    static func jsonObject(_ text: String?) -> [String: Any] {
        guard let text, let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return [:] }
        return object
    }
}

extension Ledger {
    /// Opens an existing ledger made elsewhere (e.g. on another laptop) without creating,
    /// migrating or reconfiguring it; throws a bad-input error when it is not a muster
    /// ledger or is from a newer muster. Any older format is read as it is (what is read
    /// here — entries, personal data, meta — is the same in every format so far).
    public static func openExisting(_ url: URL) throws -> Ledger {
        let path = url.path
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue else {
            throw MusterError.badInput("\(path) does not exist or is not a file")
        }
        do {
            let database = try SQLiteDatabase(path: path, create: false)
            database.setBusyTimeout(milliseconds: busyTimeoutMilliseconds)
            guard try LedgerMigrator(path: path, refusal: .badInput).version(of: database) >= 1 else {
                throw MusterError.badInput("\(path) is not a muster ledger (it is empty)")
            }
            return Ledger(database: database, url: url)
        } catch let error as SQLiteError {
            if error.primaryCode == 26 { throw MusterError.badInput("\(path) is not a muster ledger (not an SQLite database)") }
            throw MusterError.storage(error, path: path)
        }
    }

    /// `verify` in one pass on this connection (no write lock taken).
    public func verifySequentially() throws -> VerifyReport {
        try verify(parallelFrom: .max)
    }
}
