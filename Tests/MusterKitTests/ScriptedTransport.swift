import Foundation
@testable import MusterKit

/// A monotonic clock the test moves: the blast's back-off and rate limit see only this.
final class ManualClock: MonotonicClock, @unchecked Sendable {
    private let lock = NSLock()
    private var now: Double = 1_000

    func seconds() -> Double { lock.withLock { now } }
    func advance(by seconds: Double) { lock.withLock { now += max(0, seconds) } }
}

/// What the relay of a test does: per recipient address, the outcome of each attempt in
/// turn (then delivered), and a log of every message started. Shared by the transports
/// of one blast; thread-safe.
final class RelayScript: @unchecked Sendable {
    struct Start: Equatable {
        var to: String
        /// The manual clock when the message was started.
        var at: Double
    }

    private let lock = NSLock()
    private var outcomes: [String: [DeliveryOutcome]]
    private var log: [Start] = []
    /// Runs on the loop's thread as each message starts (e.g. to unsubscribe someone mid-blast).
    let onStart: @Sendable (String) -> Void

    init(_ outcomes: [String: [DeliveryOutcome]] = [:], onStart: @escaping @Sendable (String) -> Void = { _ in }) {
        self.outcomes = outcomes
        self.onStart = onStart
    }

    var starts: [Start] { lock.withLock { log } }
    func started(_ address: String) -> [Double] { starts.filter { $0.to == address }.map(\.at) }

    func next(for address: String, at time: Double) -> DeliveryOutcome {
        lock.withLock {
            log.append(Start(to: address, at: time))
            guard var queue = outcomes[address], !queue.isEmpty else {
                return .delivered(SMTPReceipt(replyCode: 250, replyText: "2.0.0 OK queued for <\(address)>"))
            }
            let outcome = queue.removeFirst()
            outcomes[address] = queue
            return outcome
        }
    }

    static func failure(_ code: Int, _ text: String) -> SMTPFailure {
        SMTPFailure(replyCode: code, replyText: text, detail: "scripted")
    }
}

/// The fake `BlastTransport`: every message ends by the next `collect`, with the outcome
/// the script gives. A `wait` without `ready` moves the manual clock by its time-out
/// instead of sleeping; a `wait` with `ready` (the engine waiting for the writer's
/// commit) blocks until `wakeup`.
final class ScriptedTransport: BlastTransport, @unchecked Sendable {
    // `ended` belongs to the loop's thread; `condition` guards `woken`.
    let slotCount: Int
    private let script: RelayScript
    private let clock: ManualClock
    private var ended: [(slot: Int, outcome: DeliveryOutcome)] = []
    private let condition = NSCondition()
    private var woken = false

    init(slots: Int, script: RelayScript, clock: ManualClock) {
        self.slotCount = slots
        self.script = script
        self.clock = clock
    }

    static func factory(_ script: RelayScript, clock: ManualClock) -> BlastTransportFactory {
        BlastTransportFactory { connections in ScriptedTransport(slots: connections, script: script, clock: clock) }
    }

    func start(slot: Int, message: RenderedMessage) -> DeliveryOutcome? {
        script.onStart(message.envelopeTo)
        ended.append((slot, script.next(for: message.envelopeTo, at: clock.seconds())))
        return nil
    }

    func collect() -> [(slot: Int, outcome: DeliveryOutcome)] {
        defer { ended.removeAll() }
        return ended
    }

    func wait(timeout: Double, unless ready: (() -> Bool)?) {
        guard ended.isEmpty else { return }
        guard let ready else { return clock.advance(by: timeout) }
        condition.lock()
        defer { woken = false; condition.unlock() }
        // Bounded, so a lost wake-up costs a second, not the test run.
        let deadline = Date(timeIntervalSinceNow: 1)
        while !woken, !ready(), condition.wait(until: deadline) {}
    }

    func wakeup() {
        condition.lock()
        woken = true
        condition.broadcast()
        condition.unlock()
    }
}
