import Foundation

/// A campaign's progress: the numbers behind `muster report` and `muster list`.
public struct ProgressReport: Sendable, Codable, Equatable {
    /// A milestone and, once reached, the UTC day it was reached.
    public struct MilestoneStatus: Sendable, Codable, Equatable {
        public let at: Int
        public let label: String?
        public let reached: Bool
        public let reachedOn: String?

        enum CodingKeys: String, CodingKey {
            case at, label, reached
            case reachedOn = "reached_on"
        }
    }

    /// Signatures made on one UTC day.
    public struct Day: Sendable, Codable, Equatable {
        public let date: String
        public let count: Int64
    }

    public let campaign: String
    public let title: String
    public let count: Int64
    public let goal: Int
    /// count / goal × 100, rounded to one decimal.
    public let percent: Double
    public let deadline: String?
    /// Whole days from today to the deadline (negative once past).
    public let daysLeft: Int?
    public let milestones: [MilestoneStatus]
    /// The last 14 UTC days, oldest first, today last.
    public let perDay: [Day]
    /// The ledger's head hash: quote it to let others check this report later.
    public let head: String
    /// When the report was made (UTC).
    public let generatedAt: String

    enum CodingKeys: String, CodingKey {
        case campaign, title, count, goal, percent, deadline
        case daysLeft = "days_left"
        case milestones
        case perDay = "per_day"
        case head
        case generatedAt = "generated_at"
    }

    /// Gathers the report for `campaign` from its ledger (an absent ledger counts as empty).
    public static func make(campaign: Campaign, manifest: Manifest, clock: Clock, days: Int = 14) throws -> ProgressReport {
        let now = clock.now()
        let today = Timestamp.day(now)
        let todayStart = Timestamp.parse(today)!
        let dayList = (0..<days).reversed().map { Timestamp.day(todayStart.addingTimeInterval(-86_400 * Double($0))) }

        var count: Int64 = 0
        var perDay: [String: Int64] = [:]
        var reachedAt: [Int: String] = [:]
        var head = Ledger.genesis
        if let ledger = try Ledger.open(campaign.ledgerURL, create: false) {
            try ledger.snapshot {
                count = try ledger.signatureCount()
                head = try ledger.headHash()
                perDay = try ledger.signaturesPerDay(from: dayList.first!, through: dayList.last!)
                for milestone in manifest.milestones where Int64(milestone.at) <= count {
                    reachedAt[milestone.at] = try ledger.timeOfSignature(number: milestone.at)
                }
            }
        }
        let percent = (Double(count) / Double(manifest.goal) * 1000).rounded() / 10
        var daysLeft: Int?
        if let deadline = manifest.deadline, let end = Timestamp.parse(deadline) {
            daysLeft = Int(((end.timeIntervalSince1970 - todayStart.timeIntervalSince1970) / 86_400).rounded())
        }
        return ProgressReport(
            campaign: campaign.slug,
            title: manifest.title,
            count: count,
            goal: manifest.goal,
            percent: percent,
            deadline: manifest.deadline,
            daysLeft: daysLeft,
            milestones: manifest.milestones.map { milestone in
                let at = reachedAt[milestone.at]
                return MilestoneStatus(at: milestone.at, label: milestone.label, reached: at != nil, reachedOn: at.map { String($0.prefix(10)) })
            },
            perDay: dayList.map { Day(date: $0, count: perDay[$0] ?? 0) },
            head: head,
            generatedAt: Timestamp.format(now))
    }
}

extension ProgressReport {
    /// The plain-text report for a terminal (`styled` adds colour).
    public func renderText(styled: Bool) -> String {
        let style = TextStyle(enabled: styled)
        var out = ""
        out += style.bold(title) + "\n"
        let bar = TextBar.horizontal(fraction: Double(count) / Double(goal), width: 30)
        out += "  \(Number.grouped(count)) of \(Number.grouped(Int64(goal))) signatures (\(Number.percent(percent)))  \(style.green(bar))\n"
        if let deadline {
            if let daysLeft {
                let when = daysLeft > 0 ? "\(daysLeft) day\(daysLeft == 1 ? "" : "s") left" : daysLeft == 0 ? "today" : "passed \(-daysLeft) day\(daysLeft == -1 ? "" : "s") ago"
                out += "  deadline \(deadline) (\(when))\n"
            }
        }
        if !milestones.isEmpty {
            out += "\n" + style.bold("Milestones") + "\n"
            let width = milestones.map { Number.grouped(Int64($0.at)).count }.max() ?? 0
            for milestone in milestones {
                let mark = milestone.reached ? style.green("✓") : style.dim("·")
                let number = String(repeating: " ", count: width - Number.grouped(Int64(milestone.at)).count) + Number.grouped(Int64(milestone.at))
                var line = "  \(mark) \(number)"
                if let label = milestone.label { line += "  \(label)" }
                if let on = milestone.reachedOn { line += style.dim("  reached \(on)") }
                out += line + "\n"
            }
        }
        out += "\n" + style.bold("Last \(perDay.count) days") + "\n"
        let peak = perDay.map(\.count).max() ?? 0
        let countWidth = perDay.map { Number.grouped($0.count).count }.max() ?? 1
        for day in perDay {
            let bar = peak == 0 ? "" : TextBar.blocks(Double(day.count) / Double(peak), width: 30)
            let number = String(repeating: " ", count: countWidth - Number.grouped(day.count).count) + Number.grouped(day.count)
            out += "  \(day.date)  \(number)" + (bar.isEmpty ? "" : "  \(style.green(bar))") + "\n"
        }
        out += "\n" + style.dim("ledger head \(head)") + "\n"
        return out
    }
}

/// ANSI styling, off unless writing to a terminal without NO_COLOR.
public struct TextStyle: Sendable {
    public let enabled: Bool
    public init(enabled: Bool) { self.enabled = enabled }

    func wrap(_ text: String, _ code: String) -> String {
        enabled && !text.isEmpty ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }
    public func bold(_ text: String) -> String { wrap(text, "1") }
    public func dim(_ text: String) -> String { wrap(text, "2") }
    public func green(_ text: String) -> String { wrap(text, "32") }
    public func red(_ text: String) -> String { wrap(text, "31") }
    public func yellow(_ text: String) -> String { wrap(text, "33") }
}

/// Bars drawn with block characters.
public enum TextBar {
    private static let eighths = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]

    /// A bar of `width` cells filled to `fraction` (clamped to 0…1), on a light track.
    public static func horizontal(fraction: Double, width: Int) -> String {
        let filled = blocks(fraction, width: width)
        let used = Int((min(max(fraction, 0), 1) * Double(width)).rounded(.up))
        return filled + String(repeating: "░", count: max(0, width - used))
    }

    /// Just the filled part, in eighth-of-a-cell steps.
    public static func blocks(_ fraction: Double, width: Int) -> String {
        let clamped = min(max(fraction, 0), 1)
        let total = Int((clamped * Double(width * 8)).rounded())
        var bar = String(repeating: "█", count: total / 8) + eighths[total % 8]
        if bar.isEmpty && clamped > 0 { bar = "▏" }
        return bar
    }
}

/// Number formatting that does not depend on the machine's locale.
public enum Number {
    /// 12345 → "12,345".
    public static func grouped(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return value < 0 ? "-" + out : out
    }

    /// 21.2 → "21.2%", 50.0 → "50%".
    public static func percent(_ value: Double) -> String {
        value == value.rounded() ? "\(Int64(value))%" : String(format: "%.1f%%", value)
    }
}
