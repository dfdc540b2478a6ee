import Crypto
import Foundation

/// Mailbox keys: every signature that counts has one, so that `ana+1@gmail.com` finds
/// the `ana@gmail.com` who already signed (one person, one signature; docs/identity.md).
///
/// The fingerprint inside the hash chain is of the canonical address and can never
/// change. The mailbox key is *derived* data beside it: the first 16 bytes of
/// `HMAC-SHA256(fingerprint key, MailboxKey.key(email, rules))`, keyed like the
/// fingerprint, never a plain address (128 bits: two different mailboxes among a
/// billion share a key with a probability below 10⁻²⁰).
///
/// Most addresses are their own mailbox, and then the key is the first 16 bytes of the
/// fingerprint itself: it is already in the ledger, and indexed. Only a signature whose
/// key differs — a `+tag`, Gmail dots, `googlemail.com`, a differently canonicalised old
/// address — has a row in `mailbox_keys(seq, key)`. A signature's key is its row's, or
/// else its fingerprint's start (`effective key`); an import of plain addresses writes no
/// rows and builds no index for them.
///
/// The key depends on the workspace's `dedupe:` rules, which can change, so the ledger
/// records which rules its rows were made with (`meta.mailbox_rules`, a hash of them and
/// of the key version) and every write that checks duplicates first remakes the rows, in
/// its own transaction, when the rules differ (`syncMailboxKeys`).
///
/// Only signatures that count have a key: chained, not forgotten (their personal data,
/// and so their address, is gone) and not withdrawn. `forget` and `dedupe --withdraw`
/// delete the row if there is one; the fingerprint's start stops being a key with them;
/// `verify` reports a row for any other entry as made outside muster.
struct MailboxKeyMaker: Sendable {
    /// HMAC-SHA256 under the ledger's fingerprint key.
    let hmac: KeyedHash
    let rules: MailboxRules

    /// What is keyed for `email` (as typed, as the personal data holds it): the mailbox
    /// key under the rules, or — for an address they refuse today (a domain an older
    /// muster accepted) — the address as stored, trimmed, NFC and lower-cased, so that
    /// it still has a key of its own. Distinct prefixes keep the two apart.
    static func input(forEmail email: String, rules: MailboxRules) -> String {
        if let canonical = try? EmailAddress.canonical(email) { return input(forCanonical: canonical, rules: rules) }
        return "mailbox-as-stored\0" + TextField.nfc(TextField.trimmed(email)).lowercased()
    }

    /// The same for an address already canonical (a validated signature's
    /// `canonicalEmail`, which is what `EmailAddress.canonical` gives for its email).
    static func input(forCanonical canonical: String, rules: MailboxRules) -> String {
        if let key = try? MailboxKey.key(forCanonical: canonical, rules: rules) { return key }
        return "mailbox-as-stored\0" + canonical
    }

    /// Bytes of a key: the start of the code.
    static let keyLength = 16

    static func key(_ code: SHA256.Digest) -> [UInt8] { Array(code.prefix(keyLength)) }

    /// The key of `email` (as typed and stored).
    func key(forEmail email: String) -> [UInt8] { Self.key(hmac.code(Self.input(forEmail: email, rules: rules))) }

    /// The key of a validated signature, from its canonical address: `input(forCanonical:)`
    /// keyed without joining a prefix to the address first. `fingerprint`, the code of the
    /// canonical address when the caller has it, is the answer when the mailbox is that
    /// same address.
    func code(for signature: ValidSignature, fingerprint: SHA256.Digest? = nil) -> SHA256.Digest {
        guard let key = try? MailboxKey.key(forCanonical: signature.canonicalEmail, rules: rules) else {
            return hmac.code("mailbox-as-stored\0", signature.canonicalEmail)
        }
        if let fingerprint, key == signature.canonicalEmail { return fingerprint }
        return hmac.code(key)
    }

    func key(for signature: ValidSignature) -> [UInt8] { Self.key(code(for: signature)) }
}

extension MailboxRules {
    /// A hash of everything a mailbox key depends on besides the address: the key's
    /// version (4: a row only where the key is not the fingerprint's start; 3: a row for
    /// every signature; 2 prefixed the mailbox with "mailbox\0"; 1 stored hex — ledgers
    /// with older keys have them remade) and the rules (the provider table
    /// included), in a canonical order. The ledger records it (`meta.mailbox_rules`); a
    /// different one means the keys are rebuilt.
    public var stamp: String { stamp(keyVersion: Self.keyVersion) }

