import Crypto
import CSQLite
import Foundation

/// The kinds of ledger entry.
public enum EntryKind: String, Sendable, Codable {
    /// A signature: counts towards the goal.
    case signature
    /// The erasure of a signature's personal data (`muster forget`).
    case redaction
    /// An address that must never be mailed again (`muster unsubscribe`).
    case optout
    /// A signature taken out of the count as a duplicate of an earlier one (`muster dedupe
    /// --withdraw`): its body names both, `{"duplicate_of":A,"withdraws":B}`.
    case withdrawal
}

/// A campaign's signature ledger, `ledger.sqlite`: an append-only, hash-chained
/// log of entries, with signers' personal data and salts kept in a table of their own.
///
/// Each entry's hash covers its sequence number, kind, time, the signer's keyed
/// fingerprint, its non-personal body, the salted hash of its personal data, and
/// the previous entry's hash. `forget` deletes personal data and salt and appends a
/// redaction; the chain still verifies and the count is unchanged.
public final class Ledger {
    /// The `prev` of the first entry.
    public static let genesis = String(repeating: "0", count: 64)
    /// The newest ledger format, the one this muster writes.
    static var schemaVersion: Int64 { LedgerMigration.all.last!.version }
    static let busyTimeoutMilliseconds: Int32 = 60_000
    /// SQLITE_CONSTRAINT_UNIQUE, the extended code of a unique-index conflict.
    static let constraintUnique: Int32 = 2067

    let database: SQLiteDatabase
    public let url: URL
    /// The keyed hash of canonical emails, read from `meta` on first use.
    var fingerprintHMAC: KeyedHash?
    /// Statements prepared once per connection (Append.swift, this file).
    var selectSignature: SQLiteStatement?
    var insertEntry: SQLiteStatement?
    var insertPersonal: SQLiteStatement?
    var updateMeta: SQLiteStatement?
    var insertNode: SQLiteStatement?
    /// The Merkle tree's stored subtrees, `BulkTreeAppender.rowsPerInsert` rows at once.
    var insertNodes: SQLiteStatement?
    var selectMailbox: SQLiteStatement?
    var insertMailbox: SQLiteStatement?
    /// Who counts as one person (the workspace's `dedupe:` rules); the mailbox keys are
    /// brought in line with them by the first write (MailboxKeys.swift).
    public var mailboxRules: MailboxRules = .standard

    init(database: SQLiteDatabase, url: URL) {
        self.database = database
        self.url = url
    }

    /// The ledger at `url`, created if needed — except for a dry run when none exists
    /// yet: then a throwaway ledger (`scratch` true), so that a dry run creates nothing.
    ///
    /// The throwaway ledger is SQLite's private temporary database (an empty file name):
    /// pages stay in memory and spill to a file SQLite unlinks as soon as it opens it,
    /// so the personal data a dry run reads can never outlive the process, not even
    /// after `kill -9`.
    static func openForRun(_ url: URL, dryRun: Bool) throws -> (ledger: Ledger, scratch: Bool) {
        guard dryRun, !FileManager.default.fileExists(atPath: url.path) else {
            return (try open(url, create: true)!, false)
        }
        return try withStorage(path: "a dry run's temporary ledger") {
            let database = try SQLiteDatabase(path: "", create: true)
            let ledger = Ledger(database: database, url: url)
            try ledger.database.execute("PRAGMA foreign_keys=ON")
            let migrator = LedgerMigrator(path: url.path)
            try migrator.migrate(database, from: migrator.version(of: database))
            return (ledger, true)
        }
    }

    /// Opens the ledger at `url`, creating it (mode 0600) when `create` is true.
    /// Returns nil when it does not exist and `create` is false.
    ///
    /// A ledger of an older format is migrated to the newest first (and a note says so
    /// on stderr), whatever the command; one from a newer muster, or with a damaged
    /// format record, is refused before anything is written to it.
    public static func open(_ url: URL, create: Bool) throws -> Ledger? {
        try open(url, create: create, migrations: LedgerMigration.all)
    }

    static func open(_ url: URL, create: Bool, migrations: [LedgerMigration]) throws -> Ledger? {
        let path = url.path
        let exists = FileManager.default.fileExists(atPath: path)
        if !exists {
            guard create else { return nil }
            // Create the file ourselves so it is private from the first byte;
            // SQLite gives its -wal and -shm files the same mode.
            let fd = Foundation.open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            if fd < 0 && errno != EEXIST {
                throw MusterError.failure("cannot create \(path): \(String(cString: strerror(errno)))")
            }
            if fd >= 0 { close(fd) }
        }
        let migrator = LedgerMigrator(migrations, path: path)
        var version: Int64?
        do {
            let database = try SQLiteDatabase(path: path, create: false)
            database.setBusyTimeout(milliseconds: busyTimeoutMilliseconds)
            let ledger = Ledger(database: database, url: url)
            // Read the format before anything writes (even the journal mode).
            version = try migrator.version(of: database)
            try ledger.configure()
            let migrated = try migrator.migrate(database, from: version!)
            if let from = version, from >= 1, migrated > from {
                FileHandle.standardError.write(Data("muster: migrated \(path) from ledger format \(from) to \(migrated)\n".utf8))
            }
            return ledger
        } catch let error as SQLiteError where error.primaryCode == SQLITE_READONLY {
            let format = version.map { $0 < migrator.latest ? "it has ledger format \($0), which this muster migrates to \(migrator.latest) on opening, and " : "" } ?? ""
            throw MusterError.failure("""
                \(path) cannot be written (\(error.message)): \(format)muster opens a ledger for writing even to read it \
                (its write-ahead log lives beside it); make the file and its folder writable
                """)
        } catch let error as SQLiteError {
            throw MusterError.storage(error, path: path)
        }
    }

