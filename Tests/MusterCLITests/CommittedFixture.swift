import Foundation
import Testing

/// A committed fixture ledger (Tests/Fixtures/NAME): a workspace made by a released
/// muster, and `expected.json` saying what it holds.
struct CommittedFixture {
    let folder: URL

    init(_ name: String) {
        folder = MusterBinary.packageRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(name)
    }

    /// What `make.sh` recorded about the ledger (head, counts, groups…).
    func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A sandbox holding a copy of the fixture's workspace (the fixture itself is never written).
    func workspace() throws -> Sandbox {
        let box = try Sandbox()
        let source = folder.appendingPathComponent("workspace")
        for name in try FileManager.default.contentsOfDirectory(atPath: source.path) {
            try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: box.path(name))
        }
        return box
    }
}