    /// The version of the keys this muster makes (4: rows only where the key is not the
    /// fingerprint's start).
    static let keyVersion = 4

    func stamp(keyVersion: Int) -> String {
        func list(_ characters: [Character]) -> String { characters.map(String.init).sorted().joined(separator: " ") }
        var text = "muster mailbox key \(keyVersion)\nkeep_tags \(keepTags)\nseparators \(list(separators))\n"
        for (domain, rule) in domains.sorted(by: { $0.key < $1.key }) {
            text += "domain \(domain) separators \(list(rule.separators)) ignore_dots \(rule.ignoreDots) same_as \(rule.sameAs.sorted().joined(separator: " "))\n"
        }
        return Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }
}

extension Ledger {
    func mailboxKeyMaker() throws -> MailboxKeyMaker {
        _ = try fingerprint(canonicalEmail: "")
        return MailboxKeyMaker(hmac: fingerprintHMAC!, rules: mailboxRules)
    }

    /// The mailbox key of `email` in this ledger under its rules (for tests and tools).
    func mailboxKey(forEmail email: String) throws -> [UInt8] {
        try mailboxKeyMaker().key(forEmail: email)
    }

    /// Inside a write transaction: when the keys were made under other rules than
    /// `mailboxRules` (or never, as right after migration 3), or when `force` is set,
    /// deletes every row and makes the keys again from the personal data of every
    /// chained, unforgotten, unwithdrawn signature, writing a row for each key that is not
    /// the fingerprint's start. Returns the note to print once the transaction commits, or
    /// nil. With `force` (`muster dedupe`), the note also says how many rows were not as
    /// they should have been (missing, altered or extra).
    func syncMailboxKeys(force: Bool = false) throws -> String? {
        let stamp = mailboxRules.stamp
        let recorded = try database.scalarText("SELECT value FROM meta WHERE key = 'mailbox_rules'")
        guard recorded != stamp || force else { return nil }
        let maker = try mailboxKeyMaker()
        var before: [Int64: [UInt8]] = [:]
        if force && recorded == stamp {
            let rows = try database.prepare("SELECT seq, key FROM mailbox_keys")
            defer { rows.reset() }
            while try rows.step() { before[rows.int64(0)] = rows.blob(1) }
        }
        try database.execute("DELETE FROM mailbox_keys")
        let select = try database.prepare("""
            SELECT e.seq, e.fingerprint, p.data FROM entries e JOIN personal p ON p.seq = e.seq
            WHERE e.kind = 'signature' AND \(Self.chained("e")) AND NOT \(Self.forgotten("e.seq"))
              AND e.seq NOT IN (\(Self.withdrawnSeqs())) ORDER BY e.seq
            """)
        defer { select.reset() }
        let insert = try mailboxInsertStatement()
        var count: Int64 = 0, wrong: Int64 = 0
        while try select.step() {
            let seq = select.int64(0)
            let data = select.text(2) ?? ""
            let email: String
            if let object = CanonicalJSONReader.object(data), case .string(let text)? = object["email"] {
                email = text
            } else {
                email = Self.jsonObject(data)["email"] as? String ?? ""
            }
            let key = maker.key(forEmail: email)
            let row: [UInt8]? = Self.isFingerprintStart(key, of: select.text(1)) ? nil : key
            if let row {
                try insert.bindInt(1, seq)
                try insert.bindBlob(2, row)
                try insert.runBound()
            }
            if force && recorded == stamp && before.removeValue(forKey: seq) != row { wrong += 1 }
            count += 1
        }
        wrong += Int64(before.count) // rows for no signature that counts
        try setMeta("mailbox_rules", .text(stamp))
        if force && recorded == stamp {
            guard wrong > 0 else { return nil }
            return "remade the mailbox keys in \(url.path): \(Number.grouped(wrong)) stored key\(wrong == 1 ? " was" : "s were") missing, altered or extra"
        }
        guard count > 0 || recorded != nil else { return nil } // a new ledger: nothing to say
        let why = recorded == nil ? "new in ledger format 3"
            : (1..<MailboxRules.keyVersion).contains { mailboxRules.stamp(keyVersion: $0) == recorded } ? "this muster keys mailboxes differently"
            : "the dedupe rules changed"
        return "made the mailbox keys of \(Number.grouped(count)) signature\(count == 1 ? "" : "s") in \(url.path) (\(why)); `muster dedupe` lists signers who signed more than once"
    }

