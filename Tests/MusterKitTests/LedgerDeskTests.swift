import Foundation
import Testing
@testable import MusterKit

/// `muster serve`'s group commit (`LedgerDesk.write`) on a real SQLite file: writes that
/// arrive together share a transaction, yet each one's error undoes its own rows only.
@Suite struct LedgerDeskTests {
    let start = Timestamp.parse("2026-11-26T10:00:00Z")!

    struct Refused: Error {}

    @Test func aFailingWriteUndoesOnlyItsOwnRowsAndEveryOtherLands() async throws {
        let folder = try TemporaryFolder()
        let url = folder.url.appendingPathComponent("ledger.sqlite")
        let desk = LedgerDesk(ledger: try #require(try Ledger.open(url, create: true)), url: url, label: "test")
        let manifest = sampleManifest(), start = start
        var limits = WebLimits()
        limits.domainPerMinute = 1000 // 200 forms for one domain: none held
        limits.domainPerHour = 1000
        let generous = limits
        // 200 forms at once; every fifth stores its row, then fails.
        let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let signature = try SignatureInput(name: "Ana Lima", email: "crowd\(index)@example.org", fields: ["region": "Lyon"],
                                                       consents: [], source: "web").validated(against: manifest)
                    do {
                        let outcome = try await desk.write { ledger in
                            let outcome = try ledger.addPendingRow(signature, slug: "fair-rates", at: start, client: nil, limits: generous)
                            if index % 5 == 0 { throw Refused() }
                            return outcome
                        }
                        guard case .queued(.confirm, _) = outcome else { return (index, false) }
                        return (index, true)
                    } catch is Refused {
                        return (index, false)
                    }
                }
            }
            var all: [Int: Bool] = [:]
            for try await (index, stored) in group { all[index] = stored }
            return all
        }
        #expect(outcomes.count == 200)
        #expect(outcomes.filter { $0.value }.map(\.key).sorted() == (0..<200).filter { $0 % 5 != 0 })
        // What is in the file: exactly the writes that were answered as stored.
        let database = try SQLiteDatabase(path: url.path)
        let statement = try database.prepare("SELECT json_extract(data, '$.email') FROM pending ORDER BY id")
        var emails: Set<String> = []
        while try statement.step() { emails.insert(statement.text(0) ?? "") }
        #expect(emails == Set((0..<200).filter { $0 % 5 != 0 }.map { "crowd\($0)@example.org" }))
        let ledger = try #require(try Ledger.open(url, create: false))
        #expect(try ledger.verify().ok)
    }
}
