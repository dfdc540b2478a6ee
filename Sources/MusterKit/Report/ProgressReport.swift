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

    /// Signatures sharing one value (a source, a collector, a field's value).
    public struct Share: Sendable, Codable, Equatable {
        /// The value; empty when signatures have none.
        public let value: String
        public let count: Int64
    }

    /// The breakdown of one non-personal manifest field.
    public struct FieldBreakdown: Sendable, Codable, Equatable {
        public let field: String
        public let values: [Share]
    }

    /// One per-region minimum (manifest `quorums`) and whether it is met.
    public struct QuorumStatus: Sendable, Codable, Equatable {
        public let value: String
        public let minimum: Int
        public let count: Int64
        public let met: Bool
    }

    /// One email template's outbox, for the report's mail section.
    public struct MailStatus: Sendable, Codable, Equatable {
        public let template: String
        public let queued: Int
        public let sent: Int
        public let deferred: Int
        public let failed: Int
        public let unknown: Int
        /// Recipients of this template who have unsubscribed since.
        public let unsubscribed: Int
        /// Addresses suppressed for a bounce (hard, repeated soft, or the relay's 5xx) that
        /// this template's mail brought back, and for a complaint about it (Inbox/Suppression.swift).
        public var bounced: Int = 0
        public var complained: Int = 0
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
    /// The moment the report describes (`--at`), or the time it was made.
    public let asOf: String
    /// Signatures per day over the last 7 days, rounded to one decimal.
    public let pacePerDay: Double
    /// The day the goal is reached at that pace (nil when reached, or no pace).
    public let projectedDate: String?
    /// The day the goal was reached, once it is.
    public let goalReachedOn: String?
    /// Every day from the first signature to the report's day, oldest first.
    public let daily: [Day]
    /// Signatures per source; nil in the public form.
    public let bySource: [Share]?
    /// Signatures per collector (volunteers' names); nil in the public form.
    public let byCollector: [Share]?
    /// One breakdown per non-personal manifest field, in manifest order (in the public
    /// form, only fields with options and the quorum field).
    public let byField: [FieldBreakdown]
    /// The field the quorums count (e.g. region), when the manifest has quorums.
    public let quorumField: String?
    public let quorums: [QuorumStatus]
    /// Per email template: queued, sent, deferred, failed, unknown, unsubscribed (now, even with `--at`);
    /// nil in the public form.
    public let mail: [MailStatus]?
    /// True for the public form (`report --public`); absent from the full report's JSON.
    public var isPublic: Bool? = nil
    /// Signatures withdrawn as duplicates (`muster dedupe --withdraw`); not in `count`.
    public var withdrawn: Int64 = 0
    /// Signatures from the sign page waiting for their email confirmation, now (even with
    /// `--at`); not in `count` (docs/serve.md).
    public var pending: Int64 = 0
    /// Forms from the sign page held over its `web:` limits, waiting for `muster review`,
    /// now (even with `--at`); not in `count`.
    public var held: Int64 = 0
    /// UTC hours in which at least `burstThreshold` signatures that count were made (on
    /// this petition; by the time they were confirmed, for the sign page's), oldest first.
    public var bursts: [Burst] = []

    /// An hour of unusually many signatures: UK Parliament e-petitions logs any source
    /// with 100 or more signatures an hour on one petition.
    public static let burstThreshold: Int64 = 100

    public struct Burst: Sendable, Codable, Equatable {
        /// The hour's start, `YYYY-MM-DDTHH:00Z`.
        public let hour: String
        public let count: Int64
        /// Of them, from the sign page (source `web`).
        public let web: Int64
    }

    enum CodingKeys: String, CodingKey {
        case campaign, title, count, withdrawn, pending, held, bursts, goal, percent, deadline
        case daysLeft = "days_left"
        case milestones
        case perDay = "per_day"
        case head
        case generatedAt = "generated_at"
        case asOf = "as_of"
        case pacePerDay = "pace_per_day"
        case projectedDate = "projected_date"
        case goalReachedOn = "goal_reached_on"
        case daily
        case bySource = "by_source"
        case byCollector = "by_collector"
        case byField = "by_field"
        case quorumField = "quorum_field"
        case quorums
        case mail
        case isPublic = "public"
    }

    /// Gathers the report for `campaign` from its ledger (an absent ledger counts as empty).
    ///
    /// With `asOf`, only signatures made up to that instant count, and "today" is its day.
    public static func make(campaign: Campaign, manifest: Manifest, clock: Clock, days: Int = 14, asOf: Date? = nil) throws -> ProgressReport {
        let now = clock.now()
        let reference = asOf ?? now
        let today = Timestamp.day(reference)
        let todayStart = Timestamp.parse(today)!
        func day(_ offset: Int) -> String { Timestamp.day(todayStart.addingTimeInterval(86_400 * Double(offset))) }
        let dayList = (0..<days).reversed().map { day(-$0) }

        var tally = SignatureTally()
        var mail: [MailStatus] = []
        var pending: Int64 = 0, held: Int64 = 0
        var bursts: [Burst] = []
        if let ledger = try Ledger.open(campaign.ledgerURL, create: false) {
            tally = try ledger.tally(upTo: asOf.map(Timestamp.format))
            mail = try ledger.mailStatus()
            pending = try ledger.pendingCount(at: now)
            held = try ledger.heldCount(at: now)
            let webByHour = tally.bursts.isEmpty ? [:] : try ledger.webSignaturesPerHour(upTo: asOf.map(Timestamp.format))
            bursts = tally.bursts.map { Burst(hour: $0.hour + ":00Z", count: $0.count, web: webByHour[$0.hour] ?? 0) }
        }
        let count = tally.count
        let perDayTable = Dictionary(tally.daily.map { ($0.day, $0.count) }, uniquingKeysWith: +)

        // Milestones and the goal: the day the running total crossed each.
        var reachedOn: [Int: String] = [:]
        var running: Int64 = 0
        let thresholds = (manifest.milestones.map(\.at) + [manifest.goal]).sorted()
        var next = 0
        for (date, dayCount) in tally.daily {
            running += dayCount
            while next < thresholds.count && Int64(thresholds[next]) <= running {
                reachedOn[thresholds[next]] = date
                next += 1
            }
        }

        var daily: [Day] = []
        if let first = tally.daily.first?.day, let firstDate = Timestamp.parse(first) {
            var cursor = firstDate
            while Timestamp.day(cursor) <= today {
                let date = Timestamp.day(cursor)
                daily.append(Day(date: date, count: perDayTable[date] ?? 0))
                cursor = cursor.addingTimeInterval(86_400)
            }
        }
        let lastWeek = (0..<7).reduce(Int64(0)) { $0 + (perDayTable[day(-$1)] ?? 0) }
        let pace = (Double(lastWeek) / 7 * 10).rounded() / 10
        var projected: String?
        if count < manifest.goal, lastWeek > 0 {
            let daysNeeded = Int((Double(Int64(manifest.goal) - count) / (Double(lastWeek) / 7)).rounded(.up))
            projected = day(daysNeeded)
        }

        // Breakdowns from the distinct non-personal bodies.
        var sources: [String: Int64] = [:], collectors: [String: Int64] = [:]
        let publicFields = manifest.fields.filter { !$0.personal }.map(\.name)
        var fieldCounts: [String: [String: Int64]] = [:]
        for (body, bodyCount) in tally.bodies {
            let object = Ledger.jsonObject(body)
            sources[object["source"] as? String ?? "", default: 0] += bodyCount
            collectors[object["collector"] as? String ?? "", default: 0] += bodyCount
            let fields = object["fields"] as? [String: String] ?? [:]
            for field in publicFields { fieldCounts[field, default: [:]][fields[field] ?? "", default: 0] += bodyCount }
        }
        func shares(_ table: [String: Int64]) -> [Share] {
            table.map { Share(value: $0.key, count: $0.value) }.sorted { $0.count > $1.count || ($0.count == $1.count && $0.value < $1.value) }
        }
        var quorums: [QuorumStatus] = []
        if let quorum = manifest.quorums {
            let counts = fieldCounts[quorum.field] ?? [:]
            quorums = quorum.minimums.map { QuorumStatus(value: $0.key, minimum: $0.minimum, count: counts[$0.key] ?? 0, met: (counts[$0.key] ?? 0) >= Int64($0.minimum)) }
        }

        let percent = (Double(count) / Double(manifest.goal) * 1000).rounded() / 10
        var daysLeft: Int?
        if let deadline = manifest.deadline, let end = Timestamp.parse(deadline) {
            daysLeft = Int(((end.timeIntervalSince1970 - todayStart.timeIntervalSince1970) / 86_400).rounded())
        }
        var report = ProgressReport(
            campaign: campaign.slug,
            title: manifest.title,
            count: count,
            goal: manifest.goal,
            percent: percent,
            deadline: manifest.deadline,
            daysLeft: daysLeft,
            milestones: manifest.milestones.map { milestone in
                let on = reachedOn[milestone.at]
                return MilestoneStatus(at: milestone.at, label: milestone.label, reached: on != nil, reachedOn: on)
            },
            perDay: dayList.map { Day(date: $0, count: perDayTable[$0] ?? 0) },
            head: tally.head,
            generatedAt: Timestamp.format(now),
            asOf: Timestamp.format(reference),
            pacePerDay: pace,
            projectedDate: projected,
            goalReachedOn: reachedOn[manifest.goal],
            daily: daily,
            bySource: shares(sources),
            byCollector: shares(collectors),
            byField: publicFields.map { FieldBreakdown(field: $0, values: shares(fieldCounts[$0] ?? [:])) },
            quorumField: manifest.quorums?.field,
            quorums: quorums,
            mail: mail)
        report.withdrawn = tally.withdrawn
        report.pending = pending
        report.held = held
        report.bursts = bursts
        return report
    }
}

