import Foundation
import Testing
@testable import MusterKit

@Suite struct ManifestTests {
    func load(_ yaml: String) throws -> (Manifest?, [String]) {
        let folder = try TemporaryFolder()
        let url = try folder.write("campaign.yaml", yaml)
        let (manifest, diagnostics) = Manifest.load(url, displayPath: "campaigns/x/campaign.yaml")
        return (manifest, diagnostics.map(\.description))
    }

    @Test func exampleFromTheSpecLoads() throws {
        let (manifest, diagnostics) = try load("""
            title: Fair rates for translators
            goal: 1000
            deadline: 2027-03-31
            sender: "Fair Rates Collective <hello@fairrates.example>"
            milestones:
              - at: 100
              - at: 500
                label: "Open letter to agencies"
            quorums:
              field: region
              minimums: { Lyon: 50, Paris: 200 }
            targets:
              - name: "Agency Association"
                email: board@agencies.example
            fields:
              - name: region
                required: true
              - name: profession
                options: [translator, interpreter, other]
            consent:
              updates: "Keep me informed about this campaign"
            """)
        #expect(diagnostics == [])
        let m = try #require(manifest)
        #expect(m.title == "Fair rates for translators")
        #expect(m.goal == 1000)
        #expect(m.deadline == "2027-03-31")
        #expect(m.milestones == [.init(at: 100, label: nil), .init(at: 500, label: "Open letter to agencies")])
        #expect(m.quorums?.field == "region")
        #expect(m.quorums?.minimums.map(\.key) == ["Lyon", "Paris"])
        // the quorum field and a field with options are categories kept after forget
        #expect(m.field(named: "region")?.personal == false)
        #expect(m.field(named: "profession")?.personal == false)
        #expect(m.consents == [.init(key: "updates", text: "Keep me informed about this campaign")])
    }

    @Test func everyErrorIsReportedAtOnceWithItsPosition() throws {
        let (manifest, diagnostics) = try load("""
            title: Fair rates
            goal: lots
            deadline: next spring
            colour: red
            milestones:
              - at: 0
            fields:
              - name: Region
              - name: email
              - name: region
                options: []
            targets:
              - name: Board
                email: "board@agencies"
            """)
        #expect(manifest == nil)
        #expect(diagnostics == [
            "campaigns/x/campaign.yaml:4:1: warning: unknown key 'colour' in the manifest; it is ignored",
            "campaigns/x/campaign.yaml:2:7: error: 'goal' must be a whole number above 0, not 'lots'",
            "campaigns/x/campaign.yaml:3:11: error: 'deadline' must be a date like 2027-03-31, not 'next spring'",
            "campaigns/x/campaign.yaml:6:9: error: 'at' must be a whole number above 0, not '0'",
            "campaigns/x/campaign.yaml:8:11: error: field name 'Region' must be lower-case letters, digits and _ (starting with a letter, at most 32)",
            "campaigns/x/campaign.yaml:9:11: error: 'email' is built into every signature; choose another field name",
            "campaigns/x/campaign.yaml:11:14: error: 'options' of 'region' must be a non-empty list, e.g. [a, b]",
            "campaigns/x/campaign.yaml:14:12: error: target email 'board@agencies' has an invalid domain (it needs a dot, as in example.org)",
        ])
    }

    @Test func missingTitleAndGoal() throws {
        let (manifest, diagnostics) = try load("deadline: 2027-01-01\ntitel: Oops\n")
        #expect(manifest == nil)
        #expect(diagnostics == [
            "campaigns/x/campaign.yaml:2:1: warning: unknown key 'titel' in the manifest (did you mean 'title'?); it is ignored",
            "campaigns/x/campaign.yaml:1:1: error: the manifest needs 'title'",
            "campaigns/x/campaign.yaml:1:1: error: the manifest needs 'goal' (a whole number above 0)",
        ])
    }

    @Test func syntaxErrorsAndDuplicateKeysAreLocated() throws {
        let (_, syntax) = try load("title: [unclosed\ngoal: 10\n")
        #expect(syntax.count == 1)
        #expect(syntax == ["campaigns/x/campaign.yaml:2:5: error: YAML syntax: did not find expected ',' or ']'"])
        let (_, duplicate) = try load("title: A\ngoal: 10\ntitle: B\n")
        #expect(duplicate == ["campaigns/x/campaign.yaml:1:1: error: duplicate key 'title' in this mapping"])
    }

    @Test func invalidUTF8IsLocated() throws {
        let folder = try TemporaryFolder()
        let url = folder.url.appendingPathComponent("campaign.yaml")
        try Data("title: ok\ngoal: 1\nsender: \"caf".utf8 + [0xE9, 0x22, 0x0A]).write(to: url)
        let (manifest, diagnostics) = Manifest.load(url, displayPath: "campaign.yaml")
        #expect(manifest == nil)
        #expect(diagnostics.map(\.description) == ["campaign.yaml:3:13: error: invalid UTF-8 (byte 0xE9)"])
    }

    @Test func yamlBombsAreRefusedCheaply() throws {
        // Billion laughs: aliases are shared, never expanded, and unknown keys are not walked.
        var bomb = "title: x\ngoal: 1\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
            previous = name
        }
        bomb += "milestones: *i\n"
        let (manifest, diagnostics) = try load(bomb)
        #expect(manifest == nil)
        #expect(diagnostics.contains { $0.contains("error:") })

        let deep = "title: x\ngoal: 1\nz: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"
        let (_, nested) = try load(deep)
        #expect(nested == ["campaigns/x/campaign.yaml:3:68: error: nesting deeper than 64 levels"])
    }

    @Test func oversizedFilesAreRefusedBeforeParsing() throws {
        let big = "title: x\ngoal: 1\ndescription: \"" + String(repeating: "a", count: 2 << 20) + "\"\n"
        let (manifest, diagnostics) = try load(big)
        #expect(manifest == nil)
        #expect(diagnostics.count == 1)
        #expect(diagnostics[0].contains("muster reads YAML files of at most 1048576 bytes"))
    }

    @Test func quorumFieldMustBeDeclared() throws {
        let (_, diagnostics) = try load("""
            title: x
            goal: 10
            quorums:
              field: town
              minimums: { Lyon: 5 }
            """)
        #expect(diagnostics == ["campaigns/x/campaign.yaml:4:10: error: the quorum field 'town' is not declared under 'fields'"])
    }
}
