import Foundation

/// One message of a blast's work: a recipient, how often it was tried in this run and
/// when it may be tried next.
struct BlastJob {
    let recipient: Recipient
    var attempts: Int
    /// Seconds on the blast's monotonic clock (see `BlastShared.elapsed`).
    var notBefore: Double
    /// The ledger's newest entry when this person was last known to be mailable (see `MailabilityGate`).
    var checkedAt: Int64
}

/// One event loop of a blast, on a thread of its own: claims rows ahead (rendering their
/// messages), hands state changes to the group-committing writer, and drives its
/// transport's connections. A message is handed to the transport only once its
/// `sending` mark is durable and its hand-over is in the journal, so after a crash of
/// the process only the messages in flight (at most one per connection) are `unknown`.
final class BlastLoop: @unchecked Sendable {
    // Created on the blast's thread, then used by the loop's thread only.
    private let blast: Blast
    private let shared: BlastShared
    private let sender: any BlastTransport
    private let writer: OutboxWriter
    private let journal: HandoverJournal
    private let configuration: BlastConfiguration

    init(blast: Blast, shared: BlastShared, sender: any BlastTransport, writer: OutboxWriter, journal: HandoverJournal) {
        self.blast = blast
        self.shared = shared
        self.sender = sender
        self.writer = writer
        self.journal = journal
        self.configuration = blast.configuration
    }

    /// A claimed message: waiting for its `sending` mark to be on disk, then in transfer.
    private final class Transfer {
        var job: BlastJob
        let message: RenderedMessage
        /// The writer ticket of its `sending` mark.
        var ticket: Int

        init(job: BlastJob, message: RenderedMessage, ticket: Int) {
            self.job = job
            self.message = message
            self.ticket = ticket
        }
    }

    /// An outcome whose outbox update may not be on disk yet (`ticket` nil: not submitted).
    private struct Unresolved {
        let key: String
        /// What the journal says of it after "handed over" (nil: nothing more, it is unknown).
        let event: HandoverJournal.Event?
        var ticket: Int?
    }

    /// What the loop keeps between rounds.
    private var retries: [BlastJob] = []
    private var updates: [Ledger.OutboxUpdate] = []
    private var tally = OutboxCounts()

