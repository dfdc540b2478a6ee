import Foundation

extension ProgressReport {
    /// The report as one self-contained HTML page (no external assets, well-formed XML):
    /// inline CSS, an SVG chart of cumulative signatures with the goal line and milestone
    /// markers, per-region bars against quorums, the last days, breakdowns and the head.
    ///
    /// Key numbers carry `data-key` attributes so tools (and tests) can read them back.
    public func renderHTML() -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <meta name="generator" content="muster"/>
            <title>\(htmlEscape(title)) — \(Number.grouped(count)) of \(Number.grouped(Int64(goal)))</title>
            <style>\(HTML.style)</style>
            </head>
            <body>
            <main>
            <header>
            <p class="kicker">\(isPublic == true ? "Public progress report" : "Progress report") · as of \(htmlEscape(HTML.readable(asOf)))</p>
            <h1>\(htmlEscape(title))</h1>\(isPublic == true ? "\n<p class=\"public\" data-key=\"public\">\(htmlEscape(Self.publicNotice))</p>" : "")
            <p class="headline"><span class="big" data-key="count" data-value="\(count)">\(Number.grouped(count))</span> of <span data-key="goal" data-value="\(goal)">\(Number.grouped(Int64(goal)))</span> signatures · <span data-key="percent" data-value="\(percent)">\(Number.percent(percent))</span></p>
            \(progressBar())
            <ul class="facts">
            <li><span class="label">Pace</span> <span data-key="pace_per_day" data-value="\(pacePerDay)">\(Number.decimal(pacePerDay))</span> a day over the last 7 days</li>

