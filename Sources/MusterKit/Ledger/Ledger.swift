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
    private var fingerprintHMAC: HMAC<SHA256>?

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
            fingerprintHMAC = HMAC<SHA256>(key: SymmetricKey(data: statement.blob(0)))
        }
        var hmac = fingerprintHMAC!
        hmac.update(data: Array(canonicalEmail.utf8))
        return Hex.encode(hmac.finalize())
    }

    // MARK: - Appending

    /// The outcome of `append`.
    public enum AppendOutcome: Sendable, Equatable {
        /// Added as entry `seq`; `count` signatures now.
        case added(seq: Int64, count: Int64)
        /// Already signed, first at `firstSignedAt`; the ledger is unchanged.
        case duplicate(firstSignedAt: String, count: Int64)
    }

    /// Appends one signature unless its canonical email already signed.
    /// Durable when it returns (`synchronous=FULL`).
    public func append(_ signature: ValidSignature, at date: Date) throws -> AppendOutcome {
        let fingerprint = try fingerprint(canonicalEmail: signature.canonicalEmail)
        return try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                if let first = try firstSignature(fingerprint: fingerprint) {
                    return .duplicate(firstSignedAt: first.at, count: try metaInt("signature_count"))
                }
                let seq = try appendEntry(kind: .signature, at: Timestamp.format(date), fingerprint: fingerprint,
                                          body: Self.signatureBody(signature), personal: Self.personalData(signature))
                return .added(seq: seq, count: try metaInt("signature_count"))
            }
        }
    }

    private var selectSignature: SQLiteStatement?

    func firstSignature(fingerprint: String) throws -> (seq: Int64, at: String)? {
        if selectSignature == nil {
            selectSignature = try database.prepare("SELECT e.seq, e.at FROM entries e WHERE e.kind = 'signature' AND e.fingerprint = ? AND \(Self.chained("e"))")
        }
        let statement = selectSignature!
        statement.reset()
        try statement.bind([.text(fingerprint)])
        defer { statement.reset() } // never leave a read open between transactions
        guard try statement.step() else { return nil }
        return (statement.int64(0), statement.text(1) ?? "")
    }

    private var insertEntry: SQLiteStatement?
    private var insertPersonal: SQLiteStatement?
    private var updateMeta: SQLiteStatement?

    /// The newest entry and the signature count, as recorded in `meta`.
    struct Head {
        var seq: Int64
        var hash: String
        var signatures: Int64
    }

    func readHead() throws -> Head {
        Head(seq: try metaInt("head_seq"), hash: try metaText("head_hash"), signatures: try metaInt("signature_count"))
    }

    func writeHead(_ head: Head) throws {
        try setMeta("head_seq", .int(head.seq))
        try setMeta("head_hash", .text(head.hash))
        try setMeta("signature_count", .int(head.signatures))
    }

    /// Appends one entry after the current head, inside a write transaction.
    @discardableResult
    func appendEntry(kind: EntryKind, at: String, fingerprint: String?, body: String, personal: String?) throws -> Int64 {
        var head = try readHead()
        let seq = try appendEntry(kind: kind, at: at, fingerprint: fingerprint, body: body, personal: personal, head: &head)
        try writeHead(head)
        return seq
    }

    /// Appends one entry after `head` and advances it; the caller writes the head back.
    @discardableResult
    func appendEntry(kind: EntryKind, at: String, fingerprint: String?, body: String, personal: String?, head: inout Head) throws -> Int64 {
        var personalHash: String?
        var salt: [UInt8] = []
        if let personal {
            salt = Self.randomSalt()
            personalHash = LedgerHash.personal(salt: salt, data: Array(personal.utf8))
        }
        return try appendEntry(kind: kind, at: at, fingerprint: fingerprint, body: body, personal: personal,
                               salt: salt, personalHash: personalHash, head: &head)
    }

    /// `appendEntry` with the personal data's salt and hash already computed.
    @discardableResult
    func appendEntry(kind: EntryKind, at: String, fingerprint: String?, body: String, personal: String?,
                     salt: [UInt8], personalHash: String?, head: inout Head) throws -> Int64 {
        let seq = head.seq + 1
        let hash = LedgerHash.entry(seq: seq, kind: kind.rawValue, at: at, fingerprint: fingerprint,
                                    body: body, personalHash: personalHash, prev: head.hash)
        let (insertEntry, insertPersonal) = try entryStatements()
        do {
            let insert = insertEntry
            try insert.bindInt(1, seq)
            try insert.bindText(2, kind.rawValue)
            try insert.bindText(3, at)
            try insert.bindText(4, fingerprint)
            try insert.bindText(5, body)
            try insert.bindText(6, personalHash)
            try insert.bindText(7, head.hash)
            try insert.bindText(8, hash)
            try insert.runBound()
        } catch let error as SQLiteError where error.code == Self.constraintUnique && kind == .signature {
            throw DuplicateSignature()
        }
        if let personal {
            let insert = insertPersonal
            try insert.bindInt(1, seq)
            try insert.bindBlob(2, salt)
            try insert.bindText(3, personal)
            try insert.runBound()
        }
        head.seq = seq
        head.hash = hash
        if kind == .signature { head.signatures += 1 }
        return seq
    }

    /// Appends many signatures in one transaction (all or nothing), skipping any
    /// whose canonical email already signed, in the ledger or earlier in `signatures`.
    public func appendAll(_ signatures: some Sequence<(ValidSignature, Date)>) throws -> (added: Int, duplicates: Int) {
        try appendBatch { append in
            var added = 0, duplicates = 0
            for (signature, date) in signatures {
                if try append(signature, date) { added += 1 } else { duplicates += 1 }
            }
            return (added, duplicates)
        }
    }

    /// Streams signatures into one write transaction: `body` calls `append` once per
    /// signature, which answers true when it was added and false for a duplicate (of
    /// the ledger or of an earlier call). All or nothing: when `body` throws, or when
    /// `commit` is false (a dry run), the ledger is left as it was.
    public func appendBatch<T>(commit: Bool = true, _ body: (_ append: (ValidSignature, Date) throws -> Bool) throws -> T) throws -> T {
        let preparer = try signaturePreparer()
        return try appendPreparedBatch(commit: commit) { appendPrepared in
            try withoutActuallyEscaping(appendPrepared) { appendPrepared in
                try body { signature, date in try appendPrepared(preparer.prepare(signature, at: date)) }
            }
        }
    }

    /// A preparer that does the per-signature work needing no ledger access (fingerprint,
    /// bodies, salt and personal-data hash), so it can run on another thread.
    public func signaturePreparer() throws -> SignaturePreparer {
        _ = try fingerprint(canonicalEmail: "")
        return SignaturePreparer(hmac: fingerprintHMAC!)
    }

    /// A batch expected to add at least this many signatures, and at least twice as many
    /// as the ledger already holds, checks duplicates in memory and rebuilds the unique
    /// fingerprint index at the end (see `appendBatches`).
    static let bulkMinimum = 20_000
    /// …and as long as the fingerprints held in memory stay under about 200 MB.
    static let bulkMaximum = 4_000_000

    /// Like `appendBatch`, for signatures prepared by `signaturePreparer()` (of this ledger).
    public func appendPreparedBatch<T>(commit: Bool = true, expectedCount: Int = 0,
                                       _ body: (_ append: (PreparedSignature) throws -> Bool) throws -> T) throws -> T {
        try appendBatches(commit: commit, expectedCount: expectedCount) { batch in
            try body { prepared in try batch.append(prepared) }
        }
    }

    /// Runs `body` in one write transaction (all or nothing, as `appendBatch`), giving it a
    /// `LedgerBatch` to append prepared signatures one at a time or packed in batches.
    ///
    /// `expectedCount` is how many signatures the caller expects to append (an estimate;
    /// 0 when unknown). A large batch into a small ledger — an import into a new campaign —
    /// checks duplicates against an in-memory set of fingerprints instead of the unique
    /// index, which it drops at the start of the transaction and recreates, with the same
    /// definition, before committing: one sort instead of a random index insert per row.
    /// It is all one transaction, so no other connection ever sees the ledger without its
    /// index, and a rollback (a dry run, an error, a killed process) restores it as it was.
    public func appendBatches<T>(commit: Bool = true, expectedCount: Int = 0, _ body: (LedgerBatch) throws -> T) throws -> T {
        try appendBatches(commit: commit, expectedCount: expectedCount, bulkMinimum: Self.bulkMinimum, body)
    }

    func appendBatches<T>(commit: Bool, expectedCount: Int, bulkMinimum: Int, _ body: (LedgerBatch) throws -> T) throws -> T {
        try withStorage(path: url.path) {
            defer { try? database.execute("PRAGMA cache_size = -2000") }
            try database.execute("BEGIN IMMEDIATE")
            var batch: LedgerBatch?
            defer { batch?.isOpen = false }
            do {
                try ensureNothingBesideChain()
                let open = LedgerBatch(ledger: self, head: try readHead())
                batch = open
                var indexSQL: String?
                if expectedCount >= bulkMinimum && Int64(expectedCount) >= 2 * open.head.signatures,
                   Int64(expectedCount) + open.head.signatures <= Self.bulkMaximum,
                   let bulk = try startBulkAppend(capacity: Int(open.head.signatures) + expectedCount) {
                    open.fingerprints = bulk.fingerprints
                    indexSQL = bulk.indexSQL
                    // The tables and the remaining indexes are appended to in order: a small
                    // cache is enough, and it leaves room for the fingerprints.
                    try database.execute("PRAGMA cache_size = -16384")
                } else {
                    // A larger page cache keeps the fingerprint index in memory for big batches.
                    try database.execute("PRAGMA cache_size = -65536")
                }
                let result = try body(open)
                open.isOpen = false
                if commit {
                    if let indexSQL {
                        open.fingerprints = nil
                        try database.execute(indexSQL)
                    }
                    try writeHead(open.head)
                    try database.execute("COMMIT")
                } else {
                    try database.execute("ROLLBACK")
                }
                return result
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
        }
    }

    private func entryStatements() throws -> (entry: SQLiteStatement, personal: SQLiteStatement) {
        if insertEntry == nil {
            insertEntry = try database.prepare("INSERT INTO entries (seq, kind, at, fingerprint, body, personal_hash, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        }
        if insertPersonal == nil {
            insertPersonal = try database.prepare("INSERT INTO personal (seq, salt, data) VALUES (?, ?, ?)")
        }
        return (insertEntry!, insertPersonal!)
    }

    /// Appends the signatures packed in `batch` after `head`, in order, skipping those
    /// whose signer already signed (checked in `fingerprints` when given, otherwise by the
    /// unique index). The same entries as `appendEntry` would write, bound straight from
    /// the batch's buffer.
    func appendPacked(_ batch: PreparedBatch, head: inout Head, fingerprints: FingerprintSet?) throws -> (added: Int, duplicates: Int) {
        let (entry, personal) = try entryStatements()
        defer {
            entry.clearBindings()
            personal.clearBindings()
        }
        // The previous entry's hash and this one's, in hex, swapped after each entry.
        var previous = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        var current = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer {
            previous.deallocate()
            current.deallocate()
        }
        guard head.hash.utf8.count == 64 else { throw MusterError.failure("\(url.path) has a malformed head hash; run `muster verify`") }
        previous.copyBytes(from: head.hash.utf8)
        var scratch: [UInt8] = []
        scratch.reserveCapacity(1024)
        var added = 0, duplicates = 0
        // The head's hash follows its sequence number, also when an insert fails part-way.
        defer { if added > 0 { head.hash = String(decoding: UnsafeRawBufferPointer(previous), as: UTF8.self) } }
        // With the fingerprints in memory, the whole batch is checked first: the lookups
        // (a cache miss each) then overlap instead of waiting one by one between inserts.
        var isNew: [Bool] = []
        if let fingerprints {
            isNew.reserveCapacity(batch.rows.count)
            for row in batch.rows { isNew.append(fingerprints.insert(row.key)) }
        }
        try batch.bytes.withUnsafeBytes { bytes in
            for (index, row) in batch.rows.enumerated() {
                let fingerprint = UnsafeRawBufferPointer(rebasing: bytes[row.start..<(row.start + 64)])
                let personalHash = UnsafeRawBufferPointer(rebasing: bytes[(row.start + 64)..<(row.start + 128)])
                let salt = UnsafeRawBufferPointer(rebasing: bytes[(row.start + 128)..<(row.start + 144)])
                let atEnd = row.start + 144 + row.atCount
                let bodyEnd = atEnd + row.bodyCount
                let at = UnsafeRawBufferPointer(rebasing: bytes[(row.start + 144)..<atEnd])
                let body = UnsafeRawBufferPointer(rebasing: bytes[atEnd..<bodyEnd])
                let data = UnsafeRawBufferPointer(rebasing: bytes[bodyEnd..<(bodyEnd + row.personalCount)])
                if !isNew.isEmpty && !isNew[index] {
                    duplicates += 1
                    continue
                }
                let seq = head.seq + 1
                // The hash: the same bytes as LedgerHash.entry gathers.
                scratch.removeAll(keepingCapacity: true)
                LedgerHash.appendEntryFields(seq: seq, kind: EntryKind.signature.rawValue, at: at, fingerprint: fingerprint, body: body,
                                             personalHash: personalHash, prev: UnsafeRawBufferPointer(previous), to: &scratch)
                scratch.withUnsafeBytes { SHA256.hash(data: $0) }.withUnsafeBytes { Hex.write($0, to: current.baseAddress!) }
                try entry.bindInt(1, seq)
                try entry.bindText(2, EntryKind.signature.rawValue)
                try entry.bindText(3, borrowing: at)
                try entry.bindText(4, borrowing: fingerprint)
                try entry.bindText(5, borrowing: body)
                try entry.bindText(6, borrowing: personalHash)
                try entry.bindText(7, borrowing: UnsafeRawBufferPointer(previous))
                try entry.bindText(8, borrowing: UnsafeRawBufferPointer(current))
                guard try entry.runBound(refusedWith: Self.constraintUnique) else {
                    duplicates += 1
                    continue
                }
                try personal.bindInt(1, seq)
                try personal.bindBlob(2, borrowing: salt)
                try personal.bindText(3, borrowing: data)
                try personal.runBound()
                head.seq = seq
                head.signatures += 1
                swap(&previous, &current)
                added += 1
            }
        }
        return (added, duplicates)
    }

    /// Inside a write transaction: the fingerprints of every signature in the ledger, read
    /// into memory, and the unique index on them dropped; returns the index's definition to
    /// recreate it. Nil (and nothing changed) when the index is not there as expected.
    private func startBulkAppend(capacity: Int) throws -> (fingerprints: FingerprintSet, indexSQL: String)? {
        guard let sql = try database.scalarText("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = 'entries_one_signature_per_signer'") else {
            return nil
        }
        let fingerprints = FingerprintSet(capacity: capacity)
        do {
            let statement = try database.prepare("SELECT e.fingerprint FROM entries e WHERE e.kind = 'signature' AND \(Self.chained("e"))")
            defer { statement.reset() }
            while try statement.step() {
                // Every stored fingerprint is 64 lower-case hex digits and unique; anything
                // else keeps the index in place.
                guard statement.withBytes(0, { fingerprints.insert(hexBytes: $0) }) == true else { return nil }
            }
        }
        try database.execute("DROP INDEX entries_one_signature_per_signer")
        return (fingerprints, sql)
    }

    /// 16 random bytes from the system's generator (two draws, not sixteen).
    static func randomSalt() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var salt = [UInt8](repeating: 0, count: 16)
        salt.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 8, as: UInt64.self)
        }
        return salt
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

    /// The canonical JSON of a signature's non-personal part (same bytes as
    /// `CanonicalJSON.encode` of the equivalent dictionary, without the casts).
    static func signatureBody(_ signature: ValidSignature) -> String {
        CanonicalObjectWriter.object { writeBody(signature, to: &$0) }
    }

    /// Appends `signatureBody(signature)`'s bytes to `buffer`.
    static func appendSignatureBody(_ signature: ValidSignature, to buffer: inout [UInt8]) {
        CanonicalObjectWriter.append(to: &buffer) { writeBody(signature, to: &$0) }
    }

    private static func writeBody(_ signature: ValidSignature, to writer: inout CanonicalObjectWriter) {
        if let collector = signature.collector { writer.string("collector", collector) }
        if !signature.consents.isEmpty { writer.strings("consent", signature.consents) }
        if !signature.publicFields.isEmpty { writer.object("fields", signature.publicFields) }
        writer.string("source", signature.source)
    }

    /// The canonical JSON of a signature's personal data.
    static func personalData(_ signature: ValidSignature) -> String {
        CanonicalObjectWriter.object { writePersonal(signature, to: &$0) }
    }

    /// Appends `personalData(signature)`'s bytes to `buffer`.
    static func appendPersonalData(_ signature: ValidSignature, to buffer: inout [UInt8]) {
        CanonicalObjectWriter.append(to: &buffer) { writePersonal(signature, to: &$0) }
    }

    private static func writePersonal(_ signature: ValidSignature, to writer: inout CanonicalObjectWriter) {
        if let comment = signature.comment { writer.string("comment", comment) }
        writer.string("email", signature.email)
        if !signature.personalFields.isEmpty { writer.object("fields", signature.personalFields) }
        writer.string("name", signature.name)
    }

    // MARK: - Forget and unsubscribe

    /// The outcome of `forget`.
    public enum ForgetOutcome: Sendable, Equatable {
        /// Personal data of entry `seq` erased; redaction appended as `redaction`.
        case forgotten(seq: Int64, redaction: Int64)
        /// Erased earlier; nothing to do.
        case alreadyForgotten(seq: Int64)
        /// No signature with that address.
        case notFound
    }

    /// Erases the personal data and salt of the signature with `canonicalEmail`,
    /// appends a redaction entry, and scrubs the write-ahead log.
    public func forget(canonicalEmail: String, at date: Date) throws -> ForgetOutcome {
        let fingerprint = try fingerprint(canonicalEmail: canonicalEmail)
        let outcome: ForgetOutcome = try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                guard let signature = try firstSignature(fingerprint: fingerprint) else { return .notFound }
                guard try database.scalarInt("SELECT count(*) FROM personal WHERE seq = ?", .int(signature.seq)) == 1 else {
                    return .alreadyForgotten(seq: signature.seq)
                }
                try database.prepare("DELETE FROM personal WHERE seq = ?").run(.int(signature.seq))
                // Relays quote the address in their replies ("550 <ana@…>: unknown user").
                try database.prepare("UPDATE outbox SET reply = '(erased with the signer''s personal data)' WHERE signature = ? AND reply IS NOT NULL")
                    .run(.int(signature.seq))
                let redaction = try appendEntry(kind: .redaction, at: Timestamp.format(date), fingerprint: nil,
                                                body: CanonicalJSON.encode(["redacts": signature.seq]), personal: nil)
                return .forgotten(seq: signature.seq, redaction: redaction)
            }
        }
        if case .forgotten = outcome { try scrubWriteAheadLog() }
        return outcome
    }

    /// Copies the log into the database and truncates it, so erased bytes no longer
    /// sit in `ledger.sqlite-wal` (`secure_delete` already zeroes them in the file).
    func scrubWriteAheadLog() throws {
        for _ in 0..<100 {
            let statement = try database.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
            guard try statement.step() else { return }
            if statement.int64(0) == 0 { return } // not blocked by a reader
            usleep(50_000)
        }
        throw MusterError(.temporary, "the personal data was erased, but another muster process kept the write-ahead log open; run `muster forget` again when it has finished to scrub the log")
    }

    /// The outcome of `unsubscribe`.
    public enum UnsubscribeOutcome: Sendable, Equatable {
        case unsubscribed(seq: Int64)
        case alreadyUnsubscribed
    }

    /// Records that `canonicalEmail` must never be mailed again (signer or not).
    public func unsubscribe(canonicalEmail: String, at date: Date) throws -> UnsubscribeOutcome {
        let fingerprint = try fingerprint(canonicalEmail: canonicalEmail)
        return try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                if try isOptedOut(fingerprint: fingerprint) { return .alreadyUnsubscribed }
                let seq = try appendEntry(kind: .optout, at: Timestamp.format(date), fingerprint: fingerprint, body: "{}", personal: nil)
                return .unsubscribed(seq: seq)
            }
        }
    }

    func isOptedOut(fingerprint: String) throws -> Bool {
        try database.scalarInt("SELECT count(*) FROM entries e WHERE e.fingerprint = ? AND e.kind = 'optout' AND \(Self.chained("e"))", .text(fingerprint)) ?? 0 > 0
    }

    /// Whether `canonicalEmail` has opted out of mail.
    public func isOptedOut(canonicalEmail: String) throws -> Bool {
        try isOptedOut(fingerprint: fingerprint(canonicalEmail: canonicalEmail))
    }

    // MARK: - Reading

    /// The number of signatures (forgotten ones included) among the entries the chain
    /// covers — counted, not the record `meta` keeps (which `verify` checks against them).
    /// One pass over the kind index: the rowid condition is kept off the index choice
    /// (`+`), which would otherwise read the whole table.
    public func signatureCount() throws -> Int64 {
        try withStorage(path: url.path) {
            try database.scalarInt("""
                SELECT count(*) FROM entries e WHERE e.kind = 'signature' AND +\(Self.chained("e"))
                """) ?? 0
        }
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
        // The same bytes as "muster-ledger-v1\0\(seq)\0…", gathered in one buffer.
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
        return Hex.encode(SHA256.hash(data: buffer))
    }

    /// SHA-256 of the salt followed by the personal data's bytes.
    public static func personal(salt: [UInt8], data: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: data)
        return Hex.encode(hasher.finalize())
    }
}

