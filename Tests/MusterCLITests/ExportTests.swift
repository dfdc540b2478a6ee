import Foundation
import Testing

@Suite struct ExportTests {
    static let manifest = """
        title: Fair rates
        goal: 10
        fields:
          - name: region
            required: true
            options: [Lyon, Paris]
          - name: languages
        consent:
          updates: "Keep me informed"
        """

    func signed() throws -> Sandbox {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let csv = """
            signed_at,name,email,comment,region,languages,consent,source,collector
            2026-10-01T09:00:00Z,Ana Lima,ana@example.org,"Pay us, fairly",Lyon,EN>FR,updates,stall,Sam
            2026-10-02T10:30:00Z,"=HYPERLINK(""http://evil.example"")",formula@example.org,+cmd|' /C calc'!A0,Paris,-2+3,,import,@admin
            2026-10-03T11:00:00Z,Chidi Okafor,chidi@example.org,,Paris,,updates,import,

            """
        try box.write("in.csv", csv)
        let result = try box.run(["import", "in.csv", "--json"], environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        try #require(result.status == 0 && (try result.json()["added"] as? Int) == 3, "\(result)")
        return box
    }

    @Test func csvNeutralisesFormulaCells() throws {
        let box = try signed()
        let export = try box.run(["export"])
        #expect(export.status == 0, "\(export)")
        let lines = export.stdout.components(separatedBy: "\r\n")
        #expect(lines[0] == "signed_at,name,email,comment,region,languages,consent,source,collector")
        #expect(lines[2] == #"2026-10-02T10:30:00.000Z,"'=HYPERLINK(""http://evil.example"")",formula@example.org,"'+cmd|' /C calc'!A0",Paris,"'-2+3",,import,"'@admin""#, "\(lines[2])")
        for line in lines.dropFirst() {
            for trigger in [",=", ",+", ",-", ",@", ",\"=", ",\"+", ",\"-", ",\"@"] { #expect(!line.contains(trigger), "\(line)") }
        }
        // JSON Lines keeps the raw values.
        let jsonl = try box.run(["export", "--format", "jsonl", "--fields", "name,collector"])
        #expect(jsonl.stdout.split(separator: "\n")[1] == #"{"collector":"@admin","name":"=HYPERLINK(\"http://evil.example\")"}"#)
    }

    @Test func exportThenImportLosesNothing() throws {
        let box = try signed()
        try #require(box.run(["export", "--out", "all.csv"]).status == 0)
        let mode = try FileManager.default.attributesOfItem(atPath: box.path("all.csv").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let original = try box.run(["export", "--format", "jsonl"]).stdout
        // A second workspace takes the file in and exports the same signatures.
        let other = try Sandbox.withCampaign(manifest: Self.manifest)
        try FileManager.default.copyItem(at: box.path("all.csv"), to: other.path("all.csv"))
        let imported = try other.run(["import", "all.csv", "--json"], environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        #expect(try imported.json()["added"] as? Int == 3, "\(imported)")
        #expect(try imported.json()["rejected"] as? Int == 0, "\(imported)")
        #expect(try other.run(["export", "--format", "jsonl"]).stdout == original)
    }

    @Test func forgottenSignersHaveNoPersonalDataAndPublicHasOnlyCounts() throws {
        let box = try signed()
        try #require(box.run(["forget", "ana@example.org"]).status == 0)
        let csv = try box.run(["export", "--fields", "entry,name,email,region,forgotten"])
        #expect(csv.stdout.components(separatedBy: "\r\n")[1] == "1,,,Lyon,yes")
        let osdi = try box.run(["export", "--format", "osdi"])
        let document = try osdi.json()
        #expect((document["osdi:people"] as? [Any])?.count == 2)
        #expect((document["osdi:signatures"] as? [Any])?.count == 3)
        #expect(!osdi.stdout.contains("Ana"))
        let pub = try box.run(["export", "--public", "--out", "counts.csv"])
        #expect(pub.status == 0, "\(pub)")
        let counts = try String(contentsOf: box.path("counts.csv"), encoding: .utf8)
        #expect(counts == "group,value,count\r\ntotal,,3\r\nday,2026-10-01,1\r\nday,2026-10-02,1\r\nday,2026-10-03,1\r\nsource,import,2\r\nsource,stall,1\r\nregion,Lyon,1\r\nregion,Paris,2\r\n")
        #expect(!counts.contains("@"))
        #expect(try box.run(["export", "--public", "--format", "osdi"]).status == 64)
    }

    /// Issue 10 items 12 and 13: export then import into a fresh campaign loses nothing.
    /// Every signer arrives with the same time, fields, consents, comment (paragraphs and
    /// a formula-like first character included), source and collector; a forgotten signer's
    /// row (a time, no name or email) is skipped and counted as `forgotten`, not rejected.
    @Test func exportThenImportCarriesMultilineCommentsAndCountsForgottenSigners() throws {
        let box = try signed()
        let comment = "-First paragraph, \"quoted\".\r\n\r\n=SUM(A1) is not a formula here\rthird line"
        let sign = try box.run(["sign", "--name", "Dee Multi", "--email", "dee@example.org", "--field", "region=Lyon",
                                "--field", "languages=FR", "--comment=" + comment, "--consent", "updates", "--source", "stall", "--by", "Sam"])
        #expect(sign.status == 0, "\(sign)")
        try #require(box.run(["forget", "chidi@example.org"]).status == 0)
        let export = try box.run(["export", "--out", "all.csv"])
        #expect(export.status == 0, "\(export)")
        let csv = try String(contentsOf: box.path("all.csv"), encoding: .utf8)
        // The comment's paragraphs are in one quoted, neutralised cell, LF inside, CRLF between rows.
        #expect(csv.contains(",\"'-First paragraph, \"\"quoted\"\".\n\n=SUM(A1) is not a formula here\nthird line\",Lyon,FR,updates,stall,Sam\r\n"), "\(csv)")
        #expect(csv.contains("\r\n2026-10-03T11:00:00.000Z,,,,Paris,,updates,import,\r\n"), "the forgotten row: \(csv)")
        let original = try box.run(["export", "--format", "jsonl"]).stdout.split(separator: "\n").map(String.init)
        #expect(original.count == 4)
        // OSDI: the comment as one JSON string, its line breaks escaped.
        let osdi = try box.run(["export", "--format", "osdi"])
        #expect(osdi.status == 0, "\(osdi)")
        #expect(osdi.stdout.contains(#""comments":"-First paragraph, \"quoted\".\n\n=SUM(A1) is not a formula here\nthird line""#), "\(osdi.stdout)")
        #expect(osdi.stdout.split(separator: "\n").count == 1)

        let other = try Sandbox.withCampaign(manifest: Self.manifest)
        try FileManager.default.copyItem(at: box.path("all.csv"), to: other.path("all.csv"))
        let imported = try other.run(["import", "all.csv", "--json"], environment: ["MUSTER_NOW": "2026-12-31T12:00:00Z"])
        #expect(imported.status == 0, "\(imported)")
        let json = try imported.json()
        #expect(json["rows"] as? Int == 4)
        #expect(json["added"] as? Int == 3)
        #expect(json["forgotten"] as? Int == 1)
        #expect(json["rejected"] as? Int == 0)
        #expect(json["duplicates"] as? Int == 0)
        #expect(!other.exists("all.rejects.csv"))
        // Byte for byte the same JSON Lines, the forgotten signer aside.
        let again = try other.run(["export", "--format", "jsonl"]).stdout.split(separator: "\n").map(String.init)
        #expect(again == original.filter { !$0.contains("\"email\":null") })
        #expect(again.contains { $0.contains(#""comment":"-First paragraph, \"quoted\".\n\n=SUM(A1) is not a formula here\nthird line""#) }, "\(again)")
        // The text summary says what was skipped and why.
        let text = try Sandbox.withCampaign(manifest: Self.manifest)
        try FileManager.default.copyItem(at: box.path("all.csv"), to: text.path("all.csv"))
        let plain = try text.run(["import", "all.csv"], environment: ["MUSTER_NOW": "2026-12-31T12:00:00Z"])
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.stdout.contains("skipped 1 forgotten signer (rows with a time but no name, email or comment, as `muster export` writes them: there is no one to add)"), "\(plain)")
        // Still refused: a row with a time, no name but an email (a person, badly filled in).
        try other.write("half.csv", "signed_at,name,email,region\n2026-10-03T11:00:00Z,,half@example.org,Paris\n")
        let half = try other.run(["import", "half.csv", "--json"], environment: ["MUSTER_NOW": "2026-12-31T12:00:00Z"])
        #expect(half.status == 0, "\(half)")
        #expect(try half.json()["rejected"] as? Int == 1)
        #expect(try half.json()["forgotten"] as? Int == 0)
        // And a file that is not readable at all is still exit 65 with nothing written.
        try Data([0x73, 0x69, 0x67, 0x6E, 0x65, 0x64, 0x5F, 0x61, 0x74, 0x2C, 0x6E, 0x61, 0x6D, 0x65, 0x0A, 0xC3, 0x28, 0x0A]).write(to: other.path("bad.csv"))
        let bad = try other.run(["import", "bad.csv"])
        #expect(bad.status == 65, "\(bad)")
        #expect(try other.run(["verify", "--json"]).json()["count"] as? Int == 3)
    }
}
