import Foundation
import MusterKit
import Testing

/// `muster inbox`, the real binary, against a real Dovecot: a real blast to the loopback
/// relay, its bounce (with the blast's own Message-ID and VERP address), an auto-reply
/// and someone's unrelated mail in the mailbox; then what moved where, what stayed
/// unread, and who the next blast skips. Plus `inbox:` settings errors, a wrong password
/// and a connection that drops mid-fetch.
@Suite(.enabled(if: TestDovecot.available && TestRelay.available, "needs dovecot-imapd and aiosmtpd (make test installs both)"))
struct InboxIMAPCLITests {
    static let fixtures = MusterBinary.packageRoot.appendingPathComponent("Tests/MusterKitTests/Fixtures/bounces")

    func env(_ relay: TestRelay) -> [String: String] { ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"] }

    /// muster.yaml with VERP and an inbox: section for `server` (STARTTLS, its CA).
    static func configure(_ box: Sandbox, _ server: TestDovecot, url: String? = nil) throws {
        try box.write("muster.yaml", """
            sender: "Fair Rates <hello@fairrates.example>"
            smtp:
              url: smtp://127.0.0.1:9
              starttls: never
              verp: bounces@fairrates.example
            inbox:
              url: \(url ?? server.starttlsURL)
              username: \(server.user)
              ca_file: \(try #require(server.ca))

            """)
    }

    /// A workspace after a real blast to ana, dead and cy; the corpus for its mailbox:
    /// dead's bounce, ana's out-of-office reply, and an organizer's unrelated message.
    static func blastAndCorpus(_ test: InboxIMAPCLITests) throws -> (Sandbox, [URL]) {
        let box = try InboxCLITests.verpWorkspace(signers: ["ana", "dead", "cy"])
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes"], environment: test.env(relay))
        try #require(send.status == 0, "\(send)")
        let sent = try InboxCLITests().envelopes(relay)
        let dead = try #require(sent["dead@example.org"]), ana = try #require(sent["ana@example.org"])
        let bounce = InboxReliabilityTests.dsn(naming: "dead@example.org", messageID: dead.messageID, to: dead.from, id: "dsn-1")
        let vacation = try String(contentsOf: fixtures.appendingPathComponent("autoreply-rfc3834.eml"), encoding: .utf8)
            .replacingOccurrences(of: "{{RCPT}}", with: "ana@example.org").replacingOccurrences(of: "{{MESSAGE_ID}}", with: ana.messageID)
        let unrelated = try String(contentsOf: fixtures.appendingPathComponent("unrelated.eml"), encoding: .utf8)
        var files: [URL] = []
        for (index, text) in [unrelated, bounce, vacation].enumerated() {
            try box.write("corpus/\(index).eml", text)
            files.append(box.path("corpus/\(index).eml"))
        }
        return (box, files)
    }

    @Test func inboxMovesWhatItProcessedSuppressesTheBounceAndLeavesOtherMailUnread() throws {
        let (box, corpus) = try Self.blastAndCorpus(self)
        let server = try TestDovecot(load: corpus, in: box)
        try Self.configure(box, server)
        #expect(try box.run(["check"]).status == 0)
        let password = ["MUSTER_IMAP_PASSWORD": server.password]
        let before = try server.state()
        #expect(before["INBOX"]?.count == 3)

        let dry = try box.run(["inbox", "--dry-run"], environment: password)
        #expect(dry.status == 0, "\(dry)")
        #expect(dry.stdout.contains("hard") && dry.stdout.contains("would move to muster/processed"), "\(dry.stdout)")
        #expect(dry.stdout.contains("dry run, nothing changed: 3 messages in INBOX"), "\(dry.stdout)")
        #expect(try server.state() == before, "--dry-run moved nothing and marked nothing read")
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 0)

        let run = try box.run(["inbox", "--json"], environment: password)
        #expect(run.status == 0, "\(run)")
        let summary = try run.json()
        #expect(summary["scanned"] as? Int == 3 && summary["hard"] as? Int == 1 && summary["suppressed_now"] as? Int == 1, "\(summary)")
        #expect(summary["auto_replies"] as? Int == 1 && summary["untouched"] as? Int == 1, "\(summary)")
        #expect(!run.stdout.contains("example.org"), "no address in the output")
        // The time split (docs/reference.md, scripts/bench_inbox.py): the server's parts and the rest add up.
        let timings = try #require(summary["timings"] as? [String: Double], "\(summary)")
        #expect(Set(timings.keys) == ["total_seconds", "imap_list_seconds", "imap_fetch_seconds", "imap_move_seconds", "processing_seconds"])
        let waited = (timings["imap_list_seconds"] ?? -1) + (timings["imap_fetch_seconds"] ?? -1) + (timings["imap_move_seconds"] ?? -1)
        #expect((timings["imap_fetch_seconds"] ?? 0) > 0 && (timings["imap_move_seconds"] ?? 0) > 0, "\(timings)")
        #expect(abs(waited + (timings["processing_seconds"] ?? -1) - (timings["total_seconds"] ?? 0)) < 1e-6, "\(timings)")
        let after = try server.state()
        #expect(after["INBOX"]?.map(\.messageID) == ["<flyers-1@example.net>"], "\(after)")
        #expect(after["INBOX"]?.first?.flags == [], "the organizer's mail is untouched and unread")
        #expect(Set(after["muster/processed"]?.map(\.messageID) ?? []) == ["<dsn-1@mx.example.net>", "<ooo-1@example.net>"], "\(after)")
        #expect(after["muster/processed"]?.allSatisfy { $0.flags.isEmpty } == true, "moved unread")
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 1)

