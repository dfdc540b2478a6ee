import Foundation
import Testing
@testable import MusterKit

/// A campaign on disk with a real SQLite ledger, and a blast over the scripted transport.
final class BlastBench {
    static let manifest = """
        title: Fair rates
        goal: 10
        sender: "Fair Rates Collective <hello@fairrates.example>"
        targets:
          - name: "Agency Board"
            email: board@agencies.example
        fields:
          - name: region
            required: true
            personal: false
        consent:
          updates: "Keep me informed"
        """
    static let thanks = "---\nsubject: \"Thank you, {{first_name}}!\"\naudience: signers\n---\nHi {{name}}, from {{region}}.\n"

    let folder: TemporaryFolder
    let campaign: Campaign
    let manifest: Manifest
    let settings: WorkspaceSettings
    let ledger: Ledger
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)
    let monotonic = ManualClock()

    init(signers: [String]) throws {
        folder = try TemporaryFolder()
        try folder.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n")
        try folder.write("campaigns/fair-rates/campaign.yaml", Self.manifest)
        try folder.write("campaigns/fair-rates/emails/thanks.md", Self.thanks)
        campaign = Campaign(workspace: Workspace(root: folder.url), slug: "fair-rates")
        manifest = try campaign.loadManifest().0
        settings = try #require(WorkspaceSettings.load(campaign.workspace).0)
        ledger = try #require(try Ledger.open(campaign.ledgerURL, create: true))
        for email in signers {
            let input = SignatureInput(name: "Signer \(email.prefix(while: { $0 != "@" }))", email: email, fields: ["region": "Lyon"], consents: ["updates"])
            _ = try ledger.append(try input.validated(against: manifest), at: clock.now())
        }
    }

    func blast(_ template: String = "thanks", maxAttempts: Int = 3, backoff: Double = 1) throws -> Blast {
        let configuration = BlastConfiguration(clock: monotonic, maxAttempts: maxAttempts, backoff: backoff, maxLoops: 1)
        return try Blast(campaign: campaign, manifest: manifest, settings: settings, ledger: ledger, templateName: template,
                         clock: clock, configuration: configuration)
    }

    /// Runs a blast of `template`; a stopped run gives its summary and error.
    func run(_ script: RelayScript, template: String = "thanks", connections: Int = 1, rate: Double? = nil,
             retryUnknown: Bool = false, retryFailed: Bool = false, maxAttempts: Int = 3) throws -> (BlastSummary, MusterError?) {
        let request = BlastRequest(template: template, connections: connections, ratePerSecond: rate,
                                   retryUnknown: retryUnknown, retryFailed: retryFailed)
        do {
            return (try blast(template, maxAttempts: maxAttempts).run(request, transport: ScriptedTransport.factory(script, clock: monotonic),
                                                                       onProgress: { _ in }), nil)
        } catch let stopped as BlastStopped {
            return (stopped.summary, stopped.error)
        }
    }

    /// The outbox rows of `template`, by the address they are for.
    func rows(_ addresses: [String], template: String = "thanks") throws -> [String: OutboxRow] {
        let all = try ledger.outboxRows(template: template, states: Set(OutboxState.allCases))
        var byAddress: [String: OutboxRow] = [:]
        for address in addresses {
            let key = try ledger.recipientKey(email: address)
            byAddress[address] = all.first { $0.recipient == key }
        }
        return byAddress
    }

    func states(_ addresses: [String], template: String = "thanks") throws -> [String: OutboxState] {
        try rows(addresses, template: template).mapValues(\.state)
    }

    var journals: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: campaign.folder.path)) ?? []).filter { $0.hasPrefix(".mail.journal.") }
    }
}

@Suite struct BlastEngineTests {
    typealias F = RelayScript

