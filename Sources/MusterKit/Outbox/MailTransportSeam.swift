import Foundation

/// What became of one message a blast handed to its transport, in the terms the blast
/// engine acts on. Transports classify their own failures into these (`init(_:)` does it
/// for an `SMTPError`); the engine never sees a transport's own error codes.
public enum DeliveryOutcome: Sendable, Equatable {
    /// The relay accepted the message (2xx to the end of DATA).
    case delivered(SMTPReceipt)
    /// Refused for good for this recipient: a 5xx to RCPT TO or DATA, or an envelope
    /// that can never be sent. The row fails; not retried.
    case rejected(SMTPFailure)
    /// Not accepted for now: a 4xx, a time-out or a connection lost before the whole
    /// message went out. Retried with back-off.
    case deferred(SMTPFailure)
    /// The whole message went out but the final reply never came: it may have been
    /// accepted. The row is `unknown`, resent only on request.
    case unknown(SMTPFailure)
    /// A 5xx to the greeting, EHLO/HELO or MAIL FROM: about the relay or the sender, so
    /// every message would meet it. The blast stops; the row goes back to the queue.
    case sessionRefused(SMTPError)
    /// The relay cannot be used at all (unreachable, TLS, login, client set-up). The
    /// blast stops; the row is deferred.
    case relayUnusable(SMTPError)

    /// The one classification of an `SMTPError` for the blast engine.
    public init(_ error: SMTPError) {
        switch error {
        case .transient(let failure): self = .deferred(failure)
        case .permanent(let failure): self = .rejected(failure)
        case .invalidEnvelope(let why): self = .rejected(SMTPFailure(detail: "invalid SMTP envelope: \(why)"))
        case .outcomeUnknown(let failure): self = .unknown(failure)
        case .sessionRefused: self = .sessionRefused(error)
        case .relayUnreachable, .authFailed, .tlsFailed, .setup: self = .relayUnusable(error)
        }
    }

    /// What this outcome does to the row that was `sending`.
    public var event: OutboxEvent {
        switch self {
        case .delivered: return .delivered
        case .rejected: return .rejected
        case .deferred, .relayUnusable: return .deferred
        case .unknown: return .lost
        case .sessionRefused: return .sessionRefused
        }
    }
}

/// The blast engine's view of a way to send mail: a fixed number of connection slots,
/// each carrying one message at a time, driven from one thread. The engine starts a
/// message on an idle slot, then repeatedly collects the outcomes of the transfers that
/// ended (`collect`) and waits for more to happen (`wait`). libcurl's multi interface
/// (`CurlSMTPMulti`) is the real one; tests script one of their own.
///
/// Each transport is driven by one event loop's thread (it is handed to that thread,
/// hence `Sendable`); only `wakeup` is called from other threads.
public protocol BlastTransport: AnyObject, Sendable {
    /// How many messages can be in transfer at once (slots `0..<slotCount`).
    var slotCount: Int { get }

    /// Starts sending `message` on the idle `slot`. Returns nil when the message is on its
    /// way (its outcome comes from `collect`), or the outcome at once when it could not
    /// be started (e.g. an envelope the relay could never take).
    func start(slot: Int, message: RenderedMessage) -> DeliveryOutcome?

    /// Moves the transfers forward and returns those that ended since the last call.
    func collect() -> [(slot: Int, outcome: DeliveryOutcome)]

    /// Waits for network activity, a `wakeup`, or `timeout` seconds, whichever comes
    /// first. With `ready`, a `wakeup` interrupts the wait, and there is no wait at all
    /// when `ready()` is already true once that is arranged.
    func wait(timeout: Double, unless ready: (() -> Bool)?)

    /// Interrupts a `wait` that passed `ready`. Thread-safe.
    func wakeup()
}

/// Makes a blast's transports: one per event loop, each with `connections` slots.
/// `.curl(settings)` is the SMTP relay; tests pass a scripted one.
public struct BlastTransportFactory: Sendable {
    private let make: @Sendable (_ connections: Int) throws -> any BlastTransport

    public init(_ make: @escaping @Sendable (_ connections: Int) throws -> any BlastTransport) {
        self.make = make
    }

    func callAsFunction(connections: Int) throws -> any BlastTransport { try make(connections) }

    /// The SMTP relay of `settings`, through libcurl's multi interface.
    public static func curl(_ settings: SMTPSettings) -> BlastTransportFactory {
        BlastTransportFactory { connections in try CurlSMTPMulti(settings: settings, connections: connections) }
    }

    /// Any blocking single-message `MailTransport` (one slot, one message at a time):
    /// the simplest way to plug a new transport into the blast engine.
    public static func serial(_ make: @escaping @Sendable () throws -> any MailTransport) -> BlastTransportFactory {
        BlastTransportFactory { _ in SerialBlastTransport(try make()) }
    }
}

/// A `MailTransport` (one blocking `send`) as a one-slot `BlastTransport`: `start` sends
/// at once and `collect` hands the outcome over.
final class SerialBlastTransport: BlastTransport, @unchecked Sendable {
    // `ended` is touched by the engine's thread only; `condition` guards `woken`.
    private let transport: any MailTransport
    private var ended: [(slot: Int, outcome: DeliveryOutcome)] = []
    private let condition = NSCondition()
    private var woken = false

    init(_ transport: any MailTransport) { self.transport = transport }

    var slotCount: Int { 1 }

    func start(slot: Int, message: RenderedMessage) -> DeliveryOutcome? {
        do {
            ended.append((slot, .delivered(try transport.send(message))))
        } catch {
            ended.append((slot, DeliveryOutcome(error)))
        }
        return nil
    }

    func collect() -> [(slot: Int, outcome: DeliveryOutcome)] {
        defer { ended.removeAll(keepingCapacity: true) }
        return ended
    }

    func wait(timeout: Double, unless ready: (() -> Bool)?) {
        guard ended.isEmpty else { return }
        condition.lock()
        defer { woken = false; condition.unlock() }
        if let ready, ready() { return }
        let deadline = Date(timeIntervalSinceNow: max(0, min(timeout, 1)))
        while !woken, condition.wait(until: deadline) {}
    }

    func wakeup() {
        condition.lock()
        woken = true
        condition.broadcast()
        condition.unlock()
    }
}