    func run() {
        let connections = sender.slotCount
        // Under --rate, claim no more than about half a second's worth ahead, over all the
        // loops together (this loop's share is its share of the connections).
        let share = Double(connections) / Double(max(connections, shared.request.connections))
        let claimHigh = min(configuration.claimHigh * connections,
                            shared.request.ratePerSecond.map { max(1, Int(min($0, 1e9) / 2 * share)) } ?? Int.max)
        let claimLow = min(configuration.claimLow * connections, claimHigh)
        var slots = [Transfer?](repeating: nil, count: connections)
        var ready: [Transfer] = []       // claimed, in order; the first ones may still wait for their mark
        var claimed = 0                  // how many at the end of `ready` are not yet submitted
        var unresolved: [Unresolved] = []
        var outcomesPending = false
        var lastSubmit = shared.elapsed
        var feedEmpty = false
        // Moves the transfers forward (libcurl sends what it can) and takes in the
        // outcomes of those that ended.
        func collectOutcomes() {
            for (slot, outcome) in sender.collect() {
                guard let transfer = slots[slot] else { continue }
                slots[slot] = nil
                let event = record(outcome, of: transfer.job)
                if let event { journal.record(event, transfer.job.recipient.key) }
                unresolved.append(Unresolved(key: transfer.job.recipient.key, event: event, ticket: nil))
                outcomesPending = true
            }
        }
        while true {
            collectOutcomes()
            var committed: Int
            do {
                committed = try writer.committedTicket()
            } catch {
                shared.stop(Blast.musterError(error))
                committed = -1
            }
            let stopping = shared.stopReason != nil || blast.isStopRequested

            // Hand the claimed messages whose mark is on disk to idle connections: first
            // into the journal (with the outcomes just read), then to the transport. This
            // comes before claiming more, and libcurl is asked at once to send the first
            // command, so rendering and signing the next claim overlap the relay's reply.
            var starting: [(slot: Int, transfer: Transfer)] = []
            if !stopping, slots.contains(where: { $0 == nil }), let first = ready.first, first.ticket <= committed {
                // Whoever unsubscribed or was forgotten since their row was read is not mailed:
                // a `PRAGMA data_version` per round, a look-up only after another process wrote.
                var head = first.job.checkedAt
                do {
                    head = try shared.gate.newestEntry()
                } catch {
                    shared.stop(Blast.musterError(error))
                }
                var index = 0
                while index < slots.count, shared.stopReason == nil {
                    defer { index += 1 }
                    guard slots[index] == nil else { continue }
                    guard let next = ready.first, next.ticket <= committed else { break }
                    if next.job.checkedAt != head {
                        let mailable: Bool
                        do {
                            mailable = try shared.gate.isMailable(next.job.recipient)
                        } catch {
                            shared.stop(Blast.musterError(error))
                            break
                        }
                        if !mailable {
                            ready.removeFirst()
                            updates.append(.init(recipient: next.job.recipient.key, state: Self.next(.notMailable), reply: Ledger.unmailableReply))
                            tally[Self.next(.notMailable)] += 1
                            outcomesPending = true
                            index -= 1  // the slot is still free
                            continue
                        }
                        next.job.checkedAt = head
                    }
                    if let bucket = shared.bucket, bucket.tryTake() > 0 { break }
                    ready.removeFirst()
                    journal.handed(next.job.recipient.key)
                    starting.append((index, next))
                }
            }
            do {
                try journal.flush()
            } catch {
                shared.stop(Blast.musterError(error))
                // Not in the journal: not handed over. They go back to the queue next time round.
                ready.insert(contentsOf: starting.map(\.transfer), at: 0)
                starting = []
            }
            for (index, transfer) in starting {
                if let outcome = sender.start(slot: index, message: transfer.message) {
                    let event = record(outcome, of: transfer.job)
                    // Written with the next flush; until then the journal says handed over, which
                    // recovery reads as unknown: never less safe than the truth.
                    if let event { journal.record(event, transfer.job.recipient.key) }
                    unresolved.append(Unresolved(key: transfer.job.recipient.key, event: event, ticket: nil))
                    outcomesPending = true
                } else {
                    slots[index] = transfer
                }
            }
            if !starting.isEmpty { collectOutcomes() }

            // Claim the next rows (retries that are due first) while fewer than `claimLow` wait.
            if !stopping && ready.count < claimLow {
                let now = shared.elapsed
                while ready.count < claimHigh {
                    let job: BlastJob
                    if let due = retries.firstIndex(where: { $0.notBefore <= now }) {
                        job = retries.remove(at: due)
                    } else if !feedEmpty, let next = shared.nextJob() {
                        job = next
                    } else {
                        feedEmpty = true
                        break
                    }
                    do {
                        let message = try blast.render(job.recipient)
                        updates.append(.init(recipient: job.recipient.key, state: .sending))
                        ready.append(Transfer(job: job, message: message, ticket: Int.max))
                        claimed += 1
                    } catch {
                        updates.append(.init(recipient: job.recipient.key, state: Self.next(.rejected),
                                             reply: "not sent: \(Blast.musterError(error).message)"))
                        tally[Self.next(.rejected)] += 1
                    }
                }
            }
            let idle = !slots.contains(where: { $0 != nil })
            if stopping {
                // Claimed rows that never went out go back to the queue.
                for transfer in ready { updates.append(.init(recipient: transfer.job.recipient.key, state: Self.next(.release))) }
                ready.removeAll()
                claimed = 0
            }
            let finishing = idle && ready.isEmpty && (stopping || (feedEmpty && retries.isEmpty))

            // Claims go to the writer at once; outcomes with them, or once they are a little old.
            if claimed > 0 || (!updates.isEmpty && (finishing || shared.elapsed - lastSubmit >= configuration.outcomeDelay || !outcomesPending)) {
                let ticket = writer.submit(updates)
                for index in (ready.count - claimed)..<ready.count { ready[index].ticket = ticket }
                for index in unresolved.indices where unresolved[index].ticket == nil { unresolved[index].ticket = ticket }
                updates.removeAll(keepingCapacity: true)
                claimed = 0
                outcomesPending = false
                lastSubmit = shared.elapsed
            }
            if tally.total > 0 {
                shared.add(tally)
                tally.reset()
            }

            if finishing && updates.isEmpty { return }

            // Keep the journal small: rewrite it with the messages in flight and the
            // outcomes not yet on disk.
            if journal.size > configuration.journalLimit, committed >= 0 {
                unresolved.removeAll { $0.ticket.map { $0 <= committed } ?? false }
                // The outcomes not yet on disk, then the messages in flight (a key deferred and
                // handed over again ends with its hand-over).
                var events: [(HandoverJournal.Event, String)] = []
                for entry in unresolved {
                    events.append((.handed, entry.key))
                    if let event = entry.event { events.append((event, entry.key)) }
                }
                events += slots.compactMap { $0.map { (.handed, $0.job.recipient.key) } }
                do {
                    try journal.rewrite(events)
                } catch {
                    shared.stop(Blast.musterError(error))
                }
            } else if unresolved.count > 4 * claimHigh, committed >= 0 {
                unresolved.removeAll { $0.ticket.map { $0 <= committed } ?? false }
            }

            var wait = 0.2
            if outcomesPending { wait = configuration.outcomeDelay }
            if let bucket = shared.bucket, slots.contains(where: { $0 == nil }), !ready.isEmpty { wait = min(wait, max(0.001, bucket.delay())) }
            if idle, ready.isEmpty, !stopping, let soonest = retries.map(\.notBefore).min() {
                wait = min(wait, max(0.001, soonest - shared.elapsed))
            }
            if finishing { wait = 0.001 }
            // A claimed message waiting for its mark starts as soon as the writer reports it on disk.
            if slots.contains(where: { $0 == nil }), let awaited = ready.first?.ticket, awaited > committed, committed >= 0 {
                let writer = self.writer
                sender.wait(timeout: wait, unless: { ((try? writer.committedTicket()) ?? Int.max) >= awaited })
            } else {
                sender.wait(timeout: wait, unless: nil)
            }
        }
    }