            """
        if withdrawn > 0 {
            out += "<li><span class=\"label\">Withdrawn</span> <span data-key=\"withdrawn\" data-value=\"\(withdrawn)\">\(Number.grouped(withdrawn))</span> as duplicates (not counted)</li>\n"
        }
        if pending > 0 {
            out += "<li><span class=\"label\">Pending</span> <span data-key=\"pending\" data-value=\"\(pending)\">\(Number.grouped(pending))</span> from the sign page awaiting email confirmation (not counted)</li>\n"
        }
        if held > 0 {
            out += "<li><span class=\"label\">Held</span> <span data-key=\"held\" data-value=\"\(held)\">\(Number.grouped(held))</span> from the sign page held for review (not counted)</li>\n"
        }
        if let goalReachedOn {
            out += "<li><span class=\"label\">Goal</span> reached on <span data-key=\"goal_reached_on\">\(goalReachedOn)</span></li>\n"
        } else if let projectedDate {
            out += "<li><span class=\"label\">Projection</span> goal reached on <span data-key=\"projected_date\">\(projectedDate)</span> at this pace</li>\n"
        } else {
            out += "<li><span class=\"label\">Projection</span> none without signatures this week</li>\n"
        }
        if let deadline, let daysLeft {
            out += "<li><span class=\"label\">Deadline</span> \(deadline) (\(daysLeft >= 0 ? "\(daysLeft) day\(daysLeft == 1 ? "" : "s") left" : "passed"))</li>\n"
        }
        out += "</ul>\n</header>\n"

        out += "<section>\n<h2>Signatures over time</h2>\n\(cumulativeChart())\n</section>\n"
        if !quorums.isEmpty, let quorumField {
            let met = quorums.filter(\.met).count
            out += "<section>\n<h2>Quorums by \(htmlEscape(quorumField)) <small data-key=\"quorums_met\" data-value=\"\(met)\">\(met) of \(quorums.count) met</small></h2>\n\(quorumChart())\n</section>\n"
        }
        out += "<section>\n<h2>Last \(perDay.count) days</h2>\n\(dayChart())\n</section>\n"
        if !bursts.isEmpty {
            out += "<section>\n<h2>Unusual bursts <small>\(Self.burstThreshold) or more signatures an hour</small></h2>\n<ul>\n"
            for burst in bursts {
                out += "<li data-key=\"burst\" data-value=\"\(burst.count)\">\(htmlEscape(Self.burstLine(burst)))</li>\n"
            }
            out += "</ul>\n</section>\n"
        }
        if !milestones.isEmpty {
            out += "<section>\n<h2>Milestones</h2>\n<table>\n<thead><tr><th></th><th class=\"n\">at</th><th>label</th><th>reached</th></tr></thead>\n<tbody>\n"
            for milestone in milestones {
                out += "<tr class=\"\(milestone.reached ? "met" : "open")\"><td>\(milestone.reached ? "✓" : "·")</td><td class=\"n\" data-key=\"milestone\" data-value=\"\(milestone.at)\">\(Number.grouped(Int64(milestone.at)))</td><td>\(htmlEscape(milestone.label ?? ""))</td><td>\(milestone.reachedOn ?? "")</td></tr>\n"
            }
            out += "</tbody>\n</table>\n</section>\n"
        }
        out += "<section class=\"grid\">\n"
        for (heading, rows, _) in breakdowns where !rows.isEmpty {
            out += "<div>\n<h2>\(htmlEscape(heading))</h2>\n<table>\n<tbody>\n"
            let top = rows.map(\.count).max() ?? 0
            for row in rows {
                let width = top == 0 ? 0 : Double(row.count) / Double(top) * 100
                out += "<tr><td>\(htmlEscape(Self.shown(row.value)))</td><td class=\"n\">\(Number.grouped(row.count))</td><td class=\"barcell\"><span class=\"bar\" style=\"width:\(HTML.number(width))%\"></span></td></tr>\n"
            }
            out += "</tbody>\n</table>\n</div>\n"
        }
        out += "</section>\n"
        if let mail, !mail.isEmpty {
            out += "<section>\n<h2>Mail</h2>\n<table>\n<thead><tr><th>template</th><th class=\"n\">sent</th><th class=\"n\">deferred</th><th class=\"n\">failed</th><th class=\"n\">unknown</th><th class=\"n\">queued</th><th class=\"n\">unsubscribed</th><th class=\"n\">bounced</th><th class=\"n\">complained</th></tr></thead>\n<tbody>\n"
            for row in mail {
                let cells = [row.sent, row.deferred, row.failed, row.unknown, row.queued, row.unsubscribed, row.bounced, row.complained].map { "<td class=\"n\">\(Number.grouped(Int64($0)))</td>" }.joined()
                out += "<tr><td>\(htmlEscape(row.template))</td>\(cells)</tr>\n"
            }
            out += "</tbody>\n</table>\n"
            out += "<p>Suppressed: \(Number.grouped(Int64(mail.reduce(0) { $0 + $1.bounced }))) bounced, \(Number.grouped(Int64(mail.reduce(0) { $0 + $1.complained }))) complained.</p>\n"
            out += "</section>\n"
        }
        out += """
            <footer>
            <p>Ledger head <code data-key="head">\(head)</code></p>
            <p>Anyone holding the ledger can check this report with <code>muster verify</code>. Generated \(htmlEscape(HTML.readable(generatedAt))) by muster.</p>
            </footer>
            </main>
            </body>
            </html>