/// Lower-case hexadecimal.
enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The value of one lower-case hex digit (as `encode` writes them), or nil.
    @inline(__always)
    static func value(ofDigit byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte &- 0x30
        case 0x61...0x66: return byte &- 0x61 &+ 10
        default: return nil
        }
    }

    static func encode<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func encode(_ digest: SHA256.Digest) -> String {
        digest.withUnsafeBytes(encodeRaw)
    }

    /// Hex of raw bytes, written straight into the string's storage.
    static func encodeRaw(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for index in 0..<bytes.count {
                out[index &* 2] = digits[Int(bytes[index] >> 4)]
                out[index &* 2 &+ 1] = digits[Int(bytes[index] & 0x0F)]
            }
            return bytes.count * 2
        }
    }

    static func encode(_ code: HashedAuthenticationCode<SHA256>) -> String {
        code.withUnsafeBytes(encodeRaw)
    }

    /// Writes the hex of `bytes` (2 × its count) at `out`.
    static func write(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) {
        @inline(__always) func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? nibble &+ 48 : nibble &+ 87 }
        for index in 0..<bytes.count {
            out.storeBytes(of: digit(bytes[index] >> 4), toByteOffset: index &* 2, as: UInt8.self)
            out.storeBytes(of: digit(bytes[index] & 0x0F), toByteOffset: index &* 2 &+ 1, as: UInt8.self)
        }
    }
}

