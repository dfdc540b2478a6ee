import Foundation
import Testing
@testable import MusterKit

// Inputs found by the libFuzzer targets in Fuzz/ (`make fuzz`, see RELIABILITY.md),
// minimised, each with the check that failed.

/// Manifests near the 1 MiB limit must load (or be refused) quickly: checking repeats
/// in lists and looking up keys used to be quadratic, so a long `consent:` table,
/// `fields:`, `milestones:`, `options:` or `minimums:` list hung `muster check`
/// (3,000 consent keys, 26 KB, took 5 s under the fuzzer). The time limit is the
/// shortest Swift Testing offers; with the fix each test takes well under a second of work.
@Suite("Fuzz regressions: large manifests", .timeLimit(.minutes(1)))
struct FuzzManifestRegressionTests {
    static let count = 40_000

    func load(_ yaml: String) -> (Manifest?, [Diagnostic]) {
        #expect(yaml.utf8.count <= YAMLFile.maximumBytes)
        return Manifest.load(data: Data(yaml.utf8), displayPath: "campaign.yaml")
    }

    @Test func manyConsentKeys() throws {
        var yaml = "title: x\ngoal: 1\nconsent:\n"
        for i in 0..<Self.count { yaml += "  k\(i): y\n" }
        let (manifest, diagnostics) = load(yaml)
        #expect(diagnostics.isEmpty)
        #expect(try #require(manifest).consents.count == Self.count)
    }

    @Test func manyFields() throws {
        var yaml = "title: x\ngoal: 1\nfields:\n"
        for i in 0..<Self.count { yaml += "  - name: f\(i)\n" }
        yaml += "  - name: f7\n"
        let (manifest, diagnostics) = load(yaml)
        #expect(manifest == nil)
        #expect(diagnostics.map(\.message) == ["field 'f7' is declared twice"])
    }

    @Test func manyMilestones() throws {
        var yaml = "title: x\ngoal: \(Self.count)\nmilestones:\n"
        for i in 1...Self.count { yaml += "  - at: \(i)\n" }
        let (manifest, diagnostics) = load(yaml)
        #expect(diagnostics.isEmpty)
        #expect(try #require(manifest).milestones.count == Self.count)
    }

    @Test func manyOptionsAndMinimums() throws {
        let options = (0..<Self.count).map { "o\($0)" }
        let yaml = """
            title: x
            goal: 1
            fields:
              - name: region
                options: [\(options.joined(separator: ", ")), o3]
            quorums:
              field: region
              minimums: {\(options.map { "\($0): 1" }.joined(separator: ", ")), zz: 1}
            """
        let (_, diagnostics) = load(yaml)
        #expect(diagnostics.map(\.message) == ["option 'o3' of 'region' is listed twice", "'zz' is not one of the options of 'region'"])
    }
}