            """
        return out
    }

    private func progressBar() -> String {
        let fraction = min(1, Double(count) / Double(goal))
        var marks = ""
        for milestone in milestones where milestone.at < goal {
            let x = Double(milestone.at) / Double(goal) * 100
            marks += "<rect x=\"\(HTML.number(x))%\" y=\"0\" width=\"2\" height=\"14\" class=\"tick\"/>"
        }
        return "<svg class=\"progress\" width=\"100%\" height=\"14\" role=\"img\" aria-label=\"\(Number.percent(percent)) of the goal\"><rect x=\"0\" y=\"0\" width=\"100%\" height=\"14\" rx=\"7\" class=\"track\"/><rect x=\"0\" y=\"0\" width=\"\(HTML.number(fraction * 100))%\" height=\"14\" rx=\"7\" class=\"fill\"/>\(marks)</svg>"
    }

    /// Cumulative signatures per day, with the goal as a dashed line and milestones marked.
    private func cumulativeChart() -> String {
        let width = 760.0, height = 300.0
        let left = 56.0, right = 16.0, top = 16.0, bottom = 36.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        guard !daily.isEmpty else {
            return "<p class=\"empty\">No signatures yet.</p>"
        }
        var totals: [Int64] = []
        var running: Int64 = 0
        for day in daily { running += day.count; totals.append(running) }
        let yMax = Double(max(Int64(goal), running)) * 1.08
        func x(_ index: Int) -> Double { daily.count == 1 ? left + plotWidth / 2 : left + plotWidth * Double(index) / Double(daily.count - 1) }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - value / yMax) }
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"cumulative signatures from \(daily.first!.date) to \(daily.last!.date)\">\n"
        // Grid and y labels.
        for step in HTML.ticks(upTo: yMax) {
            let yy = HTML.number(y(step))
            svg += "<line x1=\"\(HTML.number(left))\" x2=\"\(HTML.number(width - right))\" y1=\"\(yy)\" y2=\"\(yy)\" class=\"gridline\"/>"
            svg += "<text x=\"\(HTML.number(left - 8))\" y=\"\(yy)\" class=\"ylabel\" dy=\"4\">\(Number.grouped(Int64(step)))</text>\n"
        }
        // x labels: first, last and a few between.
        let labelCount = min(daily.count, 6)
        var labelled = Set<Int>()
        for index in 0..<labelCount {
            let dayIndex = labelCount == 1 ? 0 : Int((Double(index) / Double(labelCount - 1) * Double(daily.count - 1)).rounded())
            guard labelled.insert(dayIndex).inserted else { continue }
            let anchor = daily.count == 1 ? "" : dayIndex == 0 ? " style=\"text-anchor:start\"" : dayIndex == daily.count - 1 ? " style=\"text-anchor:end\"" : ""
            svg += "<text x=\"\(HTML.number(x(dayIndex)))\" y=\"\(HTML.number(height - 12))\" class=\"xlabel\"\(anchor)>\(HTML.shortDate(daily[dayIndex].date))</text>\n"
        }
        // Milestones below the goal: dotted lines with labels, a dot where crossed.
        for milestone in milestones where milestone.at < goal {
            let yy = HTML.number(y(Double(milestone.at)))
            svg += "<line x1=\"\(HTML.number(left))\" x2=\"\(HTML.number(width - right))\" y1=\"\(yy)\" y2=\"\(yy)\" class=\"milestone\"/>"
            svg += "<text x=\"\(HTML.number(left + 6))\" y=\"\(yy)\" dy=\"-4\" class=\"mlabel\">\(Number.grouped(Int64(milestone.at)))\(milestone.label.map { " · " + htmlEscape($0) } ?? "")</text>\n"
            if let on = milestone.reachedOn, let index = daily.firstIndex(where: { $0.date == on }) {
                svg += "<circle cx=\"\(HTML.number(x(index)))\" cy=\"\(yy)\" r=\"5\" class=\"reached\"><title>\(Number.grouped(Int64(milestone.at))) reached \(on)</title></circle>\n"
            }
        }
        // Goal line.
        let goalY = HTML.number(y(Double(goal)))
        svg += "<line x1=\"\(HTML.number(left))\" x2=\"\(HTML.number(width - right))\" y1=\"\(goalY)\" y2=\"\(goalY)\" class=\"goal\"/>"
        svg += "<text x=\"\(HTML.number(width - right))\" y=\"\(goalY)\" dy=\"-6\" class=\"glabel\">goal \(Number.grouped(Int64(goal)))</text>\n"
        // Area and line.
        var points = ""
        for (index, total) in totals.enumerated() { points += "\(HTML.number(x(index))),\(HTML.number(y(Double(total)))) " }
        let baseline = HTML.number(y(0))
        svg += "<polygon points=\"\(HTML.number(x(0))),\(baseline) \(points)\(HTML.number(x(daily.count - 1))),\(baseline)\" class=\"area\"/>\n"
        svg += "<polyline points=\"\(points.trimmingTrailingSpaces())\" class=\"line\"/>\n"
        svg += "<circle cx=\"\(HTML.number(x(daily.count - 1)))\" cy=\"\(HTML.number(y(Double(running))))\" r=\"4.5\" class=\"now\"><title>\(Number.grouped(running)) on \(daily.last!.date)</title></circle>\n"
        svg += "</svg>"
        return svg
    }

    /// One bar per quorum value, with its minimum marked.
    private func quorumChart() -> String {
        let rowHeight = 34.0, labelWidth = 130.0, width = 760.0, right = 90.0
        let scaleMax = Double(quorums.map { max($0.count, Int64($0.minimum)) }.max() ?? 1) * 1.1
        let plot = width - labelWidth - right
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(rowHeight * Double(quorums.count) + 10))\" role=\"img\" aria-label=\"signatures per \(htmlEscape(quorumField ?? "")) against quorums\">\n"
        for (index, status) in quorums.enumerated() {
            let yy = 6 + rowHeight * Double(index)
            let barWidth = Double(status.count) / scaleMax * plot
            let minimumX = labelWidth + Double(status.minimum) / scaleMax * plot
            svg += "<g data-key=\"quorum\" data-value=\"\(htmlEscape(status.value))\" data-count=\"\(status.count)\" data-minimum=\"\(status.minimum)\" data-met=\"\(status.met)\">"
            svg += "<text x=\"\(HTML.number(labelWidth - 10))\" y=\"\(HTML.number(yy + 17))\" class=\"ylabel\">\(htmlEscape(status.value))</text>"
            svg += "<rect x=\"\(HTML.number(labelWidth))\" y=\"\(HTML.number(yy + 3))\" width=\"\(HTML.number(plot))\" height=\"20\" rx=\"4\" class=\"track\"/>"
            svg += "<rect x=\"\(HTML.number(labelWidth))\" y=\"\(HTML.number(yy + 3))\" width=\"\(HTML.number(max(barWidth, 0)))\" height=\"20\" rx=\"4\" class=\"\(status.met ? "met" : "short")\"/>"
            svg += "<line x1=\"\(HTML.number(minimumX))\" x2=\"\(HTML.number(minimumX))\" y1=\"\(HTML.number(yy))\" y2=\"\(HTML.number(yy + 26))\" class=\"minimum\"/>"
            svg += "<text x=\"\(HTML.number(labelWidth + plot + 10))\" y=\"\(HTML.number(yy + 17))\" class=\"qlabel\">\(Number.grouped(status.count)) / \(Number.grouped(Int64(status.minimum))) \(status.met ? "✓" : "✗")</text>"
            svg += "</g>\n"
        }
        svg += "</svg>"
        return svg
    }

    /// Signatures per day for the last days, as columns.
    private func dayChart() -> String {
        let width = 760.0, height = 160.0, bottom = 26.0, top = 18.0
        let peak = Double(perDay.map(\.count).max() ?? 0)
        let slot = width / Double(max(perDay.count, 1))
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"signatures per day\">\n"
        for (index, day) in perDay.enumerated() {
            let barHeight = peak == 0 ? 0 : Double(day.count) / peak * (height - bottom - top)
            let xx = Double(index) * slot + slot * 0.15
            svg += "<rect x=\"\(HTML.number(xx))\" y=\"\(HTML.number(height - bottom - barHeight))\" width=\"\(HTML.number(slot * 0.7))\" height=\"\(HTML.number(barHeight))\" rx=\"3\" class=\"day\" data-key=\"day\" data-value=\"\(day.date)\" data-count=\"\(day.count)\"><title>\(day.date): \(Number.grouped(day.count))</title></rect>"
            if day.count > 0 {
                svg += "<text x=\"\(HTML.number(xx + slot * 0.35))\" y=\"\(HTML.number(height - bottom - barHeight - 4))\" class=\"vlabel\">\(Number.grouped(day.count))</text>"
            }
            svg += "<text x=\"\(HTML.number(xx + slot * 0.35))\" y=\"\(HTML.number(height - 8))\" class=\"xlabel\">\(HTML.shortDate(day.date))</text>\n"
        }
        svg += "</svg>"
        return svg
    }
}

/// Small helpers for writing HTML by hand.
enum HTML {
    /// A coordinate with at most one decimal, locale-free.
    static func number(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(format: "%.1f", rounded)
    }

    /// "2026-11-05" → "5 Nov".
    static func shortDate(_ day: String) -> String {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let parts = day.split(separator: "-")
        guard parts.count == 3, let month = Int(parts[1]), let date = Int(parts[2]), (1...12).contains(month) else { return day }
        return "\(date) \(months[month - 1])"
    }

    /// "2026-11-26T12:00:00.000Z" → "2026-11-26 12:00 UTC".
    static func readable(_ instant: String) -> String {
        guard instant.count >= 16 else { return instant }
        return String(instant.prefix(10)) + " " + String(instant.dropFirst(11).prefix(5)) + " UTC"
    }

    /// Round grid steps from 0 to `maximum`.
    static func ticks(upTo maximum: Double) -> [Double] {
        guard maximum > 0 else { return [0] }
        let rough = maximum / 5
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? rough
        return stride(from: 0, through: maximum, by: step).map { $0 }
    }

    static let style = """
        :root{--ink:#1d2433;--muted:#667085;--line:#e4e7ec;--bg:#f7f7f4;--card:#fff;--accent:#0f766e;--accent-soft:#ccebe7;--warn:#c2410c;--goal:#b42318}
        *{box-sizing:border-box}
        body{margin:0;background:var(--bg);color:var(--ink);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
        main{max-width:860px;margin:0 auto;padding:32px 20px 48px}
        header,section,footer{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:22px 26px;margin:0 0 18px}
        .kicker{margin:0;color:var(--muted);font-size:13px;letter-spacing:.06em;text-transform:uppercase}
        h1{margin:4px 0 10px;font-size:30px;line-height:1.2}
        h2{margin:0 0 12px;font-size:18px}
        h2 small{font-weight:500;color:var(--muted);font-size:14px;margin-left:8px}
        .headline{margin:0 0 12px;font-size:18px;color:var(--muted)}
        .big{font-size:40px;font-weight:700;color:var(--ink);letter-spacing:-.02em}
        .facts{list-style:none;padding:0;margin:14px 0 0;display:flex;flex-wrap:wrap;gap:8px 28px;font-size:15px}
        .label{display:inline-block;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.06em;margin-right:4px}
        svg.progress .track,svg .track{fill:#eef0f3}
        svg.progress .fill{fill:var(--accent)}
        svg.progress .tick{fill:#fff;opacity:.9}
        svg.chart{width:100%;height:auto;display:block}
        .gridline{stroke:var(--line);stroke-width:1}
        .ylabel{fill:var(--muted);font-size:12px;text-anchor:end}
        .xlabel{fill:var(--muted);font-size:12px;text-anchor:middle}
        .vlabel{fill:var(--ink);font-size:11px;text-anchor:middle}
        .area{fill:var(--accent-soft);opacity:.7}
        .line{fill:none;stroke:var(--accent);stroke-width:2.5;stroke-linejoin:round}
        .now{fill:var(--accent);stroke:#fff;stroke-width:2}
        .goal{stroke:var(--goal);stroke-width:2;stroke-dasharray:7 5}
        .glabel{fill:var(--goal);font-size:12px;font-weight:600;text-anchor:end}
        .milestone{stroke:#98a2b3;stroke-width:1;stroke-dasharray:2 4}
        .mlabel{fill:var(--muted);font-size:11px}
        .reached{fill:#fff;stroke:var(--accent);stroke-width:2.5}
        .met{fill:var(--accent)}
        .short{fill:#f59e0b}
        .minimum{stroke:var(--ink);stroke-width:2}
        .qlabel{fill:var(--ink);font-size:13px}
        .day{fill:var(--accent)}
        table{border-collapse:collapse;width:100%;font-size:14px}
        td,th{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left}
        th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.05em}
        td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
        tr.open td{color:var(--muted)}
        tr.met td:first-child{color:var(--accent);font-weight:700}
        section.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:22px}
        .barcell{width:40%}
        .bar{display:block;height:8px;border-radius:4px;background:var(--accent);opacity:.75}
        footer{font-size:13px;color:var(--muted)}
        footer p{margin:4px 0}
        code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all;color:var(--ink)}
        .empty{color:var(--muted)}
        @media print{body{background:#fff}header,section,footer{border:none;padding:8px 0}}
        """
}