extension ProgressReport {
    /// The line that marks the public form in every format.
    public static let publicNotice = "Public summary: counts only. No names, email addresses, comments, collectors, sources or free-text answers."

    /// The form of this report that can be published or forwarded (`report --public`):
    /// the count, goal, deadline, pace, milestones, signatures per day, the ledger head,
    /// quorums, and the breakdowns of the manifest's fields that have fixed options or
    /// are the quorum field. Left out: the breakdowns by collector (volunteers' names)
    /// and by source (free text typed by organisers), free-text fields even when not
    /// personal (anyone can type a name into them), and the mail section.
    public func publicForm(manifest: Manifest) -> ProgressReport {
        let categories = Set(manifest.fields.filter { !$0.personal && ($0.options != nil || $0.name == manifest.quorums?.field) }.map(\.name))
        var form = ProgressReport(
            campaign: campaign, title: title, count: count, goal: goal, percent: percent, deadline: deadline,
            daysLeft: daysLeft, milestones: milestones, perDay: perDay, head: head, generatedAt: generatedAt,
            asOf: asOf, pacePerDay: pacePerDay, projectedDate: projectedDate, goalReachedOn: goalReachedOn,
            daily: daily, bySource: nil, byCollector: nil,
            byField: byField.filter { categories.contains($0.field) },
            quorumField: quorumField, quorums: quorums, mail: nil, isPublic: true)
        form.withdrawn = withdrawn
        form.pending = pending
        form.held = held
        form.bursts = bursts
        return form
    }

