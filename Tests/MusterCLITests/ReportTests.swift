import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// Report formats on a fixed campaign with a fixed clock, against golden files in
/// Snapshots/ (re-record with RECORD_SNAPSHOTS=1). Salts are random, so the head hash
/// is compared against `verify` and replaced by <head> in the goldens.
@Suite struct ReportTests {
    static let snapshots = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")
    static let now = ["MUSTER_NOW": "2026-11-26T12:00:00Z"]
    static let manifest = """
        title: Fair rates for translators
        goal: 40
        deadline: 2027-03-31
        milestones:
          - at: 5
            label: "First five"
          - at: 20
            label: "Open letter"
          - at: 40
        quorums:
          field: region
          minimums: { Lyon: 8, Paris: 12, Lille: 3 }
        fields:
          - name: region
            required: true
            options: [Lyon, Paris, Lille, Elsewhere]
          - name: languages
        consent:
          updates: "Keep me informed"
        """

    /// 27 invented signers over three weeks, from three sources and two volunteers.
    static func campaign() throws -> Sandbox {
        let box = try Sandbox.withCampaign(manifest: manifest)
        var csv = "signed_at,name,email,region,languages,source,collector\n"
        let regions = ["Lyon", "Paris", "Paris", "Lille", "Lyon", "Elsewhere", "Paris"]
        let sources = ["stall", "web form", "stall", "paper"]
        let volunteers = ["Sam", "", "Inès", ""]
        for index in 0..<27 {
            let day = 5 + (index * index) % 21
            csv += "2026-11-\(String(format: "%02d", day))T\(String(format: "%02d", 8 + index % 10)):15:00Z,Signer \(index),signer\(index)@example.org,\(regions[index % regions.count]),EN>FR,\(sources[index % sources.count]),\(volunteers[index % volunteers.count])\n"
        }
        try box.write("signers.csv", csv)
        let result = try box.run(["import", "signers.csv", "--json"], environment: now)
        try #require(result.status == 0 && (try result.json()["added"] as? Int) == 27, "\(result)")
        return box
    }

