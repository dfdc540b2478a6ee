import Foundation
import Testing
@testable import MusterKit

/// Opt-in measurement (MUSTER_PERF=1), no timed assertion: prints messages per second.
@Suite("Render throughput", .enabled(if: ProcessInfo.processInfo.environment["MUSTER_PERF"] == "1", "set MUSTER_PERF=1 to measure"))
struct RenderThroughputTests {
    @Test("renderMessage for 20,000 recipients")
    func throughput() throws {
        let t = try EmailTemplate(source: EndToEndMailTests.template, file: "emails/thanks.md")
        let campaign = CampaignMailInfo(slug: "fair-rates", title: "Fair rates for translators", count: 420, goal: 1000,
                                        sender: try MailAddress(parsing: "Fair Rates Collective <hello@fairrates.example>"))
        let settings = MessageSettings(unsubscribeMailbox: try MailAddress(address: "unsubscribe@fairrates.example"))
        let recipients = (0..<20_000).map { i in
            MailRecipient(name: "Signer Number\(i) Zoë", email: "signer\(i)@example.org", fields: ["region": i % 2 == 0 ? "Lyon" : "Paris"],
                          unsubscribeURL: "https://fairrates.example/u?t=\(i)")
        }
        let clock = ContinuousClock()
        var bytes = 0
        let elapsed = try clock.measure {
            for r in recipients {
                bytes += try renderMessage(template: t, recipient: r, campaign: campaign, settings: settings).bytes.count
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("PERF renderMessage: \(Int(Double(recipients.count) / seconds)) messages/s, \(bytes / recipients.count) bytes each")
    }
}
