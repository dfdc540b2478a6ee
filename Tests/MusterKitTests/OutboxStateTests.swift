import Foundation
import Testing
@testable import MusterKit

/// The outbox state machine, written out by hand: every (state, event) pair.
@Suite struct OutboxStateTests {
    /// The expected transitions, stated independently of `OutboxState.after(_:)`. A pair
    /// missing here must give nil (the event cannot happen in that state).
    static let table: [OutboxState: [OutboxEvent: OutboxState]] = [
        .queued: [.claim: .sending, .notMailable: .failed],
        .sending: [.release: .queued, .delivered: .sent, .rejected: .failed, .deferred: .deferred,
                   .lost: .unknown, .sessionRefused: .queued, .notMailable: .failed],
        .sent: [:],
        .deferred: [.claim: .sending, .notMailable: .failed],
        .failed: [.retryFailed: .queued],
        .unknown: [.claim: .sending, .notMailable: .failed],
    ]

    @Test(arguments: OutboxState.allCases)
    func everyEventFromEveryState(_ state: OutboxState) throws {
        let expected = try #require(Self.table[state], "the table covers \(state)")
        for event in OutboxEvent.allCases {
            #expect(state.after(event) == expected[event], "\(state) on \(event)")
        }
    }

    @Test func theSetsAreWhatTheCommandsPromise() {
        #expect(OutboxState.pending == [.queued, .deferred])
        #expect(OutboxState.claimable == [.queued, .deferred, .unknown])
        #expect(OutboxState.retryable == [.failed])
        #expect(OutboxState.toSend(retryUnknown: false) == [.queued, .deferred])
        #expect(OutboxState.toSend(retryUnknown: true) == [.queued, .deferred, .unknown])
        // Every state is exactly one of: waiting, in doubt, done.
        for state in OutboxState.allCases {
            let memberships = [OutboxState.pending, OutboxState.inDoubt, OutboxState.done].filter { $0.contains(state) }.count
            #expect(memberships == 1, "\(state)")
        }
        #expect(OutboxState.columns == [.queued, .sent, .deferred, .failed, .unknown], "sending is shown as queued")
        #expect(OutboxState.sqlList([.unknown, .queued]) == "'queued','unknown'")
    }

    @Test func countsFoldSendingIntoQueuedAndEncodeOneKeyPerState() throws {
        var counts = OutboxCounts()
        counts[.queued] = 2
        counts[.sending] = 3
        counts[.sent] = 5
        #expect(counts.total == 10)
        #expect(counts[OutboxState.pending] == 2)
        #expect(counts.shown.queued == 5 && counts.shown.sending == 0 && counts.shown.total == 10)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(counts)) as? [String: Int]
        #expect(json == ["queued": 2, "sending": 3, "sent": 5, "deferred": 0, "failed": 0, "unknown": 0])
        #expect(try JSONDecoder().decode(OutboxCounts.self, from: JSONEncoder().encode(counts)) == counts)
        #expect((counts + counts).sent == 10)
    }

    @Test func aSummaryEncodesTheColumnsTheSpecNames() throws {
        var summary = BlastSummary(template: "thanks")
        summary.counts[.sent] = 4
        summary.counts[.deferred] = 1
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(summary)) as? [String: Any])
        #expect(Set(json.keys) == ["template", "sent", "deferred", "failed", "unknown", "queued", "retried_failed", "seconds", "rate"])
        #expect(json["sent"] as? Int == 4 && json["deferred"] as? Int == 1 && json["queued"] as? Int == 0)
    }

    static let failure = SMTPFailure(replyCode: 451, replyText: "try later", curlCode: 0, detail: "x")

    /// Every SMTP failure class, what the blast engine does with it and the exit code of a
    /// command that stops on it (SPEC.md: 69 relay unreachable, 75 temporary, 65 bad input, 1 failure).
    static let classes: [(SMTPError, DeliveryOutcome, OutboxEvent, Int32)] = [
        (.transient(failure), .deferred(failure), .deferred, 75),
        (.permanent(failure), .rejected(failure), .rejected, 1),
        (.outcomeUnknown(failure), .unknown(failure), .lost, 75),
        (.relayUnreachable(failure), .relayUnusable(.relayUnreachable(failure)), .deferred, 69),
        (.authFailed(failure), .relayUnusable(.authFailed(failure)), .deferred, 1),
        (.sessionRefused(failure), .sessionRefused(.sessionRefused(failure)), .sessionRefused, 1),
        (.tlsFailed(failure), .relayUnusable(.tlsFailed(failure)), .deferred, 1),
        (.invalidEnvelope("CR in address"), .rejected(SMTPFailure(detail: "invalid SMTP envelope: CR in address")), .rejected, 65),
        (.setup("curl_easy_init failed"), .relayUnusable(.setup("curl_easy_init failed")), .deferred, 1),
    ]

    @Test func everySMTPFailureClassIsMappedOnceForTheEngineAndForTheExitCode() {
        for (error, outcome, event, exit) in Self.classes {
            #expect(DeliveryOutcome(error) == outcome, "\(error)")
            #expect(DeliveryOutcome(error).event == event, "\(error)")
            let stopped = MusterError(error)
            #expect(stopped.status.rawValue == exit, "\(error)")
            #expect(stopped.message == error.localizedDescription)
        }
    }

    @Test func aJournalLineSettlesAnInterruptedRowThroughTheSameTransitions() {
        let cases: [(HandoverJournal.Event??, OutboxState, Bool)] = [
            (.some(.some(.accepted)), .sent, true), (.some(.some(.failed)), .failed, true),
            (.some(.some(.deferred)), .deferred, true), (.some(.some(.handed)), .unknown, true),
            (.some(nil), .queued, false), (nil, .unknown, false),
        ]
        for (journal, state, attempt) in cases {
            let (event, _, counted) = Ledger.recovered(journal)
            #expect(OutboxState.sending.after(event) == state, "\(String(describing: journal))")
            #expect(counted == attempt)
        }
    }
}
