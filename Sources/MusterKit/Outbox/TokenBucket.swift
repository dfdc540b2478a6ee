import Foundation

/// At most `rate` tokens a second, on an injected monotonic clock.
final class TokenBucket: @unchecked Sendable {
    private let lock = NSLock()
    private let interval: Double
    private let clock: any MonotonicClock
    private var next: Double

    init(rate: Double, clock: any MonotonicClock = SystemMonotonicClock()) {
        interval = 1 / max(rate, 0.001)
        self.clock = clock
        next = clock.seconds()
    }

    /// Seconds until the next token (0 when one is due); takes nothing.
    func delay() -> Double {
        lock.withLock { max(0, next - clock.seconds()) }
    }

    /// Takes a token and returns 0 when one is due; otherwise takes nothing and returns
    /// the seconds until the next one. A token not taken on time is not saved up
    /// (at most one is made up for), so there is no burst after a pause.
    func tryTake() -> Double {
        lock.withLock {
            let now = clock.seconds()
            if next > now { return next - now }
            next = max(next, now - interval) + interval
            return 0
        }
    }
}