    /// "4 signatures from the sign page await email confirmation (not counted)", or nil.
    var pendingSentence: String? {
        pending > 0 ? "\(Number.grouped(pending)) signature\(pending == 1 ? "" : "s") from the sign page await\(pending == 1 ? "s" : "") email confirmation (not counted)" : nil
    }

    /// "2 forms from the sign page held for review (not counted)", or nil.
    var heldSentence: String? {
        held > 0 ? "\(Number.grouped(held)) form\(held == 1 ? "" : "s") from the sign page held for review (not counted)" : nil
    }

    /// "2026-12-03 04:00–05:00 UTC: 130 signatures (120 from the sign page)".
    static func burstLine(_ burst: Burst) -> String {
        let day = burst.hour.prefix(10), hour = Int(burst.hour.dropFirst(11).prefix(2)) ?? 0
        let end = String(format: "%02d:00", (hour + 1) % 24)
        return "\(day) \(String(format: "%02d:00", hour))–\(end) UTC: \(Number.grouped(burst.count)) signatures (\(Number.grouped(burst.web)) from the sign page)"
    }

    /// "3 signatures withdrawn as duplicates (not counted)", or nil when none were.
    var withdrawnSentence: String? {
        withdrawn > 0 ? "\(Number.grouped(withdrawn)) signature\(withdrawn == 1 ? "" : "s") withdrawn as duplicates (not counted)" : nil
    }