    private func configure() throws {
        // Changing the journal mode needs a moment alone with the file; retry while
        // other processes are opening it at the same instant.
        var attempts = 0
        while true {
            do {
                try database.execute("PRAGMA journal_mode=WAL")
                break
            } catch let error as SQLiteError where error.primaryCode == SQLITE_BUSY && attempts < 200 {
                attempts += 1
                usleep(10_000)
            }
        }
        try database.execute("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON; PRAGMA foreign_keys=ON")
    }

    // MARK: - Fingerprints

    /// HMAC-SHA256 of the canonical email under this ledger's own key.
    ///
    /// Kept after `forget`, so a forgotten signer who signs again is still a
    /// duplicate; without the ledger's key it reveals nothing about the address.
    func fingerprint(canonicalEmail: String) throws -> String {
        if fingerprintHMAC == nil {
            let statement = try database.prepare("SELECT value FROM meta WHERE key = 'fingerprint_key'")
            guard try statement.step() else { throw MusterError.failure("\(url.path) has no fingerprint key; it is not a muster ledger") }
            fingerprintHMAC = KeyedHash(key: statement.blob(0))
        }
        return Hex.encode(fingerprintHMAC!.code(canonicalEmail))
    }

    // MARK: - Head and meta

    /// The newest entry and the signature count, as recorded in `meta`.
    struct Head {
        var seq: Int64
        var hash: String
        var signatures: Int64
        /// The Merkle tree's right edge, loaded on the first append (Transparency/LedgerTree.swift).
        var tree: MerkleFrontier?
    }

    func readHead() throws -> Head {
        Head(seq: try metaInt("head_seq"), hash: try metaText("head_hash"), signatures: try metaInt("signature_count"))
    }

    func writeHead(_ head: Head) throws {
        try setMeta("head_seq", .int(head.seq))
        try setMeta("head_hash", .text(head.hash))
        try setMeta("signature_count", .int(head.signatures))
    }

    func metaInt(_ key: String) throws -> Int64 {
        guard let value = try database.scalarInt("SELECT value FROM meta WHERE key = ?", .text(key)) else {
            throw MusterError.failure("\(url.path) lacks its '\(key)' record; it is damaged or not a muster ledger")
        }
        return value
    }

    func metaText(_ key: String) throws -> String {
        guard let value = try database.scalarText("SELECT value FROM meta WHERE key = ?", .text(key)) else {
            throw MusterError.failure("\(url.path) lacks its '\(key)' record; it is damaged or not a muster ledger")
        }
        return value
    }

    func setMeta(_ key: String, _ value: SQLiteValue) throws {
        if updateMeta == nil {
            updateMeta = try database.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
        }
        try updateMeta!.run(.text(key), value)
    }

    // MARK: - Reading

    /// The number of signatures that count (forgotten ones included, withdrawn ones not)
    /// among the entries the chain covers — counted, not the record `meta` keeps (which
    /// `verify` checks against them). One pass over the kind index: the rowid condition is
    /// kept off the index choice (`+`), which would otherwise read the whole table.
    public func signatureCount() throws -> Int64 {
        try withStorage(path: url.path) {
            try database.scalarInt("""
                SELECT (SELECT count(*) FROM entries e WHERE e.kind = 'signature' AND +\(Self.chained("e")))
                     - (\(Self.withdrawnCountSQL))
                """) ?? 0
        }
    }

    /// The number of signatures withdrawn as duplicates (`muster dedupe --withdraw`).
    public func withdrawnCount() throws -> Int64 {
        try withStorage(path: url.path) { try database.scalarInt(Self.withdrawnCountSQL) ?? 0 }
    }

    /// Opens the ledger of `campaign` for writing signatures: as `open`, with the
    /// workspace's `dedupe:` rules (muster.yaml), so duplicates are found by mailbox.
    public static func open(_ campaign: Campaign, create: Bool) throws -> Ledger? {
        let rules = try campaign.workspace.mailboxRules()
        let ledger = try open(campaign.ledgerURL, create: create)
        ledger?.mailboxRules = rules
        return ledger
    }

    /// The hash of the newest entry (the genesis value when empty).
    public func headHash() throws -> String {
        try withStorage(path: url.path) { try metaText("head_hash") }
    }

    /// Runs `body` on one consistent snapshot of the ledger.
    public func snapshot<T>(_ body: () throws -> T) throws -> T {
        try withStorage(path: url.path) { try database.readTransaction(body) }
    }
}