    @Test func everyOutcomeLeavesItsRowInItsState() throws {
        let people = ["ana@example.org", "bad@example.org", "later@example.org", "lost@example.org", "once@example.org"]
        let bench = try BlastBench(signers: people)
        let busy = F.failure(451, "4.3.0 <later@example.org> try later")
        let script = RelayScript([
            "bad@example.org": [.rejected(F.failure(550, "5.1.1 <bad@example.org>: unknown user"))],
            "later@example.org": [.deferred(busy), .deferred(busy), .deferred(busy)],
            "lost@example.org": [.unknown(SMTPFailure(curlCode: 56, detail: "connection reset after the final dot"))],
            "once@example.org": [.deferred(busy)],
        ])
        let (summary, error) = try bench.run(script)
        #expect(error == nil)
        let rows = try bench.rows(people)
        #expect(rows.mapValues(\.state) == ["ana@example.org": .sent, "bad@example.org": .failed, "later@example.org": .deferred,
                                            "lost@example.org": .unknown, "once@example.org": .sent])
        #expect(rows.mapValues(\.attempts) == ["ana@example.org": 1, "bad@example.org": 1, "later@example.org": 3,
                                               "lost@example.org": 1, "once@example.org": 2])
        #expect(rows["bad@example.org"]?.reply == "550 5.1.1 <[address]>: unknown user (scripted)", "the reply, without the address")
        #expect(rows["ana@example.org"]?.reply == "250 2.0.0 OK queued for <[address]>")
        #expect(summary.sent == 2 && summary.failed == 1 && summary.unknown == 1 && summary.deferred == 1 && summary.queued == 0)
        #expect(script.started("ana@example.org").count == 1, "sent once")
        #expect(bench.journals.isEmpty, "a finished run removes its journals")
        #expect(try bench.ledger.verify().ok)
    }

    @Test func retriesWaitTheBackOffOnTheInjectedClock() throws {
        let bench = try BlastBench(signers: ["later@example.org", "ana@example.org"])
        let busy = F.failure(421, "4.7.0 busy")
        let script = RelayScript(["later@example.org": Array(repeating: .deferred(busy), count: 3)])
        _ = try bench.run(script, maxAttempts: 4)
        let times = script.started("later@example.org")
        #expect(times.count == 4, "the fourth attempt goes through")
        // backoff 1: the waits are at least 1, 2 and 4 seconds of the manual clock.
        for (index, wait) in [1.0, 2, 4].enumerated() {
            #expect(times[index + 1] - times[index] >= wait, "attempt \(index + 2) after \(times[index + 1] - times[index]) s")
        }
        #expect(try bench.states(["later@example.org"]) == ["later@example.org": .sent])
        #expect(script.started("ana@example.org").count == 1, "the other message did not wait for the retries")
    }

    @Test func theRateLimitSpacesMessagesOnTheInjectedClock() throws {
        let people = (1...6).map { "p\($0)@example.org" }
        let bench = try BlastBench(signers: people)
        let script = RelayScript()
        let (summary, _) = try bench.run(script, connections: 2, rate: 2)
        #expect(summary.sent == 6)
        let times = script.starts.map(\.at).sorted()
        // One every 0.5 s of the manual clock (the engine may wake a millisecond late, and
        // makes up for at most that much).
        for (earlier, later) in zip(times, times.dropFirst()) {
            #expect(later - earlier >= 0.49, "two messages \(later - earlier) s apart under --rate 2/s")
        }
        #expect(times.last! - times.first! >= 2.5 - 0.01)
    }

    @Test func tokenBucketOnTheInjectedClockSavesNoTokensUp() {
        let clock = ManualClock()
        let bucket = TokenBucket(rate: 4, clock: clock)  // one every 0.25 s
        #expect(bucket.tryTake() == 0)
        #expect(bucket.tryTake() == 0.25, "the next is not due yet")
        #expect(bucket.delay() == 0.25)
        clock.advance(by: 0.25)
        #expect(bucket.tryTake() == 0)
        clock.advance(by: 10)
        #expect(bucket.tryTake() == 0, "one made up for after a pause")
        #expect(bucket.tryTake() == 0, "and one more at most")
        #expect(bucket.tryTake() > 0, "no burst")
    }

    @Test func aRefusedSessionStopsTheBlastAndLeavesEveryRowQueued() throws {
        let people = ["ana@example.org", "bo@example.org", "cy@example.org"]
        let bench = try BlastBench(signers: people)
        let script = RelayScript(["ana@example.org": [.sessionRefused(.sessionRefused(F.failure(553, "5.7.1 sender rejected")))]])
        let (summary, error) = try bench.run(script)
        let stop = try #require(error)
        #expect(stop.status == .failure)
        #expect(stop.message.contains("refused the session or the sender"))
        #expect(script.starts.count == 1, "nothing more went out")
        let rows = try bench.rows(people)
        #expect(rows.values.allSatisfy { $0.state == .queued && $0.attempts == 0 && $0.reply == nil }, "\(rows)")
        #expect(summary.queued == 3 && summary.sent == 0)
        #expect(bench.journals.isEmpty)
    }

    @Test func anUnreachableRelayStopsTheBlastWithExit69() throws {
        let bench = try BlastBench(signers: ["ana@example.org", "bo@example.org"])
        let script = RelayScript(["ana@example.org": [.relayUnusable(.relayUnreachable(F.failure(0, "")))]])
        let (_, error) = try bench.run(script)
        #expect(error?.status == .relayUnreachable)
        #expect(try bench.states(["ana@example.org", "bo@example.org"]) == ["ana@example.org": .deferred, "bo@example.org": .queued])
    }

    @Test func retryFailedQueuesFailedRowsAgainButNotThoseWhoLeft() throws {
        let people = ["bad@example.org", "gone@example.org", "ana@example.org"]
        let bench = try BlastBench(signers: people)
        // Refused for the message's content: a 5xx about the recipient (5.1.1) would suppress
        // the address, which --retry-failed does not undo (InboxBlastTests).
        let refused = DeliveryOutcome.rejected(F.failure(554, "5.6.0 message content rejected"))
        _ = try bench.run(RelayScript(["bad@example.org": [refused], "gone@example.org": [refused]]))
        #expect(try bench.states(people) == ["bad@example.org": .failed, "gone@example.org": .failed, "ana@example.org": .sent])
        _ = try bench.ledger.unsubscribe(canonicalEmail: "gone@example.org", at: bench.clock.now())

        let plain = RelayScript()
        #expect(try bench.run(plain).0.sent == 0, "failed rows stay failed without the flag")
        let plan = try bench.blast().plan(BlastRequest(template: "thanks", retryFailed: true))
        #expect(plan.retryFailed == 1 && plan.toSend == 1, "only the audience's failed row: \(plan)")
        let again = RelayScript()
        let (summary, _) = try bench.run(again, retryFailed: true)
        #expect(again.starts.map(\.to) == ["bad@example.org"])
        #expect(summary.retriedFailed == 2 && summary.sent == 1)
        let rows = try bench.rows(people)
        #expect(rows.mapValues(\.state) == ["bad@example.org": .sent, "gone@example.org": .failed, "ana@example.org": .sent])
        #expect(rows["gone@example.org"]?.reply == Ledger.unmailableReply)
    }

    @Test func whoUnsubscribesOrIsForgottenDuringABlastIsNotMailed() throws {
        let people = ["ana@example.org", "bo@example.org", "cy@example.org", "di@example.org"]
        let bench = try BlastBench(signers: people)
        let url = bench.campaign.ledgerURL
        let at = bench.clock.now()
        // Another process, as `muster unsubscribe` and `muster forget` would be.
        let script = RelayScript(onStart: { address in
            guard address == "ana@example.org", let other = try? Ledger.open(url, create: false) else { return }
            _ = try? other.unsubscribe(canonicalEmail: "cy@example.org", at: at)
            _ = try? other.forget(canonicalEmail: "bo@example.org", at: at)
        })
        let (summary, error) = try bench.run(script)
        #expect(error == nil)
        #expect(script.starts.map(\.to) == ["ana@example.org", "di@example.org"])
        let rows = try bench.rows(people)
        #expect(rows.mapValues(\.state) == ["ana@example.org": .sent, "bo@example.org": .failed, "cy@example.org": .failed, "di@example.org": .sent])
        #expect(rows["cy@example.org"]?.reply == Ledger.unmailableReply)
        #expect(summary.failed == 2)
    }

    /// A crashed run: every row `sending`, and a journal saying what became of each.
    func crashedRun(bootID: String?) throws -> (BlastBench, [String]) {
        let people = ["accepted@example.org", "refused@example.org", "later@example.org", "inflight@example.org", "claimed@example.org"]
        let bench = try BlastBench(signers: people)
        let signers = try bench.ledger.mailableSigners()
        try bench.ledger.enqueue(template: "thanks", recipients: signers, at: bench.clock.now())
        try bench.ledger.updateOutbox(template: "thanks", signers.map { .init(recipient: $0.key, state: .sending) }, at: bench.clock.now())
        let key = { (address: String) in try bench.ledger.recipientKey(email: address) }
        var journal = "\(HandoverJournal.magic)\nboot \(bootID ?? "-")\ntemplate thanks\n"
        journal += "H \(try key("accepted@example.org"))\nS \(try key("accepted@example.org"))\n"
        journal += "H \(try key("refused@example.org"))\nF \(try key("refused@example.org"))\n"
        journal += "H \(try key("later@example.org"))\nD \(try key("later@example.org"))\n"
        journal += "H \(try key("inflight@example.org"))\n"
        // A last line cut short by the crash: it never happened.
        journal += "H \(try key("claimed@example.org"))"
        try bench.folder.write("campaigns/fair-rates/.mail.journal.0", journal)
        return (bench, people)
    }

    @Test func aCrashedRunIsSortedOutFromItsJournal() throws {
        let (bench, people) = try crashedRun(bootID: HandoverJournal.bootID)
        let script = RelayScript()
        let (summary, _) = try bench.run(script)
        // Only the row deferred (D) and the one never handed over go out.
        #expect(Set(script.starts.map(\.to)) == ["later@example.org", "claimed@example.org"])
        let rows = try bench.rows(people)
        #expect(rows.mapValues(\.state) == ["accepted@example.org": .sent, "refused@example.org": .failed, "later@example.org": .sent,
                                            "inflight@example.org": .unknown, "claimed@example.org": .sent])
        #expect(rows.mapValues(\.attempts) == ["accepted@example.org": 1, "refused@example.org": 1, "later@example.org": 2,
                                               "inflight@example.org": 1, "claimed@example.org": 1])
        #expect(rows["accepted@example.org"]?.reply?.contains("recorded after the run was interrupted") == true)
        #expect(summary.sent == 2)
        #expect(bench.journals.isEmpty)

        // The unknown one goes out only on request.
        let again = RelayScript()
        _ = try bench.run(again)
        #expect(again.starts.isEmpty)
        _ = try bench.run(again, retryUnknown: true)
        #expect(again.starts.map(\.to) == ["inflight@example.org"])
        #expect(try bench.states(["inflight@example.org"]) == ["inflight@example.org": .sent])
    }

    @Test func aJournalFromAnotherBootIsNotTrusted() throws {
        let (bench, people) = try crashedRun(bootID: "another-boot")
        let script = RelayScript()
        _ = try bench.run(script)
        #expect(script.starts.isEmpty, "nothing whose outcome is in doubt is resent")
        #expect(Set(try bench.states(people).values) == [.unknown])
    }

    @Test func aTemplateWhoseAudienceChangedSendsOnlyToItsNewAudience() throws {
        let people = ["ana@example.org", "bo@example.org"]
        let bench = try BlastBench(signers: people)
        let first = RelayScript()
        let request = BlastRequest(template: "thanks", limit: 1, connections: 1)
        _ = try bench.blast().run(request, transport: ScriptedTransport.factory(first, clock: bench.monotonic), onProgress: { _ in })
        #expect(first.starts.map(\.to) == ["ana@example.org"])
        #expect(try bench.states(people) == ["ana@example.org": .sent, "bo@example.org": .queued])

        try bench.folder.write("campaigns/fair-rates/emails/thanks.md", BlastBench.thanks.replacingOccurrences(of: "audience: signers", with: "audience: targets"))
        let second = RelayScript()
        let (summary, _) = try bench.run(second)
        #expect(second.starts.map(\.to) == ["board@agencies.example"], "the signer queued under the old audience is not mailed")
        let rows = try bench.rows(people + ["board@agencies.example"])
        #expect(rows["bo@example.org"]?.state == .failed)
        #expect(rows["bo@example.org"]?.reply == Ledger.otherAudienceReply)
        #expect(rows["board@agencies.example"]?.state == .sent)
        #expect(rows["ana@example.org"]?.state == .sent)
        #expect(summary.sent == 1)
    }

    @Test func twoTemplatesKeepTheirOwnOutboxes() throws {
        let people = ["ana@example.org", "bo@example.org"]
        let bench = try BlastBench(signers: people)
        try bench.folder.write("campaigns/fair-rates/emails/deliver.md", "---\nsubject: \"Petition\"\naudience: targets\n---\nDear {{name}}.\n")
        let script = RelayScript()
        _ = try bench.run(script)
        _ = try bench.run(script, template: "deliver")
        #expect(script.starts.map(\.to) == people + ["board@agencies.example"])
        let counts = try bench.ledger.outboxCounts()
        #expect(counts["thanks"]?.sent == 2 && counts["deliver"]?.sent == 1)
    }

    @Test func aSerialMailTransportPlugsIntoTheEngine() throws {
        let bench = try BlastBench(signers: ["ana@example.org", "bad@example.org"])
        let request = BlastRequest(template: "thanks", connections: 3)
        let factory = BlastTransportFactory.serial {
            RecordingMailTransport { recipient, _ in
                recipient == "bad@example.org" ? .permanent(RelayScript.failure(550, "no")) : nil
            }
        }
        let summary = try bench.blast().run(request, transport: factory, onProgress: { _ in })
        #expect(summary.sent == 1 && summary.failed == 1)
    }

    @Test func eachConnectionHasAnEventLoopOfItsOwnThatSendsBeforeItRendersMore() throws {
        let people = (1...40).map { "signer\($0)@example.org" }
        let bench = try BlastBench(signers: people)
        let script = RelayScript([:])
        let made = TransportLog()
        let clock = bench.monotonic
        let factory = BlastTransportFactory { connections in
            let transport = RecordingTransport(ScriptedTransport(slots: connections, script: script, clock: clock))
            made.add(transport)
            return transport
        }
        // The default configuration: what `mail send` uses.
        let configuration = BlastConfiguration(clock: bench.monotonic, maxAttempts: 3, backoff: 1)
        let blast = try Blast(campaign: bench.campaign, manifest: bench.manifest, settings: bench.settings, ledger: bench.ledger,
                              templateName: "thanks", clock: bench.clock, configuration: configuration)
        let summary = try blast.run(BlastRequest(template: "thanks", connections: 4), transport: factory, onProgress: { _ in })
        #expect(summary.sent == 40)
        let transports = made.all
        // libcurl waits for the reply to the final dot blocking: connections sharing a loop would take turns.
        #expect(transports.map(\.slotCount) == [1, 1, 1, 1], "four connections, four loops of one connection each")
        #expect(transports.reduce(0) { $0 + $1.calls.filter { $0 == .start }.count } == 40)
        for transport in transports {
            // After handing messages over, the loop has the transport move them (libcurl sends
            // the first command) before anything else, and so before it renders the next claim.
            let calls = transport.calls
            for (index, call) in calls.enumerated() where call == .start && calls.indices.contains(index + 1) && calls[index + 1] != .start {
                #expect(calls[index + 1] == .collect, "call \(index + 1) after a start: \(calls[index + 1])")
            }
        }
    }
}

