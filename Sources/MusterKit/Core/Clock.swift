import Foundation

/// Where muster reads the current time; tests and reproducible reports fix it.
public protocol Clock: Sendable {
    /// The current instant.
    func now() -> Date
}

/// The system clock, unless `MUSTER_NOW` (an RFC 3339 UTC time such as
/// `2026-11-26T12:00:00Z`) fixes it — for golden-file tests and for replaying
/// a report as it would have looked at a given moment.
public struct SystemClock: Clock {
    private let fixed: Date?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if let text = environment["MUSTER_NOW"], !text.isEmpty {
            guard let date = Timestamp.parse(text) else {
                throw MusterError.usage("MUSTER_NOW=\(text) is not a UTC time like 2026-11-26T12:00:00Z")
            }
            fixed = date
        } else {
            fixed = nil
        }
    }

    public func now() -> Date { fixed ?? Date() }
}

/// A clock that always answers the same instant (for unit tests).
public struct FixedClock: Clock {
    public let instant: Date
    public init(_ instant: Date) { self.instant = instant }
    public func now() -> Date { instant }
}

/// Where timing code (retries, back-off, the rate limit, progress) reads elapsed time:
/// seconds on a clock that only moves forward, from an arbitrary origin. Wall-clock
/// time (`Clock`) may jump; this may not. Tests inject a clock they move by hand.
public protocol MonotonicClock: Sendable {
    /// Seconds since this clock's origin; never less than an earlier answer.
    func seconds() -> Double
}

/// The system's monotonic clock (`CLOCK_MONOTONIC`): one read, no allocation.
public struct SystemMonotonicClock: MonotonicClock {
    public init() {}

    public func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

/// UTC timestamps as muster stores them: `YYYY-MM-DDTHH:MM:SS.mmmZ`, which sort as text.
public enum Timestamp {
    /// Formats `date` in UTC with millisecond precision.
    public static func format(_ date: Date) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        append(date, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the 24 bytes of `format(date)` to `out`.
    static func append(_ date: Date, to out: inout [UInt8]) {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        // Written digit by digit: this runs for every imported signature.
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 24))
        out.withUnsafeMutableBufferPointer { buffer in
            let field = UnsafeMutableBufferPointer(rebasing: buffer[start..<(start + 24)])
            func put(_ value: Int, _ digits: Int, at offset: Int) {
                var rest = value
                for index in stride(from: offset + digits - 1, through: offset, by: -1) {
                    field[index] = UInt8(48 + rest % 10)
                    rest /= 10
                }
            }
            put(Int(parts.tm_year) + 1900, 4, at: 0); field[4] = 45
            put(Int(parts.tm_mon) + 1, 2, at: 5); field[7] = 45
            put(Int(parts.tm_mday), 2, at: 8); field[10] = 84
            put(Int(parts.tm_hour), 2, at: 11); field[13] = 58
            put(Int(parts.tm_min), 2, at: 14); field[16] = 58
            put(Int(parts.tm_sec), 2, at: 17); field[19] = 46
            put(Int(((milliseconds % 1000) + 1000) % 1000), 3, at: 20); field[23] = 90
        }
    }

    /// The UTC calendar day of `date`, `YYYY-MM-DD`.
    public static func day(_ date: Date) -> String {
        String(format(date).prefix(10))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or `+00:00`), or a bare `YYYY-MM-DD` (midnight UTC).
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[from..<(from + count)] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 10, bytes[4] == 45, bytes[7] == 45,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
        else { return nil }
        var hour = 0, minute = 0, second = 0, millis = 0
        if bytes.count > 10 {
            guard bytes[10] == 84 || bytes[10] == 116 || bytes[10] == 32, // T t space
                  let h = number(11, 2), bytes.count > 13, bytes[13] == 58, let m = number(14, 2),
                  bytes.count > 16, bytes[16] == 58, let s = number(17, 2),
                  h < 24, m < 60, s < 61
            else { return nil }
            hour = h; minute = m; second = s
            var index = 19
            if index < bytes.count, bytes[index] == 46 { // fraction
                index += 1
                var digits = 0
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                    if digits < 3 { millis = millis * 10 + Int(bytes[index] - 48) }
                    digits += 1; index += 1
                }
                guard digits > 0 else { return nil }
                for _ in digits..<3 where digits < 3 { millis *= 10 }
            }
            let zone = String(decoding: bytes[index...], as: UTF8.self)
            guard zone == "Z" || zone == "z" || zone == "+00:00" else { return nil }
        }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Double(days) * 86_400 + Double(hour * 3600 + minute * 60 + second)
        return Date(timeIntervalSince1970: seconds + Double(millis) / 1000)
    }

    /// Days since 1970-01-01 (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
