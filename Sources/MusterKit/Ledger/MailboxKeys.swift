import Crypto
import Foundation

/// Mailbox keys: one per signature that counts, so that `ana+1@gmail.com` finds the
/// `ana@gmail.com` who already signed (one person, one signature; docs/identity.md).
///
/// The fingerprint inside the hash chain is of the canonical address and can never
/// change. The mailbox key is *derived* data beside it, in `mailbox_keys(seq, key)`: the
/// first 16 bytes of `HMAC-SHA256(fingerprint key, "mailbox\0" ‖ MailboxKey.key(email,
/// rules))`, keyed like the fingerprint, never a plain address. (128 bits: two different
/// mailboxes among a billion share a key with a probability below 10⁻²⁰; half the
/// bytes of the full code keep an import's extra writes small.) It depends on the workspace's `dedupe:`
/// rules, which can change, so the ledger records which rules its keys were made with
/// (`meta.mailbox_rules`, a hash of them) and every write that checks duplicates first
/// rebuilds all keys, in its own transaction, when the rules differ (`syncMailboxKeys`).
///
/// Only signatures that count have a key: chained, not forgotten (their personal data,
/// and so their address, is gone) and not withdrawn. `forget` and `dedupe --withdraw`
/// delete the row; `verify` reports a row for any other entry as made outside muster.
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
        if let key = try? MailboxKey.key(forCanonical: canonical, rules: rules) { return "mailbox\0" + key }
        return "mailbox-as-stored\0" + canonical
    }

    /// Bytes of a key: the start of the code.
    static let keyLength = 16

    static func key(_ code: SHA256.Digest) -> [UInt8] { Array(code.prefix(keyLength)) }

    /// The key of `email` (as typed and stored).
    func key(forEmail email: String) -> [UInt8] { Self.key(hmac.code(Self.input(forEmail: email, rules: rules))) }

    /// The key of a validated signature, from its canonical address: `input(forCanonical:)`
    /// keyed without joining the prefix to the key first.
    func code(for signature: ValidSignature) -> SHA256.Digest {
        guard let key = try? MailboxKey.key(forCanonical: signature.canonicalEmail, rules: rules) else {
            return hmac.code("mailbox-as-stored\0", signature.canonicalEmail)
        }
        return hmac.code("mailbox\0", key)
    }

    func key(for signature: ValidSignature) -> [UInt8] { Self.key(code(for: signature)) }
}

extension MailboxRules {
    /// A hash of everything a mailbox key depends on besides the address: the key's
    /// version (2: 16-byte BLOBs; ledgers with version 1's hex keys are rebuilt) and the rules (the provider table included), in a canonical order. The
    /// ledger records it (`meta.mailbox_rules`); a different one means the keys are rebuilt.
    public var stamp: String {
        func list(_ characters: [Character]) -> String { characters.map(String.init).sorted().joined(separator: " ") }
        var text = "muster mailbox key 2\nkeep_tags \(keepTags)\nseparators \(list(separators))\n"
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
    /// `mailboxRules` (or never, as right after migration 3), deletes them all and makes
    /// them again from the personal data of every chained, unforgotten, unwithdrawn
    /// signature. Returns the note to print once the transaction commits, or nil.
    func syncMailboxKeys() throws -> String? {
        let stamp = mailboxRules.stamp
        let recorded = try database.scalarText("SELECT value FROM meta WHERE key = 'mailbox_rules'")
        guard recorded != stamp else { return nil }
        let maker = try mailboxKeyMaker()
        try database.execute("DELETE FROM mailbox_keys")
        let select = try database.prepare("""
            SELECT e.seq, p.data FROM entries e JOIN personal p ON p.seq = e.seq
            WHERE e.kind = 'signature' AND \(Self.chained("e")) AND NOT \(Self.forgotten("e.seq"))
              AND e.seq NOT IN (\(Self.withdrawnSeqs())) ORDER BY e.seq
            """)
        defer { select.reset() }
        let insert = try mailboxInsertStatement()
        var count: Int64 = 0
        while try select.step() {
            let data = select.text(1) ?? ""
            let email: String
            if let object = CanonicalJSONReader.object(data), case .string(let text)? = object["email"] {
                email = text
            } else {
                email = Self.jsonObject(data)["email"] as? String ?? ""
            }
            try insert.bindInt(1, select.int64(0))
            try insert.bindBlob(2, maker.key(forEmail: email))
            try insert.runBound()
            count += 1
        }
        try setMeta("mailbox_rules", .text(stamp))
        guard count > 0 || recorded != nil else { return nil } // a new ledger: nothing to say
        let why = recorded == nil ? "new in ledger format 3" : "the dedupe rules changed"
        return "made the mailbox keys of \(Number.grouped(count)) signature\(count == 1 ? "" : "s") in \(url.path) (\(why)); `muster dedupe` lists signers who signed more than once"
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
    /// earliest if several are (a group `dedupe` has not withdrawn yet).
    ///
    /// Not bounded by the recorded head: a batch writes the head only when it ends, and its
    /// own signatures must be found too. Nothing else lies beyond the head, since every
    /// write first checks that nothing is (`ensureNothingBesideChain`).
    func firstSignature(mailboxKey key: [UInt8]) throws -> (seq: Int64, at: String)? {
        try key.withUnsafeBytes { try firstSignature(mailboxKey: $0) }
    }

    func firstSignature(mailboxKey key: UnsafeRawBufferPointer) throws -> (seq: Int64, at: String)? {
        if selectMailbox == nil {
            selectMailbox = try database.prepare("""
                SELECT e.seq, e.at FROM mailbox_keys m JOIN entries e ON e.seq = m.seq
                WHERE m.key = ? AND e.kind = 'signature' AND e.seq >= 1 ORDER BY e.at, e.seq LIMIT 1
                """)
        }
        let statement = selectMailbox!
        statement.reset()
        try statement.bindBlob(1, borrowing: key)
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

    /// Records the mailbox key of signature `seq`, inside the transaction that appended it.
    func insertMailboxKey(seq: Int64, key: [UInt8]) throws {
        let insert = try mailboxInsertStatement()
        try insert.bindInt(1, seq)
        try insert.bindBlob(2, key)
        try insert.runBound()
    }
}
