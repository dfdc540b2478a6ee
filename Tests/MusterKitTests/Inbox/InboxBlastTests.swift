import Foundation
import Testing
@testable import MusterKit

/// Suppression meets the blast: SMTP-time 5xx rejections suppress, a suppression
/// recorded by `muster inbox` while a blast runs stops that recipient's message, and the
/// messages carry the tokens the inbox ties bounces back with.
@Suite struct InboxBlastTests {
    typealias F = RelayScript

    @Test func aRelaysRecipientRejectionSuppressesTheAddressForEveryTemplate() throws {
        let people = ["bad@example.org", "ana@example.org"]
        let bench = try BlastBench(signers: people)
        let script = RelayScript(["bad@example.org": [.rejected(F.failure(550, "5.1.1 <bad@example.org>: unknown user"))]])
        _ = try bench.run(script)
        #expect(try bench.ledger.suppression(canonicalEmail: "bad@example.org") == .bounce)
        #expect(try bench.ledger.suppression(canonicalEmail: "ana@example.org") == nil)
        #expect(try bench.ledger.suppressionCounts()["thanks"]?.bounced == 1)
        // --retry-failed does not mail a suppressed address again…
        let again = RelayScript()
        _ = try bench.run(again, retryFailed: true)
        #expect(again.starts.isEmpty)
        // …nor does another template.
        try bench.folder.write("campaigns/fair-rates/emails/news.md", BlastBench.thanks)
        let news = RelayScript()
        _ = try bench.run(news, template: "news")
        #expect(news.starts.map(\.to) == ["ana@example.org"])
        // Once the bounce is reset, it can be retried.
        #expect(try bench.ledger.resetBounces(canonicalEmail: "bad@example.org", at: bench.clock.now()))
        let retried = RelayScript()
        _ = try bench.run(retried, retryFailed: true)
        #expect(retried.starts.map(\.to) == ["bad@example.org"])
        // The stored status has no address in it.
        let database = try SQLiteDatabase(path: bench.campaign.ledgerURL.path)
        #expect(try database.scalarInt("SELECT count(*) FROM bounces WHERE coalesce(status, '') LIKE '%@%' OR recipient LIKE '%@%'") == 0)
        #expect(try bench.ledger.verify().ok)
    }

    @Test func aBounceProcessedDuringABlastStopsThatRecipientsMessage() throws {
        let people = ["ana@example.org", "bo@example.org", "cy@example.org", "di@example.org"]
        let bench = try BlastBench(signers: people)
        let workspace = bench.campaign.workspace
        let key = try bench.ledger.mailTokenKey()
        let cy = try bench.ledger.recipientKey(email: "cy@example.org")
        let token = key.token(campaign: "fair-rates", template: "thanks", recipient: cy).text
        let bounce = try InboxWorld.fixture("postfix-hard.eml", messageID: "muster.\(token)@fairrates.example",
                                            recipient: "cy@example.org")
        // `muster inbox`, as another process, while the first message goes out.
        let script = RelayScript(onStart: { address in
            guard address == "ana@example.org" else { return }
            let mailbox = ScriptedMailbox()
            mailbox.add(1, bounce)
            _ = try? InboxProcessor.run(workspace: workspace, mailbox: mailbox, options: InboxOptions())
        })
        let (summary, error) = try bench.run(script)
        #expect(error == nil)
        #expect(script.starts.map(\.to) == ["ana@example.org", "bo@example.org", "di@example.org"])
        let rows = try bench.rows(people)
        #expect(rows["cy@example.org"]?.state == .failed)
        #expect(rows["cy@example.org"]?.reply == Ledger.unmailableReply)
        #expect(summary.failed == 1)
        #expect(try bench.ledger.suppression(canonicalEmail: "cy@example.org") == .bounce)
    }

    @Test func blastMessagesCarryAVerifiableMessageIDAndVERPAddress() throws {
        let bench = try BlastBench(signers: ["ana@example.org"])
        var settings = bench.settings
        settings.smtpVERP = "bounces@fairrates.example"
        let blast = try Blast(campaign: bench.campaign, manifest: bench.manifest, settings: settings, ledger: bench.ledger,
                              templateName: "thanks", clock: bench.clock)
        let ana = try #require(try blast.audience().first)
        let message = try blast.render(ana)
        #expect(message.messageID.hasPrefix("muster.") && message.messageID.hasSuffix("@fairrates.example"))
        let token = String(message.messageID.dropFirst("muster.".count).prefix(MailToken.textLength))
        #expect(message.envelopeFrom == "bounces+\(token)@fairrates.example")
        // The token names ana's row once the blast has queued it, and nobody else's.
        try bench.ledger.enqueue(template: "thanks", recipients: [ana], at: bench.clock.now())
        let parsed = try #require(MailToken(text: token))
        let found = try bench.ledger.resolve(parsed, campaign: "fair-rates", key: try bench.ledger.mailTokenKey(), templates: ["thanks"])
        #expect(found?.recipient == ana.key)
        #expect(try bench.ledger.resolve(parsed, campaign: "other", key: try bench.ledger.mailTokenKey(), templates: ["thanks"]) == nil)
        // Without smtp.verp the envelope sender is the campaign's.
        let plain = try bench.blast().render(ana)
        #expect(plain.envelopeFrom == "hello@fairrates.example")
        #expect(plain.messageID == message.messageID)
    }
}
