import Crypto
import Foundation

/// Appending signatures: one at a time (`append`), or many in one transaction
/// (`appendBatch` for validated signatures, `appendBatches` for prepared ones).
extension Ledger {
    /// The outcome of `append`.
    public enum AppendOutcome: Sendable, Equatable {
        /// Added as entry `seq`; `count` signatures now.
        case added(seq: Int64, count: Int64)
        /// Already signed, first at `firstSignedAt`; the ledger is unchanged.
        case duplicate(firstSignedAt: String, count: Int64)
    }

    /// Appends one signature unless its signer already signed: the same canonical email
    /// (the fingerprint), or the same mailbox under the workspace's rules (`mailboxRules`)
    /// as a signature that counts. Durable when it returns (`synchronous=FULL`).
    public func append(_ signature: ValidSignature, at date: Date) throws -> AppendOutcome {
        let fingerprint = try fingerprint(canonicalEmail: signature.canonicalEmail)
        let mailbox = try mailboxKeyMaker().key(for: signature)
        var note: String?
        let outcome: AppendOutcome = try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                note = try syncMailboxKeys()
                if let first = try firstSignature(fingerprint: fingerprint) ?? firstSignature(mailboxKey: mailbox) {
                    return .duplicate(firstSignedAt: first.at, count: try countedSignatures())
                }
                let seq = try appendEntry(kind: .signature, at: Timestamp.format(date), fingerprint: fingerprint,
                                          body: Self.canonical(.body, of: signature), personal: Self.canonical(.personal, of: signature))
                try insertMailboxKey(seq: seq, key: mailbox, fingerprint: fingerprint)
                return .added(seq: seq, count: try countedSignatures())
            }
        }
        Self.announce(note)
        return outcome
    }

    /// Inside a transaction: the signatures that count, from the recorded total.
    func countedSignatures() throws -> Int64 {
        try metaInt("signature_count") - (database.scalarInt(Self.withdrawnCountSQL) ?? 0)
    }

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
        let bytes = LedgerHash.entryBytes(seq: seq, kind: kind.rawValue, at: at, fingerprint: fingerprint,
                                          body: body, personalHash: personalHash, prev: head.hash)
        let hash = Hex.encode(SHA256.hash(data: bytes))
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
        try appendLeaf(Merkle.leafHash(bytes), head: &head)
        head.seq = seq
        head.hash = hash
        if kind == .signature { head.signatures += 1 }
        return seq
    }

    /// Streams signatures into one write transaction: `body` calls `append` once per
    /// signature, which answers true when it was added and false for a duplicate (of
    /// the ledger or of an earlier call). All or nothing: when `body` throws, or when
    /// `commit` is false (a dry run), the ledger is left as it was.
    public func appendBatch<T>(commit: Bool = true, _ body: (_ append: (ValidSignature, Date) throws -> Bool) throws -> T) throws -> T {
        let preparer = try signaturePreparer()
        return try appendBatches(commit: commit) { batch in
            try body { signature, date in try batch.append(preparer.prepare(signature, at: date)) }
        }
    }

    /// A preparer that does the per-signature work needing no ledger access (fingerprint,
    /// bodies, salt and personal-data hash), so it can run on another thread.
    public func signaturePreparer() throws -> SignaturePreparer {
        _ = try fingerprint(canonicalEmail: "")
        return SignaturePreparer(hmac: fingerprintHMAC!, rules: mailboxRules)
    }

    /// A batch expected to add at least this many signatures, and at least twice as many
    /// as the ledger already holds, checks duplicates in memory and rebuilds the unique
    /// fingerprint index at the end (see `appendBatches`).
    static let bulkMinimum = 20_000
    /// …and as long as the fingerprints held in memory stay under about 200 MB.
    static let bulkMaximum = 4_000_000

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
                let note = try syncMailboxKeys()
                let open = LedgerBatch(ledger: self, head: try readHead())
                batch = open
                var indexSQL: [String] = []
                if expectedCount >= bulkMinimum && Int64(expectedCount) >= 2 * open.head.signatures,
                   Int64(expectedCount) + open.head.signatures <= Self.bulkMaximum,
                   let bulk = try startBulkAppend(existing: Int(open.head.signatures), capacity: Int(open.head.signatures) + expectedCount) {
                    open.fingerprints = bulk.fingerprints
                    open.mailboxes = bulk.mailboxes
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
                    open.fingerprints = nil
                    open.mailboxes = nil
                    for sql in indexSQL { try database.execute(sql) }
                    try writeHead(open.head)
                    try database.execute("COMMIT")
                    Self.announce(note)
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
    /// whose signer already signed (checked in `fingerprints` and `mailboxes` when given,
    /// otherwise by the unique index and a lookup of the mailbox key). The same entries
    /// as `appendEntry` would write, bound straight from the batch's buffer, and their keys.
    func appendPacked(_ batch: PreparedBatch, head: inout Head, fingerprints: FingerprintSet?, mailboxes: FingerprintSet?) throws -> (added: Int, duplicates: Int) {
        let (entry, personal) = try entryStatements()
        let mailboxInsert = try mailboxInsertStatement()
        defer {
            entry.clearBindings()
            personal.clearBindings()
            mailboxInsert.clearBindings()
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
        // With the keys in memory, the whole batch is checked first: the lookups (a cache
        // miss each) then overlap instead of waiting one by one between inserts. See
        // `startBulkAppend` for why the mailbox set alone catches the batch's own repeats.
        // The tree's edge, appended to in memory; the subtrees it completes are stored once
        // the batch is in (until then `head.tree` is unset, so an error reloads it).
        if head.tree?.size != head.seq { head.tree = try loadFrontier(size: head.seq) }
        let tree = BulkTreeAppender(head.tree!)
        head.tree = nil
        var isNew: [Bool] = []
        if let fingerprints, let mailboxes {
            isNew.reserveCapacity(batch.rows.count)
            if fingerprints.isEmpty {
                for row in batch.rows { isNew.append(mailboxes.insert(row.mailbox)) }
            } else {
                for row in batch.rows { isNew.append(!fingerprints.contains(row.key) && mailboxes.insert(row.mailbox)) }
            }
        }
        try batch.bytes.withUnsafeBytes { bytes in
            for (index, row) in batch.rows.enumerated() {
                let fingerprint = UnsafeRawBufferPointer(rebasing: bytes[row.start..<(row.start + 64)])
                let personalHash = UnsafeRawBufferPointer(rebasing: bytes[(row.start + 64)..<(row.start + 128)])
                let salt = UnsafeRawBufferPointer(rebasing: bytes[(row.start + 128)..<(row.start + 144)])
                let mailbox = UnsafeRawBufferPointer(rebasing: bytes[(row.start + 144)..<(row.start + PreparedBatch.fixedBytes)])
                let atEnd = row.start + PreparedBatch.fixedBytes + row.atCount
                let bodyEnd = atEnd + row.bodyCount
                let at = UnsafeRawBufferPointer(rebasing: bytes[(row.start + PreparedBatch.fixedBytes)..<atEnd])
                let body = UnsafeRawBufferPointer(rebasing: bytes[atEnd..<bodyEnd])
                let data = UnsafeRawBufferPointer(rebasing: bytes[bodyEnd..<(bodyEnd + row.personalCount)])
                if isNew.isEmpty ? try firstSignature(mailboxKey: mailbox) != nil : !isNew[index] {
                    duplicates += 1
                    continue
                }
                let seq = head.seq + 1
                // The hash: the same bytes as LedgerHash.entry gathers.
                // After a 0x00 byte, so that the same buffer also gives the Merkle leaf hash.
                scratch.removeAll(keepingCapacity: true)
                scratch.append(0)
                LedgerHash.appendEntryFields(seq: seq, kind: EntryKind.signature.rawValue, at: at, fingerprint: fingerprint, body: body,
                                             personalHash: personalHash, prev: UnsafeRawBufferPointer(previous), to: &scratch)
                scratch.withUnsafeBytes { SHA256.hash(data: UnsafeRawBufferPointer(rebasing: $0.dropFirst())) }
                    .withUnsafeBytes { Hex.write($0, to: current.baseAddress!) }
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
                // A key that is the fingerprint's start (most) needs no row (MailboxKeys.swift).
                if row.mailbox.words.0 != row.key.words.0 || row.mailbox.words.1 != row.key.words.1 {
                    try mailboxInsert.bindInt(1, seq)
                    try mailboxInsert.bindBlob(2, borrowing: mailbox)
                    try mailboxInsert.runBound()
                }
                scratch.withUnsafeBytes { tree.append(prefixedLeaf: $0) }
                head.seq = seq
                head.signatures += 1
                swap(&previous, &current)
                added += 1
            }
        }
        try tree.flush(into: database, many: &insertNodes, one: &insertNode)
        head.tree = tree.frontier
        return (added, duplicates)
    }

    /// Inside a write transaction: the fingerprints of every signature already in the
    /// ledger and the mailbox keys of those that count (a row's key, or the fingerprint's
    /// start), read into memory, and the indexes on both dropped (a random insert per row
    /// costs more than one sort at the end); returns their definitions to recreate them.
    /// Nil (and nothing changed) when an index is not there as expected.
    ///
    /// The batch's own signatures go into the mailbox set only. A repeat of an earlier
    /// row of the batch always has the same mailbox key as that row (the key is a function
    /// of the canonical address, as the fingerprint is), so the mailbox set finds every
    /// repeat within the batch; the fingerprint set only has to answer for the signatures
    /// that were there before (a forgotten or withdrawn one has a fingerprint but no key).
    /// An import into a new campaign thus checks one set of 16-byte keys per row. The
    /// mailbox key index is dropped too and rebuilt at the end: a file where many
    /// addresses are variants (`first.last@gmail.com` is one) adds a row for each, and one
    /// sort costs less than a random index insert per row.
    private func startBulkAppend(existing: Int, capacity: Int) throws -> (fingerprints: FingerprintSet, mailboxes: FingerprintSet, indexSQL: [String])? {
        let names = ["entries_one_signature_per_signer", "mailbox_keys_by_key"]
        var indexSQL: [String] = []
        for name in names {
            guard let sql = try database.scalarText("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?", .text(name)) else {
                return nil
            }
            indexSQL.append(sql)
        }
        let fingerprints = FingerprintSet(capacity: existing, width: 4)
        let mailboxes = FingerprintSet(capacity: capacity, width: 2)
        let statement = try database.prepare("""
            SELECT e.fingerprint, m.key, \(Self.forgotten("e.seq")) OR e.seq IN (\(Self.withdrawnSeqs()))
            FROM entries e LEFT JOIN mailbox_keys m ON m.seq = e.seq
            WHERE e.kind = 'signature' AND \(Self.chained("e"))
            """)
        defer { statement.reset() }
        while try statement.step() {
            // Every stored fingerprint is 64 lower-case hex digits and unique, and every
            // stored key 16 bytes; anything else keeps the index in place.
            guard let fingerprint = statement.withBytes(0, { FingerprintKey(hexBytes: $0) }),
                  fingerprints.insert(fingerprint) else { return nil }
            guard statement.int64(2) == 0 else { continue } // forgotten or withdrawn: no key
            if statement.isNull(1) {
                _ = mailboxes.insert(FingerprintKey(words: (fingerprint.words.0, fingerprint.words.1, 0, 0)))
            } else {
                guard let key = statement.withBytes(1, { FingerprintKey(storedMailboxKey: $0) }) else { return nil }
                _ = mailboxes.insert(key) // keys may repeat (a group `dedupe` has not withdrawn yet)
            }
        }
        for name in names { try database.execute("DROP INDEX \(name)") }
        return (fingerprints, mailboxes, indexSQL)
    }
}

/// The signatures appended inside one `Ledger.appendBatches` transaction.
public final class LedgerBatch {
    let ledger: Ledger
    var head: Ledger.Head
    /// In a bulk append, the fingerprint of every signature the ledger held when the batch
    /// began (the unique index is dropped until the end); nil otherwise.
    var fingerprints: FingerprintSet?
    /// …and the mailbox key of every signature that counts, the batch's own included (its
    /// index dropped too).
    var mailboxes: FingerprintSet?
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
        if let fingerprints, let mailboxes {
            // As in `appendPacked`: the fingerprints of the signatures that were there
            // before, and every mailbox key (see `startBulkAppend`).
            guard let fingerprint = FingerprintKey(hex: prepared.fingerprint) else {
                throw MusterError.failure("a prepared signature has a malformed fingerprint")
            }
            if fingerprints.contains(fingerprint) { return false }
            guard prepared.mailboxKey.withUnsafeBytes({ mailboxes.insert(FingerprintKey(mailboxKey: $0)) }) else { return false }
        } else if try ledger.firstSignature(mailboxKey: prepared.mailboxKey) != nil {
            return false
        }
        // Otherwise the unique index on signature fingerprints is the duplicate check: one
        // index descent instead of a lookup followed by an insert. A refused insert leaves
        // the head where it was.
        do {
            let seq = try ledger.appendEntry(kind: .signature, at: prepared.at, fingerprint: prepared.fingerprint, body: prepared.body,
                                             personal: prepared.personal, salt: prepared.salt, personalHash: prepared.personalHash, head: &head)
            try ledger.insertMailboxKey(seq: seq, key: prepared.mailboxKey, fingerprint: prepared.fingerprint)
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
            return try ledger.appendPacked(batch, head: &head, fingerprints: fingerprints, mailboxes: mailboxes)
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
