/// Where one (template, recipient) pair stands in a blast.
///
/// `queued → sending → sent | deferred | failed | unknown`. A row is `sent` only once the
/// relay answered 250 to the end of DATA. A row found in `sending` when a blast starts
/// was claimed by a run that crashed: its journal tells whether it went out (see
/// `HandoverJournal`); one that may have is `unknown`, and is resent only on request.
///
/// This file is the whole state machine: the states, the events (`OutboxEvent`), the
/// transitions (`after(_:)`) and the sets the rest of muster asks about. SQL that
/// selects rows by state builds its `IN (…)` list from these sets (`sqlList`); no other
/// file names a state in SQL. Adding a state is a case here, its transitions in
/// `after(_:)`, and its place in the sets.
public enum OutboxState: String, Sendable, Codable, CaseIterable {
    case queued, sending, sent, deferred, failed, unknown

    /// The state a row in this state moves to on `event`; nil when `event` cannot happen
    /// to a row in this state (the row stays as it is).
    public func after(_ event: OutboxEvent) -> OutboxState? {
        switch (self, event) {
        case (.queued, .claim), (.deferred, .claim), (.unknown, .claim): return .sending
        case (.sending, .release), (.sending, .sessionRefused): return .queued
        case (.sending, .delivered): return .sent
        case (.sending, .rejected): return .failed
        case (.sending, .deferred): return .deferred
        case (.sending, .lost): return .unknown
        case (.queued, .notMailable), (.deferred, .notMailable), (.unknown, .notMailable), (.sending, .notMailable): return .failed
        case (.failed, .retryFailed): return .queued
        default: return nil
        }
    }

    /// The states a row can be in for `event` to happen to it.
    public static func from(_ event: OutboxEvent) -> Set<OutboxState> {
        Set(allCases.filter { $0.after(event) != nil })
    }

    /// Waiting to be sent: every run sends these.
    public static let pending: Set<OutboxState> = [.queued, .deferred]
    /// The outcome was lost (or the row is in flight): resent only with `--retry-unknown`.
    public static let inDoubt: Set<OutboxState> = [.sending, .unknown]
    /// The relay gave its final answer: nothing more happens without a flag.
    public static let done: Set<OutboxState> = [.sent, .failed]
    /// Brought back by `--retry-failed` (exactly the states a `.retryFailed` event applies to).
    public static let retryable: Set<OutboxState> = from(.retryFailed)
    /// What `mail status --details` lists: rows that did not simply go out.
    public static let needsAttention: Set<OutboxState> = [.deferred, .failed, .unknown]
    /// Rows a blast may still claim, and so fails when their recipient may no longer be mailed.
    public static let claimable: Set<OutboxState> = from(.claim)

    /// The rows a run sends: the pending ones, and the unknown ones on request.
    public static func toSend(retryUnknown: Bool) -> Set<OutboxState> {
        retryUnknown ? pending.union(claimable) : pending
    }

    /// The column `mail status` and reports count this state in: a row in flight is
    /// still queued as far as a reader is concerned.
    public var countedAs: OutboxState { self == .sending ? .queued : self }

    /// The states readers see as columns (`mail status`, summaries): every state that is
    /// not counted as another.
    public static let columns: [OutboxState] = allCases.filter { $0.countedAs == $0 }

    /// `'state'`, for SQL.
    public var sqlLiteral: String { "'\(rawValue)'" }

    /// `'a','b'` for an SQL `IN (…)`, in a fixed order (the states are plain identifiers).
    public static func sqlList(_ states: Set<OutboxState>) -> String {
        allCases.filter(states.contains).map(\.sqlLiteral).joined(separator: ",")
    }
}

/// What can happen to an outbox row. `OutboxState.after(_:)` says what each does.
public enum OutboxEvent: Sendable, CaseIterable {
    /// A blast claims the row: it is about to be sent.
    case claim
    /// A claimed row that was never handed to the relay goes back (the blast stopped, or
    /// a journal shows it was never handed over).
    case release
    /// The relay accepted the message (250 to the end of DATA).
    case delivered
    /// Refused for good for this recipient (5xx to RCPT TO or DATA), or the message
    /// could not be made.
    case rejected
    /// Not accepted for now (4xx, a connection lost before the end of the data), or the
    /// relay could not be used at all: to be tried again.
    case deferred
    /// The whole message went out and no reply came: it may have been accepted.
    case lost
    /// The relay refused the session or the sender, nothing about this recipient.
    case sessionRefused
    /// The recipient may not be mailed any more (unsubscribed, forgotten, out of the audience).
    case notMailable
    /// `mail send --retry-failed`.
    case retryFailed
}

/// How many rows are in each state: the one count type of the outbox, for `mail status`,
/// blast progress, plans and summaries. Encodes as `{"queued": 1, "sending": 0, …}`.
public struct OutboxCounts: Sendable, Equatable, Codable {
    private var values = [Int](repeating: 0, count: OutboxState.allCases.count)

    public init() {}

    public subscript(state: OutboxState) -> Int {
        get { values[Self.index(state)] }
        set { values[Self.index(state)] = newValue }
    }

    /// The rows in any of `states`.
    public subscript(states: Set<OutboxState>) -> Int {
        OutboxState.allCases.reduce(0) { states.contains($1) ? $0 + self[$1] : $0 }
    }

    public var total: Int { values.reduce(0, +) }

    public var queued: Int { self[.queued] }
    public var sending: Int { self[.sending] }
    public var sent: Int { self[.sent] }
    public var deferred: Int { self[.deferred] }
    public var failed: Int { self[.failed] }
    public var unknown: Int { self[.unknown] }

    /// The counts as readers see them: each state added into its `countedAs` column.
    public var shown: OutboxCounts {
        var folded = OutboxCounts()
        for state in OutboxState.allCases { folded[state.countedAs] += self[state] }
        return folded
    }

    public static func + (lhs: OutboxCounts, rhs: OutboxCounts) -> OutboxCounts {
        var sum = lhs
        sum += rhs
        return sum
    }

    /// Adds in place (no allocation: the blast's event loops do this every round).
    public static func += (lhs: inout OutboxCounts, rhs: OutboxCounts) {
        for index in lhs.values.indices { lhs.values[index] += rhs.values[index] }
    }

    /// Sets every count back to 0, in place.
    public mutating func reset() {
        for index in values.indices { values[index] = 0 }
    }

    /// Encodes one key per column (`OutboxState.columns`) into `encoder`'s keyed container.
    public func encodeColumns(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for state in OutboxState.columns { try container.encode(self[state], forKey: Key(stringValue: state.rawValue)) }
    }

    private static func index(_ state: OutboxState) -> Int {
        OutboxState.allCases.firstIndex(of: state)!
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for state in OutboxState.allCases {
            self[state] = try container.decodeIfPresent(Int.self, forKey: Key(stringValue: state.rawValue)) ?? 0
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for state in OutboxState.allCases { try container.encode(self[state], forKey: Key(stringValue: state.rawValue)) }
    }
}
