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
}
