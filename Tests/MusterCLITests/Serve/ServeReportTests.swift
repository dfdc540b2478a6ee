import Foundation
import Testing

/// Reports: the hours with unusual bursts (100 or more signatures an hour on one
/// petition, as UK Parliament e-petitions logs them), and held forms (issue 12).
@Suite struct ServeReportTests {
    @Test func hoursOfAHundredSignaturesOrMoreAreListedWithTheirWebShare() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        var csv = "signed_at,name,email,region,source\n"
        var row = 0
        func add(_ count: Int, at time: (Int) -> String, source: (Int) -> String) {
            for index in 0..<count {
                csv += "\(time(index)),Signer \(row),signer\(row)@example.org,Lyon,\(source(index))\n"
                row += 1
            }
        }
        // 99 in the 08:00 hour (one short), then 130 in the 09:00 hour, 60 of them from
        // the sign page, the last one at 09:59:59; one at 10:00:00 starts another hour.
        add(99, at: { "2026-11-05T08:\(String(format: "%02d", $0 % 60)):00Z" }, source: { _ in "web" })
        add(130, at: { $0 == 129 ? "2026-11-05T09:59:59Z" : "2026-11-05T09:\(String(format: "%02d", $0 % 59)):30Z" },
            source: { $0 < 60 ? "web" : "stall" })
        add(1, at: { _ in "2026-11-05T10:00:00Z" }, source: { _ in "web" })
        try box.write("signers.csv", csv)
        let now = ["MUSTER_NOW": "2026-11-06T12:00:00Z"]
        let imported = try box.run(["import", "signers.csv", "--json"], environment: now)
        try #require(imported.status == 0 && (try imported.json()["added"] as? Int) == 230, "\(imported)")

        let json = try box.run(["report", "--json"], environment: now).json()
        let bursts = try #require(json["bursts"] as? [[String: Any]], "\(json)")
        #expect(bursts.count == 1)
        #expect(bursts.first?["hour"] as? String == "2026-11-05T09:00Z" && bursts.first?["count"] as? Int == 130
                && bursts.first?["web"] as? Int == 60, "\(bursts)")
        #expect(json["held"] as? Int == 0)
        let sources = try #require(json["by_source"] as? [[String: Any]])
        #expect(sources.contains { $0["value"] as? String == "web" && $0["count"] as? Int == 99 + 60 + 1 })
        let text = try box.run(["report"], environment: now).stdout
        #expect(text.contains("Unusual bursts (100 or more signatures an hour)\n  2026-11-05 09:00–10:00 UTC: 130 signatures (60 from the sign page)"), "\(text)")
        let markdown = try box.run(["report", "--format", "markdown"], environment: now).stdout
        #expect(markdown.contains("- 2026-11-05 09:00–10:00 UTC: 130 signatures (60 from the sign page)"))
        let html = try box.run(["report", "--format", "html"], environment: now).stdout
        #expect(html.contains(#"<li data-key="burst" data-value="130">2026-11-05 09:00–10:00 UTC"#), "\(html)")
        // As it stood before the 09:00 hour: no burst yet.
        let before = try box.run(["report", "--json", "--at", "2026-11-05T08:59:59Z"], environment: now).json()
        #expect((before["bursts"] as? [Any])?.isEmpty == true)
    }
}
