import Foundation
import Testing
@testable import MusterKit

// Inputs found by the libFuzzer targets in Fuzz/ (`make fuzz`, see RELIABILITY.md),
// minimised, each with the check that failed.

@Suite("Fuzz regressions: quoted-printable")
struct FuzzQuotedPrintableRegressionTests {
    func encodedLines(_ text: String) -> [String] {
        QuotedPrintable.encode(text).components(separatedBy: "\r\n")
    }

    /// FuzzHeader, crash-2764a107…, minimised to 18 bytes: the body was eight invalid
    /// UTF-8 bytes (each U+FFFD, `=EF=BF=BD`), a backspace (`=08`), then `From l`. The
    /// escapes fill 75 columns, the soft break falls just before `From `, and the next
    /// encoded line started with `From ` — which mbox tools rewrite as `>From `.
    @Test func fromAfterASoftBreakIsEscaped() {
        let minimised: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x08] + Array("From l".utf8)
        let text = String(decoding: minimised, as: UTF8.self)
        let lines = encodedLines(text)
        #expect(lines.count == 2)
        #expect(lines.allSatisfy { !$0.hasPrefix("From ") })
        #expect(decodeQuotedPrintable(QuotedPrintable.encode(text)) == text)
    }

    /// The same with plain letters: 75 literal characters, then `From here`.
    @Test func fromAfterSeventyFiveLettersIsEscaped() {
        let text = String(repeating: "x", count: 75) + "From here"
        let lines = encodedLines(text)
        #expect(lines == [String(repeating: "x", count: 75) + "=", "=46rom here"])
        #expect(decodeQuotedPrintable(QuotedPrintable.encode(text)) == text)
    }

    /// A dot after a soft break was already escaped; it still is, and so is a `From `
    /// that is not at the start of the text's line.
    @Test func dotAndFromAtEveryEncodedLineStart() {
        for prefix in [74, 75, 76, 149, 150] {
            for tail in [".hidden", "From x", "From"] {
                let text = String(repeating: "a", count: prefix) + tail
                for line in encodedLines(text) {
                    #expect(!line.hasPrefix("."), "\(prefix) \(tail)")
                    #expect(!line.hasPrefix("From "), "\(prefix) \(tail)")
                    #expect(line.utf8.count <= 76)
                }
                #expect(decodeQuotedPrintable(QuotedPrintable.encode(text)) == text)
            }
        }
    }
}

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