    /// Whether a 16-byte mailbox key is the start of the fingerprint written as hex
    /// (then the signature needs no row of its own).
    static func isFingerprintStart(_ key: [UInt8], of fingerprint: String?) -> Bool {
        guard let fingerprint, fingerprint.utf8.count == 64, key.count == MailboxKeyMaker.keyLength else { return false }
        return Hex.encode(key) == fingerprint.prefix(2 * MailboxKeyMaker.keyLength)
    }

    /// Prints a note of `syncMailboxKeys` on stderr (after its transaction committed).
    static func announce(_ note: String?) {
        if let note { FileHandle.standardError.write(Data("muster: \(note)\n".utf8)) }
    }

    /// Brings the mailbox keys in line with `mailboxRules` now, in a transaction of its
    /// own (the kiosk, before it locks the terminal; `dedupe`).
    public func refreshMailboxKeys() throws {
        var note: String?
        try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                note = try syncMailboxKeys()
            }
        }
        Self.announce(note)
    }

    /// Inside a write transaction: the counted signature whose mailbox key is `key`, the
    /// earliest if several are (a group `dedupe` has not withdrawn yet): one with a row
    /// holding `key`, or one without a row whose fingerprint starts with `key`.
    ///
    /// Not bounded by the recorded head: a batch writes the head only when it ends, and its
    /// own signatures must be found too. Nothing else lies beyond the head, since every
    /// write first checks that nothing is (`ensureNothingBesideChain`).
    func firstSignature(mailboxKey key: [UInt8]) throws -> (seq: Int64, at: String)? {
        try key.withUnsafeBytes { try firstSignature(mailboxKey: $0) }
    }

    func firstSignature(mailboxKey key: UnsafeRawBufferPointer) throws -> (seq: Int64, at: String)? {
        if selectMailbox == nil {
            // The fingerprints starting with the key's 32 hex digits lie between those
            // digits and the same followed by "~" (after every hex digit), in the unique
            // fingerprint index — named, or SQLite prefers the (kind, at) index and reads
            // every signature. (A bulk append, which drops that index, checks in memory.)
            selectMailbox = try database.prepare("""
                SELECT seq, at FROM (
                  SELECT e.seq, e.at FROM mailbox_keys m JOIN entries e ON e.seq = m.seq
                  WHERE m.key = ?1 AND e.kind = 'signature' AND e.seq >= 1
                  UNION ALL
                  SELECT e.seq, e.at FROM entries e INDEXED BY entries_one_signature_per_signer
                  WHERE e.kind = 'signature' AND e.fingerprint >= ?2 AND e.fingerprint < ?2 || '~' AND e.seq >= 1
                    AND NOT EXISTS (SELECT 1 FROM mailbox_keys m WHERE m.seq = e.seq)
                    AND NOT \(Self.forgotten("e.seq")) AND e.seq NOT IN (\(Self.withdrawnSeqs()))
                ) ORDER BY at, seq LIMIT 1
                """)
        }
        let statement = selectMailbox!
        statement.reset()
        try statement.bindBlob(1, borrowing: key)
        try statement.bindText(2, Hex.encode(key))
        defer {
            statement.reset() // never leave a read open between transactions
            statement.clearBindings()
        }
        guard try statement.step() else { return nil }
        return (statement.int64(0), statement.text(1) ?? "")
    }

    func mailboxInsertStatement() throws -> SQLiteStatement {
        if insertMailbox == nil { insertMailbox = try database.prepare("INSERT INTO mailbox_keys (seq, key) VALUES (?, ?)") }
        return insertMailbox!
    }

    /// Records the mailbox key of signature `seq`, inside the transaction that appended it,
    /// unless it is the start of the signature's fingerprint (then there is nothing to write).
    func insertMailboxKey(seq: Int64, key: [UInt8], fingerprint: String) throws {
        guard !Self.isFingerprintStart(key, of: fingerprint) else { return }
        let insert = try mailboxInsertStatement()
        try insert.bindInt(1, seq)
        try insert.bindBlob(2, key)
        try insert.runBound()
    }
}
