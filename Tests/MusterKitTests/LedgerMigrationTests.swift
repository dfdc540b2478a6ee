import Foundation
import Testing
@testable import MusterKit

/// The committed ledger of format 1 (Tests/Fixtures/ledger-v1, made by muster 0.1.0) and
/// what its maker recorded about it.
enum LedgerFixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/ledger-v1")

    static var expected: [String: Any] {
        get throws {
            let data = try Data(contentsOf: folder.appendingPathComponent("expected.json"))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }
    }

    /// A copy of the fixture ledger in `temporary`, free to migrate.
    static func copy(into temporary: TemporaryFolder, name: String = "ledger.sqlite") throws -> URL {
        let source = folder.appendingPathComponent(try #require(try expected["ledger"] as? String))
        let copy = temporary.url.appendingPathComponent(name)
        try FileManager.default.copyItem(at: source, to: copy)
        return copy
    }
}

@Suite struct LedgerMigrationTests {
    /// A separate connection, as an SQLite client would open the file.
    func query(_ url: URL, _ sql: String) throws -> [[String]] {
        let database = try SQLiteDatabase(path: url.path, create: false)
        let statement = try database.prepare(sql)
        var rows: [[String]] = []
        while try statement.step() {
            rows.append((0..<Int32(statement.columnCount)).map { statement.text($0) ?? "NULL" })
        }
        return rows
    }

