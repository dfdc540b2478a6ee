import Crypto
import Foundation
import Testing
@testable import MusterKit

/// Issue 15, phase 2, on a real SQLite file: mailbox keys beside the chain (derived,
/// rebuilt when the rules change), duplicates through them on every append path, and
/// withdrawals — counted out everywhere, and checked by `verify`.
@Suite struct LedgerMailboxKeyTests {
    let manifest = sampleManifest()
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)
    /// One inbox, five spellings (Gmail ignores dots; googlemail.com is gmail.com; +tags).
    static let ana = ["ana@gmail.com", "a.na@gmail.com", "ana+1@gmail.com", "ana@googlemail.com", "A.NA+news@GoogleMail.com"]

    func signature(_ email: String, name: String = "Ana Lima") throws -> ValidSignature {
        try SignatureInput(name: name, email: email, fields: ["region": "Lyon"], consents: ["updates"]).validated(against: manifest)
    }

    func ledger(_ folder: TemporaryFolder) throws -> Ledger {
        try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
    }

    /// A second connection, as someone with an SQLite client would have.
    func tamper(_ folder: TemporaryFolder, _ sql: String) throws {
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        try database.execute(sql)
    }

    func query(_ folder: TemporaryFolder, _ sql: String) throws -> [String] {
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        let statement = try database.prepare(sql)
        var rows: [String] = []
        while try statement.step() { rows.append(statement.text(0) ?? "NULL") }
        return rows
    }

    // MARK: - Duplicates through the key

    @Test func eachAppendPathRefusesAnotherSpellingOfACountedMailbox() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        #expect(try ledger.append(signature(Self.ana[0]), at: clock.now()) == .added(seq: 1, count: 1))
        for variant in Self.ana.dropFirst() {
            let outcome = try ledger.append(signature(variant), at: clock.now().addingTimeInterval(60))
            #expect(outcome == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 1), "\(variant)")
        }
        // Not merged: Outlook.com dots count, and hotmail.com is not outlook.com.
        for other in ["ana@outlook.com", "a.na@outlook.com", "ana@hotmail.com"] {
            guard case .added = try ledger.append(signature(other), at: clock.now()) else {
                Issue.record("\(other) is another person")
                continue
            }
        }
        // The batch path (merge) and the packed path (import), in memory or through the index.
        for bulk in [false, true] {
            let preparer = try ledger.signaturePreparer()
            let result = try ledger.appendBatches(commit: false, expectedCount: 10, bulkMinimum: bulk ? 1 : .max) { batch -> [Bool] in
                #expect((batch.mailboxes != nil) == bulk)
                var added: [Bool] = []
                for email in ["zoe@icloud.com", "zoe@me.com", "ANA+2@gmail.com", "zoe+x@mac.com", "yan@example.org"] {
                    added.append(try batch.append(preparer.prepare(signature(email), at: clock.now())))
                }
                var packed = PreparedBatch()
                for email in ["bo@yahoo.com", "bo-news@yahoo.com", "an.a@gmail.com", "yan+1@example.org", "cy@example.org"] {
                    preparer.prepare(try signature(email), at: clock.now(), into: &packed)
                }
                let counts = try batch.append(packed)
                #expect(counts == (added: 2, duplicates: 3), "bulk \(bulk): \(counts)")
                return added
            }
            #expect(result == [true, false, false, false, true], "bulk \(bulk)")
        }
        #expect(try ledger.signatureCount() == 4, "the dry runs were rolled back")
        #expect(try ledger.verify().ok)
        #expect(try query(folder, "SELECT count(*) FROM mailbox_keys") == ["0"], "all four are their own mailbox: their keys are their fingerprints' starts")
        #expect(try query(folder, "SELECT count(*) FROM sqlite_schema WHERE name IN ('mailbox_keys_by_key', 'entries_one_signature_per_signer')") == ["2"],
                "the bulk path put both indexes back")
    }

    @Test func aCommittedBulkImportKeepsKeysForEveryAddedSignature() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.append(signature("ana@gmail.com"), at: clock.now())
        let preparer = try ledger.signaturePreparer()
        let emails = (0..<40).map { "signer\($0)@example.org" } + Self.ana + (0..<40).map { "signer\($0)+again@example.org" }
            + ["zo.e+x@gmail.com", "zoe@gmail.com", "ZOE+y@googlemail.com"]
        let counts = try ledger.appendBatches(commit: true, expectedCount: 100, bulkMinimum: 1) { batch in
            var packed = PreparedBatch()
            for email in emails { preparer.prepare(try signature(email), at: clock.now(), into: &packed) }
            return try batch.append(packed)
        }
        #expect(counts == (added: 41, duplicates: 47))
        // One row: zo.e+x@gmail.com's mailbox is zoe@gmail.com, not its own address.
        #expect(try query(folder, "SELECT seq, lower(hex(key)) FROM mailbox_keys") == ["42"])
        #expect(try Hex.encode(ledger.mailboxKey(forEmail: "zoe@gmail.com")) == query(folder, "SELECT lower(hex(key)) FROM mailbox_keys").first)
        let report = try ledger.verify()
        #expect(report.ok, "\(String(describing: report.firstBad))")
        #expect(report.count == 42)
        // After the bulk path, the one-by-one path finds both kinds of key.
        #expect(try ledger.append(signature("zoe+z@gmail.com"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 42))
        #expect(try ledger.append(signature("signer7+z@example.org"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 42))
    }

    // MARK: - Derived, rebuilt data

    @Test func keysAreKeyedHashesAndAreRebuiltWhenTheRulesChange() throws {
        let folder = try TemporaryFolder()
        var ledger = try ledger(folder)
        _ = try ledger.append(signature("ana@gmail.com"), at: clock.now())
        #expect(try query(folder, "SELECT count(*) FROM mailbox_keys") == ["0"], "its own mailbox: the key is the fingerprint's start")
        let keys = try query(folder, "SELECT substr(fingerprint, 1, 32) FROM entries WHERE seq = 1")
        #expect(keys.count == 1 && keys[0].count == 32)
        #expect(try keys[0] == Hex.encode(ledger.mailboxKey(forEmail: "a.na+x@googlemail.com")))
        #expect(try query(folder, "SELECT value FROM meta WHERE key = 'mailbox_rules'") == [MailboxRules.standard.stamp])
        // Another ledger (another fingerprint key) gives the same address another key.
        let elsewhere = try TemporaryFolder()
        #expect(try Hex.encode(self.ledger(elsewhere).mailboxKey(forEmail: "ana@gmail.com")) != keys[0])

        // keep_tags: a tag makes another person; the keys are rebuilt under the new rules.
        ledger = try self.ledger(folder)
        ledger.mailboxRules = MailboxRules(keepTags: true)
        #expect(try ledger.append(signature("ana+1@gmail.com"), at: clock.now()) == .added(seq: 2, count: 2))
        #expect(try ledger.append(signature("a.na@gmail.com"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 2))
        #expect(try query(folder, "SELECT value FROM meta WHERE key = 'mailbox_rules'") == [MailboxRules(keepTags: true).stamp])
        // Back to the standard rules: the two are one person again, a group for dedupe.
        ledger = try self.ledger(folder)
        let summary = try ledger.dedupe(withdraw: false, commit: true, showAddresses: true, at: clock.now())
        #expect(summary.groups.map { [$0.keep.entry] + $0.later.map(\.entry) } == [[1, 2]])
        #expect(summary.groups.first?.later.first?.email == "ana+1@gmail.com")
        #expect(try ledger.verify().ok)
    }

    /// The byte-by-byte key of plain ASCII addresses (an import's common case) is the
    /// character-by-character one, under every kind of rule.
    @Test func theASCIIFastPathIsTheDefinition() throws {
        let custom = MailboxRules(separators: ["+", "="], domains: [
            "example.org": .init(separators: ["-"], ignoreDots: true, sameAs: ["example.net"]),
            "gmail.com": .init()])
        var generator = SystemRandomNumberGenerator()
        let locals = ["ana", "a.na", "ana+1", "+ana", "ana-list", "a.n.a-x+y", "...", ".+x", "a=b", "ana_x", "a-", "-a"]
        let domains = ["gmail.com", "googlemail.com", "yahoo.com", "example.org", "example.net", "me.com", "pm.me", "other.example"]
        var compared = 0
        for rules in [MailboxRules.standard, MailboxRules(keepTags: true), custom] {
            for local in locals + (0..<200).map({ _ in String((0..<Int.random(in: 1...8, using: &generator)).map { _ in "ab.+-=_".randomElement(using: &generator)! }) }) {
                for domain in domains {
                    let canonical = local + "@" + domain
                    guard let fast = MailboxKey.plainASCIIKey(canonical, rules: rules) else { continue }
                    #expect(fast == (try MailboxKey.characterKey(forCanonical: canonical, rules: rules)), "\(canonical)")
                    compared += 1
                }
            }
        }
        #expect(compared > 3_000)
        #expect(MailboxKey.plainASCIIKey("zoé@example.org", rules: .standard) == nil)
        #expect(MailboxKey.plainASCIIKey(#""a b"@example.org"#, rules: .standard) == nil)
    }

    /// The import's keyed hash is HMAC-SHA256, for any key and message length.
    @Test func keyedHashIsHMACSHA256() throws {
        var generator = SystemRandomNumberGenerator()
        for keyLength in [0, 1, 32, 63, 64, 65, 200] {
            let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let keyed = KeyedHash(key: key)
            for length in [0, 1, 55, 56, 64, 119, 1000] {
                let message = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
                #expect(message.withUnsafeBytes { Array(keyed.code($0)) } == expected, "key \(keyLength), message \(length)")
                let cut = length / 3
                #expect(message.withUnsafeBytes { Array(keyed.code(UnsafeRawBufferPointer(rebasing: $0[..<cut]), UnsafeRawBufferPointer(rebasing: $0[cut...]))) } == expected)
            }
        }
    }

    /// A signature's key as `sign` and `import` compute it (from its canonical address) is
    /// the key a rebuild computes from its personal data (the address as typed).
    @Test func theKeyOfASignatureIsTheKeyOfItsStoredAddress() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        for rules in [MailboxRules.standard, MailboxRules(keepTags: true)] {
            ledger.mailboxRules = rules
            let maker = try ledger.mailboxKeyMaker()
            for email in Self.ana + [" Zoé@Bücher.example ", "k@ｅｘａｍｐｌｅ.org", "ＡＮＡ+x@example.net", "ﬁona@example.org", #""a b"@example.org"#, "straße@example.org"] {
                let valid = try signature(email)
                #expect(maker.key(for: valid) == maker.key(forEmail: valid.email), "\(email)")
            }
        }
    }

    @Test func anAddressRefusedTodayStillGetsAKeyOfItsOwn() throws {
        let rules = MailboxRules.standard
        // A mixed-script label (Latin and Cyrillic а), which muster 0.1.0 accepted.
        let refused = "x@p\u{430}ypal.example"
        #expect(throws: EmailAddress.Problem.self) { try MailboxKey.key(for: refused, rules: rules) }
        #expect(MailboxKeyMaker.input(forEmail: refused, rules: rules) == "mailbox-as-stored\0x@p\u{430}ypal.example")
        #expect(MailboxKeyMaker.input(forEmail: " X@P\u{410}YPAL.example ", rules: rules) == MailboxKeyMaker.input(forEmail: refused, rules: rules))
        #expect(MailboxKeyMaker.input(forEmail: "A.Na@gmail.com", rules: rules) == "ana@gmail.com")
    }

    /// Key version 3: the mailbox is keyed as it is, so an address that is its own mailbox
    /// has the first 16 bytes of its fingerprint as key (one HMAC per imported row, not
    /// two), and a variant has the key of the address it stands for.
    @Test func aMailboxIsKeyedAsItsOwnAddressWouldBe() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.append(signature("bo@example.org"), at: clock.now())
        _ = try ledger.append(signature("cy+x@example.org"), at: clock.now())
        #expect(try query(folder, "SELECT seq FROM mailbox_keys") == ["2"], "bo@example.org is its own mailbox: no row")
        let key = try query(folder, "SELECT lower(hex(key)) FROM mailbox_keys WHERE seq = 2")
        #expect(try key == [String(ledger.fingerprint(canonicalEmail: "cy@example.org").prefix(32))], "cy+x's key is cy's fingerprint's start")
        let preparer = try ledger.signaturePreparer()
        for (variant, mailbox) in [("A.NA+news@GoogleMail.com", "ana@gmail.com"), ("bo+x@example.org", "bo@example.org"), ("Bo@Example.ORG", "bo@example.org")] {
            let prepared = preparer.prepare(try signature(variant), at: clock.now())
            #expect(Hex.encode(prepared.mailboxKey) == String(try ledger.fingerprint(canonicalEmail: mailbox).prefix(32)), "\(variant)")
            // The packed path (import) agrees with the one-by-one path.
            var packed = PreparedBatch()
            preparer.prepare(try signature(variant), at: clock.now(), into: &packed)
            let row = try #require(packed.rows.first)
            #expect(Hex.encode(Array(packed.bytes[(row.start + 144)..<(row.start + 160)])) == Hex.encode(prepared.mailboxKey), "\(variant)")
        }
    }

    /// A ledger whose keys an earlier muster made (key version 2: the mailbox prefixed with
    /// "mailbox\0") has them remade on its next write, and says why.
    @Test func keysOfAnEarlierKeyVersionAreRemade() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.append(signature("ana@gmail.com"), at: clock.now())
        _ = try ledger.append(signature("bo@example.org"), at: clock.now())
        let current = try query(folder, "SELECT lower(hex(key)) FROM mailbox_keys ORDER BY seq")
        // What version 2 wrote: HMAC(key, "mailbox\0" ‖ mailbox), and its stamp.
        let hmac = try #require(ledger.fingerprintHMAC)
        let old = ["ana@gmail.com", "bo@example.org"].map { Hex.encode(MailboxKeyMaker.key(hmac.code("mailbox\0", $0))) }
        #expect(old != current)
        try tamper(folder, "UPDATE mailbox_keys SET key = X'\(old[0])' WHERE seq = 1; UPDATE mailbox_keys SET key = X'\(old[1])' WHERE seq = 2;"
                   + "UPDATE meta SET value = '\(MailboxRules.standard.stamp(keyVersion: 2))' WHERE key = 'mailbox_rules'")
        let reopened = try self.ledger(folder)
        let note = try reopened.database.writeTransaction { try reopened.syncMailboxKeys() }
        #expect(note?.contains("made the mailbox keys of 2 signatures") == true && note?.contains("this muster keys mailboxes differently") == true, "\(String(describing: note))")
        #expect(try query(folder, "SELECT lower(hex(key)) FROM mailbox_keys ORDER BY seq") == current)
        #expect(try query(folder, "SELECT value FROM meta WHERE key = 'mailbox_rules'") == [MailboxRules.standard.stamp])
        // Other rules than the recorded ones are a rules change, whatever the version.
        try tamper(folder, "UPDATE meta SET value = '\(MailboxRules(keepTags: true).stamp(keyVersion: 2))' WHERE key = 'mailbox_rules'")
        let again = try reopened.database.writeTransaction { try reopened.syncMailboxKeys() }
        #expect(again?.contains("the dedupe rules changed") == true, "\(String(describing: again))")
    }

    /// The bulk path holds the fingerprints of the signatures already there and the
    /// mailbox keys of those that count plus its own: a forgotten or withdrawn signer's
    /// exact address is still a duplicate, their other spellings are not (forgotten) or
    /// are (withdrawn: the kept signature has the key), and repeats inside the batch are
    /// found through the mailbox keys alone.
    @Test func theBulkPathFindsEarlierSignersByFingerprintAndRepeatsByMailbox() throws {
        let folder = try TemporaryFolder()
        let ledger = try withdrawnLedger(folder) // 1 ana@gmail.com, 2 a.na+x@gmail.com (withdrawn), 3 bo@example.org
        _ = try ledger.append(signature("cy@example.org"), at: clock.now())
        guard case .forgotten = try ledger.forget(canonicalEmail: "cy@example.org", at: clock.now()) else { Issue.record("not forgotten"); return }
        let preparer = try ledger.signaturePreparer()
        let emails = ["cy@example.org", "Cy@Example.org", "c.y+1@example.org", "c.y+2@example.org", "a.na+x@gmail.com", "ana+y@gmail.com",
                      "bo@example.org", "dee@example.org", "dee+1@example.org", "DEE@example.org"]
        for path in ["packed", "one by one"] {
            let added = try ledger.appendBatches(commit: false, expectedCount: 100, bulkMinimum: 1) { batch -> [Bool] in
                #expect(batch.mailboxes != nil && batch.fingerprints?.count == 4, "every signature's fingerprint, the withdrawn and forgotten ones too")
                if path == "packed" {
                    var packed = PreparedBatch()
                    for email in emails { preparer.prepare(try signature(email), at: clock.now(), into: &packed) }
                    let counts = try batch.append(packed)
                    return [counts.added == 2 && counts.duplicates == 8]
                }
                return try emails.map { try batch.append(preparer.prepare(signature($0), at: clock.now())) }
            }
            if path == "packed" {
                #expect(added == [true], "c.y+1 (the forgotten signer's other spelling) and dee are new; the rest are duplicates")
            } else {
                #expect(added == [false, false, true, false, false, false, false, true, false, false])
            }
        }
        #expect(try ledger.verify().ok)
    }

    @Test func aForgottenSignerHasNoKeyButTheExactAddressStaysADuplicate() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.append(signature("ana@gmail.com"), at: clock.now())
        _ = try ledger.append(signature("bo@example.org"), at: clock.now())
        guard case .forgotten = try ledger.forget(canonicalEmail: "ana@gmail.com", at: clock.now()) else { Issue.record("not forgotten"); return }
        #expect(try query(folder, "SELECT seq FROM mailbox_keys") == [], "both are their own mailbox")
        #expect(try ledger.append(signature("ana@gmail.com"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 2))
        guard case .added = try ledger.append(signature("a.na@gmail.com"), at: clock.now()) else {
            Issue.record("a forgotten signer's other spelling is not recognised (the address is gone)")
            return
        }
        #expect(try ledger.verify().ok)
    }

    // MARK: - Withdrawals

    @Test func withdrawnSignaturesLeaveEveryCountListAndAudience() throws {
        let folder = try TemporaryFolder()
        var ledger = try ledger(folder)
        ledger.mailboxRules = MailboxRules(keepTags: true)
        for (index, email) in ["ana+1@gmail.com", "ana@gmail.com", "bo@example.org", "ana+2@gmail.com"].enumerated() {
            _ = try ledger.append(signature(email), at: clock.now().addingTimeInterval(Double(index) * 3600))
        }
        ledger = try self.ledger(folder)
        let dry = try ledger.dedupe(withdraw: true, commit: false, showAddresses: false, at: clock.now())
        #expect(dry.duplicates == 2 && dry.withdrawn == 0 && dry.count == 2 && dry.dryRun)
        #expect(dry.groups.first?.keep.email == nil, "no addresses unless asked")
        #expect(try ledger.signatureCount() == 4 && ledger.withdrawnCount() == 0)
        #expect(try query(folder, "SELECT value FROM meta WHERE key = 'mailbox_rules'") == [MailboxRules(keepTags: true).stamp],
                "a dry run does not even rebuild the keys")

        let done = try ledger.dedupe(withdraw: true, commit: true, showAddresses: false, at: clock.now().addingTimeInterval(86_400))
        #expect(done.withdrawn == 2 && done.count == 2)
        #expect(try query(folder, "SELECT body FROM entries WHERE kind = 'withdrawal' ORDER BY seq")
                == [#"{"duplicate_of":1,"withdraws":2}"#, #"{"duplicate_of":1,"withdraws":4}"#])
        #expect(try query(folder, "SELECT seq FROM mailbox_keys ORDER BY seq") == ["1"], "ana+1 has a row; bo is its own mailbox; 2 and 4 were withdrawn")
        #expect(try ledger.signatureCount() == 2 && ledger.withdrawnCount() == 2)
        let report = try ledger.verify()
        #expect(report.ok && report.count == 2 && report.withdrawn == 2 && report.entries == 6, "\(report)")
        let tally = try ledger.tally(upTo: nil)
        #expect(tally.count == 2 && tally.withdrawn == 2)
        // As it stood before the withdrawals: nothing was withdrawn yet.
        let before = try ledger.tally(upTo: "2026-11-26T23:00:00.000Z")
        #expect(before.count == 4 && before.withdrawn == 0)
        var listed: [Int64] = []
        try ledger.forEachSignature { listed.append($0.seq) }
        #expect(listed == [1, 3])
        #expect(try ledger.mailableSigners().map(\.signature) == [1, 3])
        #expect(try ledger.enqueueSigners(template: "thanks", consent: nil, at: clock.now()) == 2)
        // Nothing more to withdraw; the withdrawn spelling is still a duplicate (its fingerprint).
        #expect(try ledger.dedupe(withdraw: true, commit: true, showAddresses: false, at: clock.now()).groups.isEmpty)
        #expect(try ledger.append(signature("ana@gmail.com"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T11:00:00.000Z", count: 2))
    }

    /// A forged withdrawal, appended through the normal path (so correctly chained), and
    /// mailbox-key rows muster cannot have written: each fails verify at its entry.
    @Test(arguments: [
        (#"{"duplicate_of":1,"withdraws":99}"#, "entry 6 withdraws entry 99, which is not an earlier signature"),
        (#"{"duplicate_of":1,"withdraws":4}"#, "entry 6 withdraws entry 4, which is not an earlier signature"),
        (#"{"duplicate_of":1,"withdraws":2}"#, "entry 6 withdraws entry 2, which entry 5 already withdrew"),
        (#"{"duplicate_of":4,"withdraws":3}"#, "entry 6 withdraws entry 3 as a duplicate of entry 4, which is not another earlier signature"),
        (#"{"duplicate_of":3,"withdraws":3}"#, "entry 6 withdraws entry 3 as a duplicate of entry 3, which is not another earlier signature"),
        (#"{"withdraws":3}"#, "entry 6 is a withdrawal without a valid target"),
    ])
    func aForgedWithdrawalFailsVerify(body: String, reason: String) throws {
        let folder = try TemporaryFolder()
        let ledger = try withdrawnLedger(folder)
        _ = try ledger.database.writeTransaction {
            try ledger.appendEntry(kind: .withdrawal, at: Timestamp.format(clock.now()), fingerprint: nil, body: body, personal: nil)
        }
        let report = try ledger.verify()
        #expect(!report.ok)
        #expect(report.firstBad == .init(entry: 6, reason: reason), "\(report)")
    }

    /// 1 ana@gmail.com, 2 a.na+x@gmail.com (withdrawn by 5), 3 bo+news@example.org (the
    /// only key row: its mailbox is bo@example.org), 4 an opt-out.
    func withdrawnLedger(_ folder: TemporaryFolder) throws -> Ledger {
        var ledger = try ledger(folder)
        ledger.mailboxRules = MailboxRules(keepTags: true)
        _ = try ledger.append(signature("ana@gmail.com"), at: clock.now())
        _ = try ledger.append(signature("a.na+x@gmail.com"), at: clock.now())
        _ = try ledger.append(signature("bo+news@example.org"), at: clock.now())
        _ = try ledger.unsubscribe(canonicalEmail: "cy@example.org", at: clock.now())
        ledger = try self.ledger(folder)
        #expect(try ledger.dedupe(withdraw: true, commit: true, showAddresses: false, at: clock.now()).withdrawn == 1)
        let report = try ledger.verify()
        try #require(report.ok && report.count == 2 && report.withdrawn == 1)
        return ledger
    }

    @Test(arguments: [
        ("INSERT INTO mailbox_keys VALUES (4, X'\(String(repeating: "a", count: 32))')", Int64?(4), "a mailbox key is stored for entry 4, which is not a signature"),
        ("INSERT INTO mailbox_keys VALUES (2, X'\(String(repeating: "a", count: 32))')", 2,
         "a mailbox key is stored for entry 2, which was withdrawn (a withdrawn signature has none)"),
        ("INSERT INTO mailbox_keys VALUES (77, X'\(String(repeating: "a", count: 32))')", 77,
         "a mailbox key is stored for entry 77, which is outside the hash chain (entries 1–5)"),
        ("UPDATE mailbox_keys SET key = 'bo@example.org' WHERE seq = 3", 3, "the mailbox key of entry 3 is not 16 bytes, as muster writes it"),
        ("UPDATE mailbox_keys SET key = substr(key, 1, 8) WHERE seq = 3", 3, "the mailbox key of entry 3 is not 16 bytes, as muster writes it"),
        ("CREATE INDEX mailbox_keys_seq ON mailbox_keys(seq, key)", nil, "the ledger holds an index 'mailbox_keys_seq' that muster did not create"),
    ])
    func mailboxKeysMusterCannotHaveWrittenFailVerify(sql: String, entry: Int64?, reason: String) throws {
        let folder = try TemporaryFolder()
        _ = try withdrawnLedger(folder)
        try tamper(folder, sql)
        let report = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: false)).verify()
        #expect(!report.ok)
        #expect(report.firstBad == .init(entry: entry, reason: reason), "\(report)")
        #expect(report.count == 2 && report.withdrawn == 1, "the count is the chain's")
    }

    @Test func aKeyPutBackForAForgottenSignerFailsVerify() throws {
        let folder = try TemporaryFolder()
        let ledger = try withdrawnLedger(folder)
        let key = try #require(try query(folder, "SELECT hex(key) FROM mailbox_keys WHERE seq = 3").first)
        guard case .forgotten = try ledger.forget(canonicalEmail: "bo+news@example.org", at: clock.now()) else { Issue.record("not forgotten"); return }
        #expect(try query(folder, "SELECT count(*) FROM mailbox_keys") == ["0"], "forget deleted the row")
        #expect(try ledger.verify().ok)
        try tamper(folder, "INSERT INTO mailbox_keys VALUES (3, X'\(key)')")
        let report = try ledger.verify()
        #expect(report.firstBad == .init(entry: 3, reason: "a mailbox key is stored for entry 3, whose signer was forgotten (a forgotten signer has none)"))
    }

    /// A key row deleted (or altered) with an SQLite client is not something `verify` can
    /// tell from a signer who is their own mailbox; `dedupe` remakes every key, says how
    /// many were wrong, and the variant is a duplicate again.
    @Test func dedupeRemakesAKeyThatWentMissing() throws {
        let folder = try TemporaryFolder()
        _ = try withdrawnLedger(folder)
        let row = try query(folder, "SELECT lower(hex(key)) FROM mailbox_keys WHERE seq = 3")
        try tamper(folder, "DELETE FROM mailbox_keys WHERE seq = 3")
        var ledger = try self.ledger(folder)
        #expect(try ledger.verify().ok, "documented: verify cannot tell")
        let note = try ledger.database.writeTransaction { try ledger.syncMailboxKeys(force: true) }
        #expect(note?.hasSuffix("1 stored key was missing, altered or extra") == true, "\(String(describing: note))")
        #expect(try query(folder, "SELECT lower(hex(key)) FROM mailbox_keys WHERE seq = 3") == row)
        #expect(try ledger.database.writeTransaction { try ledger.syncMailboxKeys(force: true) } == nil, "nothing to remake now")
        ledger = try self.ledger(folder)
        #expect(try ledger.append(signature("bo@example.org"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 2))
    }

    @Test func aKeyBesideTheChainStopsEveryWrite() throws {
        let folder = try TemporaryFolder()
        _ = try withdrawnLedger(folder)
        try tamper(folder, "INSERT INTO mailbox_keys VALUES (-1, X'\(String(repeating: "b", count: 32))')")
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: false))
        #expect(throws: MusterError.self) { try ledger.append(signature("dan@example.org"), at: clock.now()) }
        #expect(throws: MusterError.self) { try ledger.dedupe(withdraw: true, commit: true, showAddresses: false, at: clock.now()) }
        #expect(try ledger.signatureCount() == 2)
    }
}