/// JSON with sorted keys and no escaped slashes: one text for one value.
///
/// Only what ledger entries hold: strings, integers, lists of strings and
/// (nested) objects. Written by hand because it runs for every signature.
enum CanonicalJSON {
    static func encode(_ object: Any) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        write(object, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func write(_ value: Any, to out: inout [UInt8]) {
        switch value {
        case let text as String:
            writeString(text, to: &out)
        case let number as Int64:
            out.append(contentsOf: String(number).utf8)
        case let number as Int:
            out.append(contentsOf: String(number).utf8)
        case let list as [String]:
            out.append(UInt8(ascii: "["))
            for (index, item) in list.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let object as [String: String]:
            writeObject(object.map { ($0.key, $0.value as Any) }, to: &out)
        case let object as [String: Any]:
            writeObject(object.map { ($0.key, $0.value) }, to: &out)
        default:
            out.append(contentsOf: "null".utf8)
        }
    }

    private static func writeObject(_ pairs: [(String, Any)], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        // Sorted by UTF-16 code units, as JSONSerialization's .sortedKeys does; keys here are ASCII.
        for (index, pair) in pairs.sorted(by: { $0.0 < $1.0 }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            writeString(pair.0, to: &out)
            out.append(UInt8(ascii: ":"))
            write(pair.1, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // The common case, nothing to escape, is copied in one go.
        var copy = text
        let plain = copy.withUTF8 { bytes in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if plain {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Writes one canonical JSON object whose keys the caller gives in sorted order.
struct CanonicalObjectWriter {
    private var out: [UInt8]
    /// Where this object's `{` is in `out`.
    private let opening: Int

    init() {
        out = [UInt8(ascii: "{")]
        out.reserveCapacity(160)
        opening = 0
    }

    /// Writes the object at the end of `buffer`, whose storage the writer takes until
    /// `finish(into:)` gives it back (so nothing is copied).
    init(appendingTo buffer: inout [UInt8]) {
        var taken: [UInt8] = []
        swap(&taken, &buffer)
        opening = taken.count
        taken.append(UInt8(ascii: "{"))
        out = taken
    }

    private mutating func key(_ key: String) {
        if out.count > opening + 1 { out.append(UInt8(ascii: ",")) }
        CanonicalJSON.writeString(key, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: String, _ value: String) {
        key(name)
        CanonicalJSON.writeString(value, to: &out)
    }

    mutating func strings(_ name: String, _ values: [String]) {
        key(name)
        out.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            CanonicalJSON.writeString(value, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    mutating func object(_ name: String, _ values: [String: String]) {
        key(name)
        out.append(UInt8(ascii: "{"))
        for (index, pair) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            CanonicalJSON.writeString(pair.key, to: &out)
            out.append(UInt8(ascii: ":"))
            CanonicalJSON.writeString(pair.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    mutating func finish() -> String {
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Closes the object and hands the buffer back (see `init(appendingTo:)`).
    mutating func finish(into buffer: inout [UInt8]) {
        out.append(UInt8(ascii: "}"))
        swap(&out, &buffer)
    }

    /// The object `write` writes, as text.
    static func object(_ write: (inout CanonicalObjectWriter) -> Void) -> String {
        var writer = CanonicalObjectWriter()
        write(&writer)
        return writer.finish()
    }

    /// Appends the object `write` writes to `buffer`.
    static func append(to buffer: inout [UInt8], _ write: (inout CanonicalObjectWriter) -> Void) {
        var writer = CanonicalObjectWriter(appendingTo: &buffer)
        write(&writer)
        writer.finish(into: &buffer)
    }
}

/// The signatures appended inside one `Ledger.appendBatches` transaction.
public final class LedgerBatch {
    let ledger: Ledger
    var head: Ledger.Head
    /// In a bulk append, the fingerprint of every signature so far (the unique index is
    /// dropped until the end); nil otherwise.
    var fingerprints: FingerprintSet?
    /// False once the transaction is over (or can only be rolled back).
    var isOpen = true

    init(ledger: Ledger, head: Ledger.Head) {
        self.ledger = ledger
        self.head = head
    }

    private func checkOpen() throws {
        guard isOpen else { throw MusterError.failure("a ledger batch was used after its transaction ended") }
    }

    /// Appends one signature; false when its signer already signed (in the ledger or
    /// earlier in this batch) and nothing was written.
    public func append(_ prepared: PreparedSignature) throws -> Bool {
        try checkOpen()
        if let fingerprints {
            switch fingerprints.insert(hex: prepared.fingerprint) {
            case true?: break
            case false?: return false
            case nil: throw MusterError.failure("a prepared signature has a malformed fingerprint")
            }
        }
        // Otherwise the unique index on signature fingerprints is the duplicate check: one
        // index descent instead of a lookup followed by an insert. A refused insert leaves
        // the head where it was.
        do {
            try ledger.appendEntry(kind: .signature, at: prepared.at, fingerprint: prepared.fingerprint, body: prepared.body,
                                   personal: prepared.personal, salt: prepared.salt, personalHash: prepared.personalHash, head: &head)
            return true
        } catch is DuplicateSignature {
            return false
        } catch {
            if fingerprints != nil { isOpen = false } // as in append(_: PreparedBatch)
            throw error
        }
    }

    /// Appends the signatures of `batch` in order; how many were added and how many were
    /// duplicates (of the ledger, of this transaction or of each other).
    public func append(_ batch: PreparedBatch) throws -> (added: Int, duplicates: Int) {
        try checkOpen()
        do {
            return try ledger.appendPacked(batch, head: &head, fingerprints: fingerprints)
        } catch {
            // The in-memory fingerprints may now hold signatures that were not written:
            // the transaction can only be rolled back.
            isOpen = false
            throw error
        }
    }
}

/// The entry insert hit the one-signature-per-signer index: nothing was written.
struct DuplicateSignature: Error {}

/// A signature with everything computed that does not depend on the ledger's head.
public struct PreparedSignature: Sendable {
    let fingerprint: String
    let at: String
    let body: String
    let personal: String
    let salt: [UInt8]
    let personalHash: String
}

/// Prepared signatures packed in one buffer, with no object per row: what the import's
/// reading thread hands to the writing one.
public struct PreparedBatch: Sendable {
    /// Per row: its fingerprint (64 hex digits), personal-data hash (64 hex digits) and
    /// salt (16 bytes), then its time, body and personal data; rows back to back.
    var bytes: [UInt8] = []
    var rows: [Row] = []

    struct Row: Sendable {
        var start: Int
        var atCount: Int
        var bodyCount: Int
        var personalCount: Int
        /// The fingerprint's raw bytes, for a bulk append's duplicate check.
        var key: FingerprintKey
    }

    public init() {}

    /// Room for `rows` rows of about `bytesPerRow` bytes.
    public init(capacity rows: Int, bytesPerRow: Int = 320) {
        self.rows.reserveCapacity(rows)
        bytes.reserveCapacity(rows * bytesPerRow)
    }

    public var count: Int { rows.count }
}

/// Prepares signatures for one ledger (it holds that ledger's fingerprint key).
public struct SignaturePreparer: @unchecked Sendable {
    // HMAC is a value type holding the keyed state; each call works on its own copy.
    // The salt source is used by the one thread that prepares.
    let hmac: HMAC<SHA256>
    let salts = SaltSource()

    init(hmac: HMAC<SHA256>) { self.hmac = hmac }

    /// Fingerprint, canonical bodies, salt and personal-data hash of `signature` made at `date`.
    public func prepare(_ signature: ValidSignature, at date: Date) -> PreparedSignature {
        var code = hmac
        var email = signature.canonicalEmail
        email.withUTF8 { code.update(data: UnsafeRawBufferPointer($0)) }
        var personal = Ledger.personalData(signature)
        let salt = salts.next()
        var hasher = SHA256()
        hasher.update(data: salt)
        personal.withUTF8 { hasher.update(data: UnsafeRawBufferPointer($0)) }
        return PreparedSignature(fingerprint: Hex.encode(code.finalize()), at: Timestamp.format(date), body: Ledger.signatureBody(signature),
                                 personal: personal, salt: salt, personalHash: Hex.encode(hasher.finalize()))
    }

    /// The same as `prepare(_:at:)`, appended to `batch` without allocating per row.
    public func prepare(_ signature: ValidSignature, at date: Date, into batch: inout PreparedBatch) {
        var code = hmac
        var email = signature.canonicalEmail
        email.withUTF8 { code.update(data: UnsafeRawBufferPointer($0)) }
        let mac = code.finalize()
        let start = batch.bytes.count
        // Fingerprint and (until it is known) personal-data hash.
        batch.bytes.append(contentsOf: repeatElement(0, count: 128))
        let key = mac.withUnsafeBytes { raw in
            batch.bytes.withUnsafeMutableBytes { Hex.write(raw, to: $0.baseAddress! + start) }
            return FingerprintKey(raw)
        }
        salts.next(appendingTo: &batch.bytes)
        Timestamp.append(date, to: &batch.bytes)
        let bodyStart = batch.bytes.count
        Ledger.appendSignatureBody(signature, to: &batch.bytes)
        let personalStart = batch.bytes.count
        Ledger.appendPersonalData(signature, to: &batch.bytes)
        let end = batch.bytes.count
        batch.bytes.withUnsafeMutableBytes { bytes in
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[(start + 128)..<(start + 144)]))
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[personalStart..<end]))
            hasher.finalize().withUnsafeBytes { Hex.write($0, to: bytes.baseAddress! + start + 64) }
        }
        batch.rows.append(PreparedBatch.Row(start: start, atCount: bodyStart - start - 144, bodyCount: personalStart - bodyStart,
                                            personalCount: end - personalStart, key: key))
    }
}

/// 16-byte salts cut from a buffer refilled from /dev/urandom 4 KiB at a time
/// (one system call per 256 salts instead of two per salt).
final class SaltSource {
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var offset = 4096
    private let urandom = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    deinit { if urandom >= 0 { close(urandom) } }

    func next() -> [UInt8] {
        if offset == buffer.count { refill() }
        defer { offset += 16 }
        return Array(buffer[offset..<(offset + 16)])
    }

    /// Appends the next salt to `out`.
    func next(appendingTo out: inout [UInt8]) {
        if offset == buffer.count { refill() }
        out.append(contentsOf: buffer[offset..<(offset + 16)])
        offset += 16
    }

    private func refill() {
        buffer.withUnsafeMutableBytes { bytes in
            var filled = 0
            if urandom >= 0 {
                while filled < bytes.count {
                    let got = read(urandom, bytes.baseAddress! + filled, bytes.count - filled)
                    if got > 0 { filled += got } else if got < 0 && errno == EINTR { continue } else { break }
                }
            }
            // Should /dev/urandom be unreadable, the system generator fills the rest.
            var generator = SystemRandomNumberGenerator()
            while filled < bytes.count {
                bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: filled, as: UInt64.self)
                filled += 8
            }
        }
        offset = 0
    }
}