    func schema(_ url: URL) throws -> [[String]] {
        try query(url, "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
    }

    func version(_ url: URL) throws -> String {
        try query(url, "SELECT value FROM meta WHERE key = 'schema_version'").first?.first ?? "none"
    }

    func bytes(_ url: URL) throws -> Data { try Data(contentsOf: url) }

    @Test func theFixtureMigratesAndKeepsItsChainCountAndState() throws {
        let folder = try TemporaryFolder()
        let url = try LedgerFixture.copy(into: folder)
        let expected = try LedgerFixture.expected
        #expect(try version(url) == "1", "the fixture is of format 1")
        #expect(try query(url, "SELECT count(*) FROM pragma_table_info('outbox') WHERE name = 'next_attempt_at'") == [["1"]])

        let ledger = try #require(try Ledger.open(url, create: false))
        #expect(try version(url) == String(Ledger.schemaVersion))
        #expect(Ledger.schemaVersion >= 2)
        #expect(try query(url, "SELECT count(*) FROM pragma_table_info('outbox') WHERE name = 'next_attempt_at'") == [["0"]])
        #expect(try query(url, "SELECT version, name FROM migrations ORDER BY version")
                == LedgerMigration.all.map { [String($0.version), $0.name] })

        let report = try ledger.verify()
        #expect(report.ok, "\(String(describing: report.firstBad))")
        #expect(report.head == expected["head"] as? String)
        #expect(report.count == Int64(try #require(expected["count"] as? Int)))
        #expect(try ledger.headHash() == expected["head"] as? String)

        // The outbox, opt-outs and erasures survive the migration.
        let outbox = try query(url, "SELECT template || '/' || state, count(*) FROM outbox GROUP BY 1")
        let expectedOutbox = try #require(expected["outbox"] as? [String: Int])
        #expect(Dictionary(uniqueKeysWithValues: outbox.map { ($0[0], Int($0[1])!) }) == expectedOutbox)
        #expect(try query(url, "SELECT count(*) FROM personal") == [[String(try #require(expected["personal_rows"] as? Int))]])
        for address in try #require(expected["unsubscribed"] as? [String]) {
            #expect(try ledger.isOptedOut(canonicalEmail: address), "\(address)")
        }
        #expect(try !ledger.isOptedOut(canonicalEmail: "ana@example.org"))
        for address in try #require(expected["forgotten"] as? [String]) {
            guard case .alreadyForgotten = try ledger.forget(canonicalEmail: address, at: Date()) else {
                Issue.record("\(address) should still be forgotten")
                continue
            }
        }

        // And the migrated ledger takes new writes: a duplicate, then a new signer.
        let manifest = sampleManifest()
        let again = try SignatureInput(name: "Ana", email: "ana@example.org", fields: ["region": "Lyon"]).validated(against: manifest)
        guard case .duplicate = try ledger.append(again, at: Date()) else { Issue.record("ana signed in format 1"); return }
        let new = try SignatureInput(name: "Kai", email: "kai@example.org", fields: ["region": "Lyon"]).validated(against: manifest)
        let entries = Int64(try #require(try query(url, "SELECT max(seq) FROM entries").first.flatMap { Int($0[0]) }))
        #expect(try ledger.append(new, at: Date()) == .added(seq: entries + 1, count: report.count + 1))
        #expect(try ledger.verify().ok)
    }

    @Test func aMigratedLedgerHasTheSchemaOfANewOne() throws {
        let folder = try TemporaryFolder()
        let migrated = try LedgerFixture.copy(into: folder)
        _ = try #require(try Ledger.open(migrated, create: false))
        let fresh = folder.url.appendingPathComponent("new.sqlite")
        _ = try #require(try Ledger.open(fresh, create: true))
        let freshSchema = try schema(fresh)
        #expect(try schema(migrated) == freshSchema)
        #expect(freshSchema.contains { $0[1] == "migrations" })
        #expect(!freshSchema.contains { $0[1] == "outbox_by_state" })
        #expect(try version(fresh) == String(Ledger.schemaVersion))
        #expect(try query(fresh, "SELECT version, name FROM migrations ORDER BY version")
                == query(migrated, "SELECT version, name FROM migrations ORDER BY version"))
        // verify's allowlists know every object and meta record a new ledger has.
        for row in freshSchema { #expect(Ledger.schemaObjects.contains("\(row[0]) \(row[1])"), "\(row[0]) \(row[1])") }
        for row in try query(fresh, "SELECT key FROM meta") { #expect(Ledger.metaKeys.contains(row[0]), "\(row[0])") }
    }

    @Test func theStateIndexOfOlderLedgersIsDroppedByTheMigration() throws {
        let folder = try TemporaryFolder()
        let url = try LedgerFixture.copy(into: folder)
        // Ledgers made before 2026-11-27 have it (the fixture's blast already dropped it).
        try SQLiteDatabase(path: url.path, create: false).execute("CREATE INDEX outbox_by_state ON outbox(template, state)")
        let ledger = try #require(try Ledger.open(url, create: false))
        #expect(try query(url, "SELECT count(*) FROM sqlite_schema WHERE name = 'outbox_by_state'") == [["0"]])
        #expect(try ledger.verify().ok)
    }

    @Test func verifyAcceptsTheSchemaObjectsOfTheLedgersOwnFormatOnly() throws {
        let folder = try TemporaryFolder()
        // Format 1, read as it is (merge's other ledger): the old state index belongs there,
        // a migrations table does not.
        let old = try LedgerFixture.copy(into: folder, name: "old.sqlite")
        try SQLiteDatabase(path: old.path, create: false).execute("CREATE INDEX outbox_by_state ON outbox(template, state)")
        #expect(try Ledger.openExisting(old).verifySequentially().ok)
        try SQLiteDatabase(path: old.path, create: false).execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)")
        #expect(try Ledger.openExisting(old).verifySequentially().firstBad
                == .init(entry: nil, reason: "the ledger holds a table 'migrations' that muster did not create"))
        #expect(try version(old) == "1")
        // The newest format: the other way round.
        let new = try LedgerFixture.copy(into: folder, name: "new.sqlite")
        let ledger = try #require(try Ledger.open(new, create: false))
        #expect(try ledger.verify().ok)
        try SQLiteDatabase(path: new.path, create: false).execute("CREATE INDEX outbox_by_state ON outbox(template, state)")
        #expect(try ledger.verify().firstBad == .init(entry: nil, reason: "the ledger holds an index 'outbox_by_state' that muster did not create"))
    }

    @Test func openingAgainChangesNothing() throws {
        let folder = try TemporaryFolder()
        let url = try LedgerFixture.copy(into: folder)
        _ = try #require(try Ledger.open(url, create: false))
        let schemaOnce = try schema(url)
        let recordedOnce = try query(url, "SELECT version, name, applied_at FROM migrations ORDER BY version")
        for _ in 0..<2 { _ = try #require(try Ledger.open(url, create: false)) }
        #expect(try schema(url) == schemaOnce)
        #expect(try query(url, "SELECT version, name, applied_at FROM migrations ORDER BY version") == recordedOnce)
        #expect(try version(url) == String(Ledger.schemaVersion))
    }

    @Test func aLedgerFromANewerMusterIsRefusedAndLeftAlone() throws {
        let folder = try TemporaryFolder()
        let url = try LedgerFixture.copy(into: folder)
        _ = try #require(try Ledger.open(url, create: false))
        let future = Ledger.schemaVersion + 1
        try SQLiteDatabase(path: url.path, create: false).execute("""
            UPDATE meta SET value = \(future) WHERE key = 'schema_version';
            CREATE TABLE from_the_future (x); PRAGMA wal_checkpoint(TRUNCATE);
            """)
        let before = try bytes(url)
        let error = try #require(throws: MusterError.self) { try Ledger.open(url, create: true) }
        #expect(error.status == .failure)
        #expect(error.message.contains(url.path))
        #expect(error.message.contains("format \(future)"))
        #expect(error.message.contains(MusterKitVersion.string))
        #expect(error.message.contains("upgrade muster"))
        #expect(try bytes(url) == before, "nothing is written to a ledger from the future")
        // merge's reader refuses it too, as bad input.
        let input = try #require(throws: MusterError.self) { try Ledger.openExisting(url) }
        #expect(input.status == .badInput)
        #expect(input.message.contains("upgrade muster"))
    }

    @Test(arguments: ["'2'", "-1", "0", "1.5", "x'02'", "NULL"])
    func aDamagedFormatRecordIsRefused(value: String) throws {
        let folder = try TemporaryFolder()
        let url = try LedgerFixture.copy(into: folder)
        let database = try SQLiteDatabase(path: url.path, create: false)
        if value == "NULL" {
            try database.execute("DELETE FROM meta WHERE key = 'schema_version'; PRAGMA wal_checkpoint(TRUNCATE)")
        } else {
            try database.execute("UPDATE meta SET value = \(value) WHERE key = 'schema_version'; PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let before = try bytes(url)
        let error = try #require(throws: MusterError.self) { try Ledger.open(url, create: false) }
        #expect(error.status == .failure)
        #expect(error.message.contains(url.path))
        #expect(error.message.contains("schema_version"), "\(error.message)")
        #expect(try bytes(url) == before)
    }

    @Test func aDatabaseThatIsNotALedgerIsNotTurnedIntoOne() throws {
        let folder = try TemporaryFolder()
        let url = folder.url.appendingPathComponent("other.sqlite")
        try SQLiteDatabase(path: url.path).execute("CREATE TABLE notes (text); INSERT INTO notes VALUES ('hello')")
        let error = try #require(throws: MusterError.self) { try Ledger.open(url, create: true) }
        #expect(error.message.contains("not a muster ledger"))
        #expect(try query(url, "SELECT name FROM sqlite_schema") == [["notes"]])
    }

    struct Injected: Error {}

    @Test func aMigrationThatFailsLeavesTheLedgerAtItsPreviousFormat() throws {
        let folder = try TemporaryFolder()
        let url = try LedgerFixture.copy(into: folder)
        let schemaBefore = try schema(url)
        let outboxBefore = try query(url, "SELECT * FROM outbox ORDER BY template, recipient")
        // Migration 2 does all its work, then fails before its transaction commits.
        let failing = LedgerMigration(version: 2, name: "fails at the end") { database in
            try LedgerMigration.dropOutboxLeftovers.apply(database)
            try database.execute("CREATE TABLE half_done (x)")
            throw Injected()
        }
        #expect(throws: Injected.self) { try Ledger.open(url, create: false, migrations: [.createLedger, failing]) }
        #expect(try version(url) == "1")
        #expect(try schema(url) == schemaBefore)
        #expect(try query(url, "SELECT * FROM outbox ORDER BY template, recipient") == outboxBefore)

        // A migration after the last real one failing rolls back all before it: all pending
        // migrations are one transaction, so the ledger stays at the format it had.
        let third = LedgerMigration(version: Ledger.schemaVersion + 1, name: "fails") { database in
            try database.execute("CREATE TABLE half_done (x)")
            throw Injected()
        }
        #expect(throws: Injected.self) { try Ledger.open(url, create: false, migrations: LedgerMigration.all + [third]) }
        #expect(try version(url) == "1")
        #expect(try schema(url) == schemaBefore)
        #expect(try query(url, "SELECT count(*) FROM sqlite_schema WHERE name IN ('half_done', 'migrations')") == [["0"]])

        // And the real migrations then finish the job.
        let ledger = try #require(try Ledger.open(url, create: false))
        #expect(try version(url) == String(Ledger.schemaVersion))
        #expect(try ledger.verify().ok)
    }

    @Test func mergeReadsAnOlderLedgerWithoutMigratingIt() throws {
        let folder = try TemporaryFolder()
        let url = try LedgerFixture.copy(into: folder)
        let before = try bytes(url)
        let other = try Ledger.openExisting(url)
        let report = try other.verifySequentially()
        #expect(report.ok, "\(String(describing: report.firstBad))")
        #expect(report.head == (try LedgerFixture.expected)["head"] as? String)
        #expect(try version(url) == "1")
        #expect(try bytes(url) == before)
    }
}