    /// The state a `sending` row moves to on `event` (the outbox state machine).
    static func next(_ event: OutboxEvent) -> OutboxState {
        OutboxState.sending.after(event) ?? .sending
    }

    /// Turns the outcome of one transfer into its outbox update, the run's counts and,
    /// for a deferral with attempts left, a retry. Returns what the hand-over journal is
    /// to say of it after "handed over" (nil: unknown).
    private func record(_ outcome: DeliveryOutcome, of job: BlastJob) -> HandoverJournal.Event? {
        let key = job.recipient.key
        let state = Self.next(outcome.event)
        var job = job
        job.attempts += 1
        switch outcome {
        case .delivered(let receipt):
            updates.append(.init(recipient: key, state: state, reply: Blast.redactingAddresses("\(receipt.replyCode) \(receipt.replyText)"), countsAttempt: true))
            tally[state] += 1
            return .accepted
        case .rejected(let failure):
            // Relays quote the address ("550 5.1.1 <ana@…>: unknown user"): the outbox keeps the reply without it.
            var update = Ledger.OutboxUpdate(recipient: key, state: state, reply: Blast.redactingAddresses(failure.description), countsAttempt: true)
            // A 5xx about the recipient is a hard bounce: the address is suppressed (Inbox/Suppression.swift).
            update.bounce = Ledger.smtpBounceStatus(failure)
            updates.append(update)
            tally[state] += 1
            return .failed
        case .deferred(let failure):
            updates.append(.init(recipient: key, state: state, reply: Blast.redactingAddresses(failure.description), countsAttempt: true))
            if job.attempts >= configuration.maxAttempts {
                tally[state] += 1
            } else {
                job.notBefore = shared.elapsed + configuration.backoff * pow(2, Double(job.attempts - 1))
                retries.append(job)
            }
            return .deferred
        case .unknown(let failure):
            updates.append(.init(recipient: key, state: state, reply: Blast.redactingAddresses(failure.description), countsAttempt: true))
            tally[state] += 1
            return nil
        case .sessionRefused(let error):
            // About the sender, the relay or the session, not this recipient: every message
            // would meet it. The row waits, untouched, for a run after the cause is fixed.
            updates.append(.init(recipient: key, state: state))
            shared.stop(MusterError(error))
            return .deferred
        case .relayUnusable(let error):
            // Nothing was handed over: the message waits for the next run.
            updates.append(.init(recipient: key, state: state, reply: Blast.redactingAddresses(error.failure?.description ?? error.localizedDescription),
                                 countsAttempt: true))
            shared.stop(MusterError(error))
            return .deferred
        }
    }
}

extension Blast {
    /// `text` with every email address in it replaced by `[address]`, so a relay's reply
    /// never puts a recipient's address into the ledger (where `forget` could miss it).
    static func redactingAddresses(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "@")) else { return text }
        func isDelimiter(_ byte: UInt8) -> Bool {
            byte <= 0x20 || byte == 0x7F || "<>\"'(),;:[]{}`".utf8.contains(byte)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "@") else { out.append(bytes[index]); index += 1; continue }
            // Take back the local part already copied (a quoted one too), skip the domain.
            if out.last == UInt8(ascii: "\""), let open = out.dropLast().lastIndex(of: UInt8(ascii: "\"")) {
                out.removeSubrange(open...)
            } else {
                while let last = out.last, !isDelimiter(last) { out.removeLast() }
            }
            index += 1
            while index < bytes.count, !isDelimiter(bytes[index]) { index += 1 }
            out += Array("[address]".utf8)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