    /// "12.3 a day over the last 7 days; the goal on 2027-01-15 at this pace".
    var paceSentence: String {
        var text = "\(Number.decimal(pacePerDay)) a day over the last 7 days"
        if let goalReachedOn {
            text += "; goal reached on \(goalReachedOn)"
        } else if let projectedDate {
            text += "; at this pace the goal is reached on \(projectedDate)"
        } else if count < Int64(goal) {
            text += "; no projection without signatures this week"
        }
        return text
    }

    /// The label shown for an empty breakdown value.
    static func shown(_ value: String) -> String { value.isEmpty ? "(none)" : value }

    /// The breakdowns in display order: title, rows, and the quorum of each row if any.
    var breakdowns: [(title: String, rows: [Share], quorum: [String: QuorumStatus])] {
        var out: [(String, [Share], [String: QuorumStatus])] = []
        if let bySource { out.append(("By source", bySource, [:])) }
        if let byCollector { out.append(("By collector", byCollector, [:])) }
        for breakdown in byField {
            var quorum: [String: QuorumStatus] = [:]
            var rows = breakdown.values
            if breakdown.field == quorumField {
                for status in quorums {
                    quorum[status.value] = status
                    if !rows.contains(where: { $0.value == status.value }) { rows.append(Share(value: status.value, count: 0)) }
                }
            }
            out.append(("By \(breakdown.field)", rows, quorum))
        }
        return out
    }

    /// The plain-text report for a terminal (`styled` adds colour).
    public func renderText(styled: Bool) -> String {
        let style = TextStyle(enabled: styled)
        var out = ""
        out += style.bold(title) + "\n"
        if isPublic == true { out += "  \(Self.publicNotice)\n" }
        let bar = TextBar.horizontal(fraction: Double(count) / Double(goal), width: 30)
        out += "  \(Number.grouped(count)) of \(Number.grouped(Int64(goal))) signatures (\(Number.percent(percent)))  \(style.green(bar))\n"
        if let deadline {
            if let daysLeft {
                let when = daysLeft > 0 ? "\(daysLeft) day\(daysLeft == 1 ? "" : "s") left" : daysLeft == 0 ? "today" : "passed \(-daysLeft) day\(daysLeft == -1 ? "" : "s") ago"
                out += "  deadline \(deadline) (\(when))\n"
            }
        }
        out += "  pace \(paceSentence)\n"
        if let withdrawnSentence { out += "  \(withdrawnSentence)\n" }
        if let pendingSentence { out += "  \(pendingSentence)\n" }
        if let heldSentence { out += "  \(heldSentence)\n" }
        if asOf != generatedAt { out += style.dim("  as of \(asOf)") + "\n" }
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
        if !bursts.isEmpty {
            out += "\n" + style.bold("Unusual bursts (\(Self.burstThreshold) or more signatures an hour)") + "\n"
            for burst in bursts { out += "  \(Self.burstLine(burst))\n" }
        }
        for (heading, rows, quorum) in breakdowns where !rows.isEmpty {
            out += "\n" + style.bold(heading) + "\n"
            let labelWidth = rows.map { Self.shown($0.value).count }.max() ?? 0
            let numberWidth = rows.map { Number.grouped($0.count).count }.max() ?? 0
            let top = rows.map(\.count).max() ?? 0
            for row in rows {
                let label = Self.shown(row.value)
                let number = Number.grouped(row.count)
                var line = "  " + label + String(repeating: " ", count: labelWidth - label.count)
                    + "  " + String(repeating: " ", count: numberWidth - number.count) + number
                let bar = top == 0 ? "" : TextBar.blocks(Double(row.count) / Double(top), width: 24)
                line += "  " + style.green(bar) + String(repeating: " ", count: max(0, 24 - bar.count))
                if let status = quorum[row.value] {
                    line += status.met ? style.green("  ✓ quorum \(Number.grouped(Int64(status.minimum))) met")
                                       : style.red("  ✗ quorum \(Number.grouped(Int64(status.minimum))) not met (\(Number.grouped(Int64(status.minimum) - status.count)) to go)")
                }
                out += line.trimmingTrailingSpaces() + "\n"
            }
        }
        if !quorums.isEmpty {
            let met = quorums.filter(\.met).count
            out += "\n  quorums met: \(met) of \(quorums.count)\n"
        }
        if let mail, !mail.isEmpty {
            out += "\n" + style.bold("Mail") + "\n"
            let width = max(8, mail.map(\.template.count).max() ?? 0)
            out += "  " + "template".padding(toLength: width, withPad: " ", startingAt: 0) + "      sent  deferred    failed   unknown    queued  unsubscribed   bounced  complained\n"
            for row in mail {
                let cells = [row.sent, row.deferred, row.failed, row.unknown, row.queued].map { String(format: "%10d", $0) }.joined()
                out += "  " + row.template.padding(toLength: width, withPad: " ", startingAt: 0) + cells + String(format: "%14d%10d%12d", row.unsubscribed, row.bounced, row.complained) + "\n"
            }
            out += "  suppressed: \(mail.reduce(0) { $0 + $1.bounced }) bounced, \(mail.reduce(0) { $0 + $1.complained }) complained\n"
        }
        out += "\n" + style.dim("ledger head \(head)") + "\n"
        return out
    }