    func compare(_ output: String, golden name: String, head: String) throws {
        let normalised = output.replacingOccurrences(of: head, with: "<head>")
        let url = Self.snapshots.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1" {
            try Data(normalised.utf8).write(to: url)
            return
        }
        let golden = try String(contentsOf: url, encoding: .utf8)
        #expect(normalised == golden, "\(name) differs from its golden file; rerun with RECORD_SNAPSHOTS=1 if the change is intended")
    }

    @Test func everyFormatMatchesItsGoldenFile() throws {
        let box = try Self.campaign()
        let head = try #require(try box.run(["verify", "--json"]).json()["head"] as? String)
        for (format, file) in [("text", "report.txt"), ("markdown", "report.md"), ("json", "report.json"), ("html", "report.html")] {
            let result = try box.run(["report", "--format", format], environment: Self.now)
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains(head))
            try compare(result.stdout, golden: file, head: head)
        }
        let text = try box.run(["report"], environment: Self.now)
        #expect(!text.stdout.contains("\u{1B}["), "no colour when piped")
    }

    @Test func htmlIsWellFormedSelfContainedAndAgreesWithJSON() throws {
        let box = try Self.campaign()
        let json = try box.run(["report", "--json"], environment: Self.now).json()
        try #require(box.run(["report", "--format", "html", "--out", "report.html"], environment: Self.now).status == 0)
        let html = try Data(contentsOf: box.path("report.html"))
        let text = String(decoding: html, as: UTF8.self)
        #expect(!text.contains("http://") && !text.contains("https://") && !text.contains("src="), "no external assets")
        let document = try XMLDocument(data: html, options: [])
        func values(_ key: String, _ attribute: String = "data-value") throws -> [String] {
            try document.nodes(forXPath: "//*[@data-key='\(key)']").compactMap { ($0 as? XMLElement)?.attribute(forName: attribute)?.stringValue }
        }
        #expect(try values("count") == ["\(json["count"] as! Int)"])
        #expect(try values("goal") == ["\(json["goal"] as! Int)"])
        #expect(try values("percent").map { Double($0) } == [json["percent"] as? Double])
        #expect(try values("pace_per_day").map { Double($0) } == [json["pace_per_day"] as? Double])
        #expect(try document.nodes(forXPath: "//*[@data-key='head']").first?.stringValue == json["head"] as? String)
        let quorums = try #require(json["quorums"] as? [[String: Any]])
        #expect(try values("quorum") == quorums.map { $0["value"] as! String })
        #expect(try values("quorum", "data-count") == quorums.map { "\($0["count"] as! Int)" })
        #expect(try values("quorum", "data-met") == quorums.map { "\($0["met"] as! Bool)" })
        let perDay = try #require(json["per_day"] as? [[String: Any]])
        #expect(try values("day", "data-count") == perDay.map { "\($0["count"] as! Int)" })
    }

    @Test func reportAsItStoodOnADate() throws {
        let box = try Self.campaign()
        let then = try box.run(["report", "--json", "--at", "2026-11-12"], environment: Self.now).json()
        let export = try box.run(["export", "--format", "jsonl", "--fields", "signed_at"]).stdout
        let expected = export.split(separator: "\n").filter { $0.contains("2026-11-0") || $0.contains("2026-11-10") || $0.contains("2026-11-11") || $0.contains("2026-11-12") }.count
        #expect(then["count"] as? Int == expected)
        #expect(then["as_of"] as? String == "2026-11-12T23:59:59.999Z")
        #expect((then["per_day"] as? [[String: Any]])?.last?["date"] as? String == "2026-11-12")
        #expect(try box.run(["report", "--at", "someday"]).status == 64)
    }

    /// `report --public` (issue 10): a form to publish or forward. A ledger with
    /// distinctive names, addresses, comments, collectors, sources and free text; none of
    /// them appears in any format, while the full report shows them (so the test can fail).
    @Test func publicReportLeavesOutEveryPersonalDetailInEveryFormat() throws {
        let box = try Sandbox.withCampaign(manifest: """
            title: Fair rates for translators
            goal: 40
            milestones:
              - at: 5
                label: "First five"
            quorums:
              field: region
              minimums: { Lyon: 2 }
            fields:
              - name: region
                required: true
              - name: sector
                options: [books, press]
              - name: motto
                personal: false
            """)
        var csv = "name,email,region,sector,motto,comment,source,collector\n"
        for index in 0..<6 {
            csv += "Zebediah Quuxley\(index),zquux\(index)@quuxmail.example,\(index % 2 == 0 ? "Lyon" : "Paris"),books,"
                + "Ask Frobnitz Ophelia\(index),Kommentar xyzzy\(index),stall of Ynez Varga,Qwollector Vimes\n"
        }
        try box.write("signers.csv", csv)
        let imported = try box.run(["import", "signers.csv", "--json"], environment: Self.now)
        try #require(imported.status == 0 && (try imported.json()["added"] as? Int) == 6, "\(imported)")
        let secrets = ["Zebediah", "Quuxley", "zquux", "quuxmail", "Frobnitz", "Ophelia", "Kommentar", "xyzzy", "Ynez", "Varga", "Qwollector", "Vimes", "By collector", "By source"]

        let full = try box.run(["report", "--format", "markdown"], environment: Self.now)
        #expect(full.status == 0, "\(full)")
        #expect(full.stdout.contains("Qwollector Vimes") && full.stdout.contains("Ynez Varga") && full.stdout.contains("Frobnitz"), "the full report has them: \(full.stdout)")

        for format in ["text", "markdown", "html", "json"] {
            let result = try box.run(["report", "--public", "--format", format], environment: Self.now)
            #expect(result.status == 0, "\(format): \(result)")
            for secret in secrets {
                #expect(!result.stdout.contains(secret) && !result.stderr.contains(secret), "\(format) --public shows '\(secret)':\n\(result.stdout)")
            }
            // It says it is the public form, and keeps the counts that are safe.
            #expect(result.stdout.contains(format == "json" ? "\"public\" : true" : "Public summary: counts only."), "\(format): \(result.stdout)")
            #expect(result.stdout.contains("Lyon") && result.stdout.contains("books"), "\(format) keeps option fields and quorums: \(result.stdout)")
        }
        let json = try box.run(["report", "--public", "--json"], environment: Self.now)
        #expect(json.status == 0, "\(json)")
        let object = try json.json()
        #expect(object["public"] as? Bool == true)
        #expect(object["count"] as? Int == 6)
        #expect(object["by_collector"] == nil && object["by_source"] == nil && object["mail"] == nil, "\(object.keys.sorted())")
        #expect((object["by_field"] as? [[String: Any]])?.compactMap { $0["field"] as? String } == ["region", "sector"])
        #expect((object["quorums"] as? [[String: Any]])?.first?["count"] as? Int == 3)
        // The full report's JSON has no "public" key at all (unchanged for scripts).
        let fullJSON = try box.run(["report", "--json"], environment: Self.now)
        #expect(try fullJSON.json()["public"] == nil)
        // Written to a file, the same.
        let out = try box.run(["report", "--public", "--format", "html", "--out", "public.html"], environment: Self.now)
        #expect(out.status == 0, "\(out)")
        let html = try String(contentsOf: box.path("public.html"), encoding: .utf8)
        #expect(!secrets.contains { html.contains($0) } && html.contains("Public progress report"))
    }
}