/// A transport that remembers the calls the engine made, in order (used by one loop's thread;
/// read once the blast has ended).
final class RecordingTransport: BlastTransport, @unchecked Sendable {
    enum Call: Equatable { case start, collect, wait }
    private let inner: ScriptedTransport
    private(set) var calls: [Call] = []

    init(_ inner: ScriptedTransport) { self.inner = inner }

    var slotCount: Int { inner.slotCount }

    func start(slot: Int, message: RenderedMessage) -> DeliveryOutcome? {
        calls.append(.start)
        return inner.start(slot: slot, message: message)
    }

    func collect() -> [(slot: Int, outcome: DeliveryOutcome)] {
        calls.append(.collect)
        return inner.collect()
    }

    func wait(timeout: Double, unless ready: (() -> Bool)?) {
        calls.append(.wait)
        inner.wait(timeout: timeout, unless: ready)
    }

    func wakeup() { inner.wakeup() }
}

/// The transports a factory made, from whichever thread made them.
final class TransportLog: @unchecked Sendable {
    // `lock` guards `made`.
    private let lock = NSLock()
    private var made: [RecordingTransport] = []

    func add(_ transport: RecordingTransport) { lock.withLock { made.append(transport) } }
    var all: [RecordingTransport] { lock.withLock { made } }
}
