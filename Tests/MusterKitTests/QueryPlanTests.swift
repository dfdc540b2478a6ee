import Foundation
import Testing
@testable import MusterKit

/// The queries every `sign` runs must look things up, not read every signature: on a
/// ledger of a million, one scan costs 150 ms (found by a benchmark, after withdrawals
/// arrived). Timings would be noisy on a shared machine; SQLite's plan is not.
@Suite struct QueryPlanTests {
    func plan(_ ledger: Ledger, _ sql: String) throws -> [String] {
        let statement = try ledger.database.prepare("EXPLAIN QUERY PLAN " + sql)
        defer { statement.reset() }
        var lines: [String] = []
        while try statement.step() { lines.append(statement.text(3) ?? "") }
        return lines
    }

    @Test func theWithdrawnCountLooksUpEachWithdrawnEntry() throws {
        let folder = try TemporaryFolder()
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        let lines = try plan(ledger, Ledger.withdrawnCountSQL)
        #expect(lines.first == "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)", "\(lines)")
        #expect(!lines.contains { $0.hasPrefix("SCAN s") || $0.contains("SEARCH s USING COVERING INDEX") }, "\(lines)")
    }
}