    /// The report as Markdown, for a README, an issue or a newsletter.
    public func renderMarkdown() -> String {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
        var out = "# \(cell(title))\n\n"
        if isPublic == true { out += "_\(Self.publicNotice)_\n\n" }
        out += "**\(Number.grouped(count)) of \(Number.grouped(Int64(goal))) signatures (\(Number.percent(percent)))**"
        out += " `\(TextBar.horizontal(fraction: Double(count) / Double(goal), width: 20))`\n\n"
        if let deadline, let daysLeft {
            out += "- Deadline: \(deadline) (\(daysLeft >= 0 ? "\(daysLeft) days left" : "passed"))\n"
        }
        out += "- Pace: \(paceSentence)\n"
        if let withdrawnSentence { out += "- \(withdrawnSentence)\n" }
        if let pendingSentence { out += "- \(pendingSentence)\n" }
        if let heldSentence { out += "- \(heldSentence)\n" }
        out += "- As of: \(asOf)\n\n"
        if !milestones.isEmpty {
            out += "## Milestones\n\n| | at | label | reached |\n|---|---:|---|---|\n"
            for milestone in milestones {
                out += "| \(milestone.reached ? "✓" : " ") | \(Number.grouped(Int64(milestone.at))) | \(cell(milestone.label ?? "")) | \(milestone.reachedOn ?? "") |\n"
            }
            out += "\n"
        }
        out += "## Last \(perDay.count) days\n\n| day | signatures | |\n|---|---:|---|\n"
        let peak = perDay.map(\.count).max() ?? 0
        for day in perDay {
            out += "| \(day.date) | \(Number.grouped(day.count)) | \(peak == 0 ? "" : TextBar.blocks(Double(day.count) / Double(peak), width: 20)) |\n"
        }
        if !bursts.isEmpty {
            out += "\n## Unusual bursts (\(Self.burstThreshold) or more signatures an hour)\n\n"
            for burst in bursts { out += "- \(Self.burstLine(burst))\n" }
        }
        for (heading, rows, quorum) in breakdowns where !rows.isEmpty {
            out += "\n## \(heading)\n\n"
            if quorum.isEmpty {
                out += "| value | signatures |\n|---|---:|\n"
                for row in rows { out += "| \(cell(Self.shown(row.value))) | \(Number.grouped(row.count)) |\n" }
            } else {
                out += "| value | signatures | quorum | |\n|---|---:|---:|---|\n"
                for row in rows {
                    let status = quorum[row.value]
                    out += "| \(cell(Self.shown(row.value))) | \(Number.grouped(row.count)) | \(status.map { Number.grouped(Int64($0.minimum)) } ?? "") | \(status.map { $0.met ? "✓ met" : "✗ not met" } ?? "") |\n"
                }
            }
        }
        if let mail, !mail.isEmpty {
            out += "\n## Mail\n\n| template | sent | deferred | failed | unknown | queued | unsubscribed | bounced | complained |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for row in mail {
                out += "| \(cell(row.template)) | \(row.sent) | \(row.deferred) | \(row.failed) | \(row.unknown) | \(row.queued) | \(row.unsubscribed) | \(row.bounced) | \(row.complained) |\n"
            }
            out += "\nSuppressed: \(mail.reduce(0) { $0 + $1.bounced }) bounced, \(mail.reduce(0) { $0 + $1.complained }) complained.\n"
        }
        out += "\n---\nLedger head: `\(head)`\n"
        return out
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.hasSuffix(" ") { text.removeLast() }
        return text
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
