import Foundation
import MusterKit
import Testing

/// Reliability row "forged bounces": bounce-shaped mail naming real signers, with no
/// token, another workspace's tokens, tampered tokens, or tokens for addresses that never
/// got the mail, among a few genuine bounces, after a real blast with VERP.
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct InboxReliabilityTests {
    func env(_ relay: TestRelay) -> [String: String] { ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"] }

    static func dsn(naming address: String, messageID: String, to envelope: String, id: String) -> String {
        """
        Return-Path: <>
        Delivered-To: \(envelope)
        From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
        To: \(envelope)
        Subject: Undelivered Mail Returned to Sender
        Message-ID: <\(id)@mx.example.net>
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status; boundary="B"

        --B
        Content-Type: text/plain

        <\(address)>: host mx.example.net said: 550 5.1.1 User unknown

        --B
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.net

        Final-Recipient: rfc822; \(address)
        Action: failed
        Status: 5.1.1

        --B
        Content-Type: text/rfc822-headers

        From: Fair Rates <hello@fairrates.example>
        To: \(address)
        Message-ID: <\(messageID)>

        --B--

        """
    }

    @Test func forgedBouncesSuppressNobody() throws {
        let names = (0..<Reliability.scale(full: 200, ci: 16)).map { "f\($0)" }
        let box = try InboxCLITests.verpWorkspace(signers: names)
        let relay = try TestRelay(in: box)
        #expect(try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay)).status == 0)
        let sent = try InboxCLITests().envelopes(relay)
        // The same people in another workspace: its tokens are valid there, not here.
        let elsewhere = try InboxCLITests.verpWorkspace(signers: names)
        let otherRelay = try TestRelay(in: elsewhere)
        #expect(try elsewhere.run(["mail", "send", "thanks", "--yes"], environment: env(otherRelay)).status == 0)
        let foreign = try InboxCLITests().envelopes(otherRelay)
        let ledger = try #require(try Ledger.open(box.path(InboxCLITests.ledger), create: false))
        let key = try ledger.mailTokenKey()

        var messages: [String] = []
        var forged = 0
        for (index, name) in names.enumerated() {
            let address = "\(name)@example.org"
            let mine = try #require(sent[address]), theirs = try #require(foreign[address])
            let token = String(mine.messageID.dropFirst("muster.".count).prefix(36))
            var tampered = Array(token)
            tampered[index % 36] = tampered[index % 36] == "a" ? "b" : "a"
            let stranger = key.token(campaign: "fair-rates", template: "thanks",
                                     recipient: try ledger.recipientKey(email: "never-\(name)@example.org")).text
            let forgeries = [
                Self.dsn(naming: address, messageID: "\(UUID().uuidString)@fairrates.example", to: "hello@fairrates.example", id: "a\(index)"),
                Self.dsn(naming: address, messageID: theirs.messageID, to: theirs.from, id: "b\(index)"),
                Self.dsn(naming: address, messageID: "muster.\(String(tampered))@fairrates.example",
                         to: "bounces+\(String(tampered))@fairrates.example", id: "c\(index)"),
                Self.dsn(naming: address, messageID: "muster.\(stranger)@fairrates.example", to: "bounces+\(stranger)@fairrates.example", id: "d\(index)"),
            ]
            messages += forgeries
            forged += forgeries.count
        }
        // Two genuine bounces, by VERP and by Message-ID.
        let first = try #require(sent["f0@example.org"]), second = try #require(sent["f1@example.org"])
        messages.append(InboxCLITests.proseBounce(to: first.from, id: 100))
        messages.append(Self.dsn(naming: "f1@example.org", messageID: second.messageID, to: "hello@fairrates.example", id: "genuine"))

        let mailbox = MemoryMailbox(messages)
        let (summary, seconds) = try Reliability.time {
            try InboxProcessor.run(workspace: Workspace(root: box.root), mailbox: mailbox, options: InboxOptions())
        }
        #expect(summary.scanned == forged + 2)
        #expect(summary.unrecognised == forged, "\(summary.actions.filter { $0.kind != "unrecognised" })")
        #expect(summary.hard == 2 && summary.suppressedNow == 2)
        #expect(mailbox.moved.values.filter { $0 == "muster/unrecognised" }.count == forged)
        let status = try box.run(["mail", "status", "--json"]).json()
        #expect(status["bounced"] as? Int == 2, "\(status)")
        // The next mail goes to everyone but the two genuine bounces.
        try box.write("campaigns/fair-rates/emails/later.md", "---\nsubject: \"Later\"\naudience: signers\n---\nLater, {{name}}.\n")
        let later = try TestRelay(in: box)
        #expect(try box.run(["mail", "send", "later", "--yes"], environment: env(later)).status == 0)
        let mailed = Set(try later.received().flatMap(\.to))
        #expect(mailed == Set(names.dropFirst(2).map { "\($0)@example.org" }))
        Reliability.record("forged bounces", "\(forged) forged bounces naming \(names.count) real signers (no token, another workspace's, tampered, for an address that never got the mail) among 2 genuine ones, processed in \(Reliability.seconds(seconds)): \(summary.unrecognised) moved to muster/unrecognised, 2 suppressed; the next blast mailed the other \(mailed.count)")
    }
}
