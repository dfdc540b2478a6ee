import Foundation
import Testing
@testable import MusterKit

@Suite struct TemplatesTests {
    @Test func builtInTemplatesMatchTheTemplatesFolder() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("templates")
        var onDisk: [String: String] = [:]
        let enumerator = try #require(FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]))
        for case let url as URL in enumerator where (try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            let relative = String(url.standardizedFileURL.path.dropFirst(folder.standardizedFileURL.path.count + 1))
            onDisk[relative] = try String(contentsOf: url, encoding: .utf8)
        }
        #expect(!onDisk.isEmpty)
        #expect(onDisk == DefaultTemplates.files, "templates/ changed: run `make templates`")
    }

    @Test func yamlQuotingSurvivesHostileTitles() throws {
        for title in ["Fair \"rates\"", "a: b # c", "- [x] {y}", "Zoé's ✊ campaign", "\\ backslash"] {
            let quoted = Scaffold.yamlQuoted(title)
            let folder = try TemporaryFolder()
            let url = try folder.write("campaign.yaml", "title: \(quoted)\ngoal: 1\n")
            let (manifest, diagnostics) = Manifest.load(url, displayPath: "campaign.yaml")
            #expect(manifest?.title == title, "\(diagnostics)")
        }
    }
}