        // Run again: only the organizer's mail is left, and it stays.
        let again = try box.run(["inbox", "--json"], environment: password).json()
        #expect(again["scanned"] as? Int == 1 && again["untouched"] as? Int == 1 && again["suppressed_now"] as? Int == 0, "\(again)")
        #expect(try server.state() == after)

        // The next blast skips the suppressed address.
        try box.write("campaigns/fair-rates/emails/later.md", "---\nsubject: \"Later\"\naudience: signers\n---\nLater, {{name}}.\n")
        let relay = try TestRelay(in: box)
        #expect(try box.run(["mail", "send", "later", "--yes"], environment: env(relay)).status == 0)
        #expect(try relay.received().flatMap(\.to).sorted() == ["ana@example.org", "cy@example.org"])
    }

    /// Reliability row "dropped IMAP connection".
    @Test func aDroppedConnectionExits75AndTheRerunCarriesOnCountingNothingTwice() throws {
        let (box, corpus) = try Self.blastAndCorpus(self)
        // A big unrelated message last, so that the cut falls inside it, after the bounce
        // and the auto-reply were processed.
        try box.write("corpus/big.eml", "From: a@example.net\r\nSubject: Minutes\r\nMessage-ID: <minutes@example.net>\r\n\r\n"
                      + String(repeating: "minutes of the meeting, line after line\r\n", count: 6000))
        let server = try TestDovecot(load: corpus + [box.path("corpus/big.eml")], in: box)
        let proxy = try DropProxy(target: try #require(server.tls), cutAfter: 60_000)
        try Self.configure(box, server, url: "imaps://127.0.0.1:\(proxy.port)")
        let password = ["MUSTER_IMAP_PASSWORD": server.password]

        let (cut, seconds) = try Reliability.time { try box.run(["inbox"], environment: password) }
        #expect(cut.status == 75, "\(cut)")
        #expect(cut.stderr.contains("imaps://127.0.0.1:\(proxy.port)") && cut.stderr.contains("run muster inbox again"), "\(cut.stderr)")
        #expect(!cut.stderr.contains(server.password) && !cut.stdout.contains(server.password))
        var state = try server.state()
        #expect(Set(state["muster/processed"]?.map(\.messageID) ?? []) == ["<dsn-1@mx.example.net>", "<ooo-1@example.net>"], "\(state)")
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 1)

        let rerun = try box.run(["inbox", "--json"], environment: password)
        #expect(rerun.status == 0, "\(rerun)")
        let summary = try rerun.json()
        #expect(summary["scanned"] as? Int == 2 && summary["hard"] as? Int == 0 && summary["untouched"] as? Int == 2, "\(summary)")
        state = try server.state()
        #expect(Set(state["INBOX"]?.map(\.messageID) ?? []) == ["<minutes@example.net>", "<flyers-1@example.net>"])
        #expect(state["INBOX"]?.allSatisfy { $0.flags.isEmpty } == true, "still unread")
        #expect(state["muster/processed"]?.count == 2)
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 1, "the bounce counted once")
        Reliability.record("dropped IMAP connection", "connection cut by a proxy after 60,000 bytes, inside a 246 kB message after 2 were processed: exit 75 in \(Reliability.seconds(seconds)) naming the server; the rerun read the 2 left, suppressed nobody again (bounced: 1), moved nothing unrelated, set no \\Seen")
    }

    /// The same cut, and the server unreachable when muster tries to move what it
    /// processed before giving up: nothing moves in that run; the rerun recognises the
    /// processed bounce, only moves it, and counts nothing twice.
    @Test func aDropWithTheServerGoneLeavesTheMovesToTheRerun() throws {
        let (box, corpus) = try Self.blastAndCorpus(self)
        try box.write("corpus/big.eml", "From: a@example.net\r\nSubject: Minutes\r\nMessage-ID: <minutes@example.net>\r\n\r\n"
                      + String(repeating: "minutes of the meeting, line after line\r\n", count: 6000))
        let server = try TestDovecot(load: corpus + [box.path("corpus/big.eml")], in: box)
        let proxy = try DropProxy(target: try #require(server.tls), cutAfter: 60_000, refuse: 1)
        try Self.configure(box, server, url: "imaps://127.0.0.1:\(proxy.port)")
        let password = ["MUSTER_IMAP_PASSWORD": server.password]

        let cut = try box.run(["inbox"], environment: password)
        #expect(cut.status == 75, "\(cut)")
        #expect(cut.stderr.contains("run muster inbox again"), "\(cut.stderr)")
        var state = try server.state()
        #expect(state["INBOX"]?.count == 4 && state["muster/processed"] == nil, "nothing moved: \(state)")
        #expect(state["INBOX"]?.allSatisfy { $0.flags.isEmpty } == true)
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 1)

        let rerun = try box.run(["inbox", "--json"], environment: password)
        #expect(rerun.status == 0, "\(rerun)")
        let summary = try rerun.json()
        #expect(summary["scanned"] as? Int == 4 && summary["hard"] as? Int == 0 && summary["already_processed"] as? Int == 1
                && summary["auto_replies"] as? Int == 1 && summary["untouched"] as? Int == 2 && summary["suppressed_now"] as? Int == 0,
                "\(summary)")
        state = try server.state()
        #expect(Set(state["INBOX"]?.map(\.messageID) ?? []) == ["<minutes@example.net>", "<flyers-1@example.net>"])
        #expect(state["INBOX"]?.allSatisfy { $0.flags.isEmpty } == true, "still unread")
        #expect(Set(state["muster/processed"]?.map(\.messageID) ?? []) == ["<dsn-1@mx.example.net>", "<ooo-1@example.net>"], "\(state)")
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 1, "the bounce counted once")
    }

    /// More messages than one batch of moves (500): 1,100 forged bounces around the real
    /// ones, the organizer's mail in between. Everything lands in its folder, the
    /// organizer's mail stays unread where it was.
    @Test func moreThanOneBatchOfMovesLandsEveryMessageInItsFolder() throws {
        let (box, corpus) = try Self.blastAndCorpus(self)
        let forged = try String(contentsOf: Self.fixtures.appendingPathComponent("forged-no-token.eml"), encoding: .utf8)
        var files: [URL] = []
        for index in 0..<1_100 {
            let text = forged.replacingOccurrences(of: "{{MESSAGE_ID}}", with: "x\(index)@fairrates.example")
                .replacingOccurrences(of: "{{RCPT}}", with: "cy@example.org").replacingOccurrences(of: "{{ENVELOPE}}", with: "hello@fairrates.example")
                .replacingOccurrences(of: "<forged-1@attacker.example>", with: "<forged-\(index)@attacker.example>")
            try box.write("forged/\(index).eml", text)
            files.append(box.path("forged/\(index).eml"))
            if index == 550 { files += corpus }  // the bounce, the auto-reply and the organizer's mail mid-way
        }
        let server = try TestDovecot(load: files, in: box)
        try Self.configure(box, server)
        let run = try box.run(["inbox", "--json"], environment: ["MUSTER_IMAP_PASSWORD": server.password])
        #expect(run.status == 0, "\(run)")
        let summary = try run.json()
        #expect(summary["scanned"] as? Int == 1_103 && summary["unrecognised"] as? Int == 1_100 && summary["hard"] as? Int == 1
                && summary["auto_replies"] as? Int == 1 && summary["untouched"] as? Int == 1 && summary["suppressed_now"] as? Int == 1,
                "\((summary as NSDictionary).filter { ($0.key as? String) != "actions" })")
        let state = try server.state()
        #expect(state["INBOX"]?.map(\.messageID) == ["<flyers-1@example.net>"])
        #expect(state["INBOX"]?.first?.flags == [], "the organizer's mail is untouched and unread")
        #expect(Set(state["muster/processed"]?.map(\.messageID) ?? []) == ["<dsn-1@mx.example.net>", "<ooo-1@example.net>"])
        #expect(Set(state["muster/unrecognised"]?.map(\.messageID) ?? []) == Set((0..<1_100).map { "<forged-\($0)@attacker.example>" }))
        #expect(state["muster/unrecognised"]?.count == 1_100, "each moved once")
        #expect(state.values.joined().allSatisfy { $0.flags.isEmpty }, "nothing marked read")
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 1)
    }

    @Test func aWrongOrMissingPasswordAndNoTLS() throws {
        let box = try Sandbox.withCampaign()
        let server = try TestDovecot(in: box)
        try Self.configure(box, server)
        let wrong = "not-the-password-\(UUID().uuidString.prefix(6))"
        let refused = try box.run(["inbox"], environment: ["MUSTER_IMAP_PASSWORD": wrong])
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("refused the login") && refused.stderr.contains(server.starttlsURL), "\(refused.stderr)")
        #expect(!refused.stderr.contains(wrong) && !refused.stdout.contains(wrong))

        let missing = try box.run(["inbox"], environment: ["MUSTER_IMAP_PASSWORD": ""])
        #expect(missing.status == 64 && missing.stderr.contains("MUSTER_IMAP_PASSWORD"), "\(missing)")

        let clear = try TestDovecot(["--no-tls"], in: box)
        try box.write("muster.yaml", "inbox:\n  url: imap://127.0.0.1:\(clear.plain)\n  username: \(clear.user)\n")
        let plain = try box.run(["inbox"], environment: ["MUSTER_IMAP_PASSWORD": clear.password])
        #expect(plain.status == 1 && plain.stderr.contains("does not offer STARTTLS"), "\(plain)")
    }

    @Test func checkReportsABadInboxSectionWithItsLine() throws {
        let box = try Sandbox.withCampaign()
        try box.write("muster.yaml", """
            sender: "Fair Rates <hello@fairrates.example>"
            inbox:
              url: http://mail.example.org
              username: bounces
              password: hunter2
              folder: "Bounces/"
              timeout: soon

            """)
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        #expect(check.stderr.contains("muster.yaml:3:") && check.stderr.contains("'url' must start with imaps:// or imap://"), "\(check.stderr)")
        #expect(check.stderr.contains("muster.yaml:5:") && check.stderr.contains("MUSTER_IMAP_PASSWORD"), "\(check.stderr)")
        #expect(check.stderr.contains("muster.yaml:6:") && check.stderr.contains("'folder'"), "\(check.stderr)")
        #expect(check.stderr.contains("muster.yaml:7:") && check.stderr.contains("'timeout'"), "\(check.stderr)")
        #expect(!check.stderr.contains("hunter2"))
        let inbox = try box.run(["inbox"], environment: ["MUSTER_IMAP_PASSWORD": "x"])
        #expect(inbox.status == 65, "every command refuses an invalid muster.yaml: \(inbox)")

        try box.write("muster.yaml", "inbox:\n  url: imaps://user:secret@mail.example.org\n")
        let userinfo = try box.run(["check"])
        #expect(userinfo.status == 65 && userinfo.stderr.contains("must not contain a password"), "\(userinfo)")

        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n")
        let none = try box.run(["inbox"])
        #expect(none.status == 64 && none.stderr.contains("inbox:"), "\(none)")
    }
}
