import Foundation
import Testing

/// The built binary against the committed ledger of format 1 (Tests/Fixtures/ledger-v1):
/// every muster to come must open, migrate and verify it.
@Suite struct LedgerMigrationCLITests {
    static let fixture = CommittedFixture("ledger-v1")
    static let ledger = "campaigns/fair-rates/ledger.sqlite"

    static func expected() throws -> [String: Any] { try fixture.expected() }

    /// A sandbox holding a copy of the fixture's workspace.
    static func workspace() throws -> Sandbox { try fixture.workspace() }

    func schemaVersion(_ box: Sandbox) throws -> String {
        try box.sqlite(Self.ledger, "SELECT value FROM meta WHERE key = 'schema_version'").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func theFixtureMigratesOnceAndVerifiesWithItsHeadAndCount() throws {
        let box = try Self.workspace()
        let expected = try Self.expected()
        #expect(try schemaVersion(box) == "1")

        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        let json = try verify.json()
        #expect(json["ok"] as? Bool == true)
        #expect(json["head"] as? String == expected["head"] as? String)
        #expect(json["count"] as? Int == expected["count"] as? Int)
        #expect(verify.stderr.contains("migrated \(box.path(Self.ledger).path) from ledger format 1 to"), "\(verify)")
        #expect(try schemaVersion(box) != "1")

        let again = try box.run(["verify", "--json"])
        #expect(again.status == 0)
        #expect(again.stderr.isEmpty, "migrated once only: \(again)")
        #expect(try again.json()["head"] as? String == expected["head"] as? String)

        // The outbox, opt-outs and erasures read back as they were.
        let status = try box.run(["mail", "status", "--json"])
        #expect(status.status == 0, "\(status)")
        let outbox = try #require(expected["outbox"] as? [String: Int])
        let total = { (state: String) in outbox.filter { $0.key.hasSuffix("/\(state)") }.values.reduce(0, +) }
        let counts = try status.json()
        for state in ["queued", "sent", "deferred", "failed", "unknown"] {
            #expect(counts[state] as? Int == total(state), "\(state): \(status.stdout)")
        }
        let export = try box.run(["export", "--format", "jsonl"])
        #expect(export.status == 0, "\(export)")
        #expect(export.stdout.contains("ana@example.org"))
        for forgotten in try #require(expected["forgotten"] as? [String]) { #expect(!export.stdout.contains(forgotten)) }
        #expect(try box.run(["unsubscribe", "di@example.org"]).stdout.contains("already"))
        let duplicate = try box.run(["sign", "--name", "Ana", "--email", "ana@example.org", "--field", "region=Lyon", "--json"])
        #expect(try duplicate.json()["status"] as? String == "duplicate", "\(duplicate)")

        // Sending again resumes where the format-1 blast stopped: only what was queued.
        if TestRelay.available {
            let relay = try TestRelay(in: box)
            let send = try box.run(["mail", "send", "news", "--yes", "--json"], environment: ["MUSTER_SMTP_URL": relay.url])
            #expect(send.status == 0, "\(send)")
            #expect(try relay.received().count == outbox["news/queued"])
        }
        let verified = try box.run(["verify", "--json"])
        #expect(try verified.json()["ok"] as? Bool == true, "\(verified)")
    }

    @Test func aLedgerFromANewerMusterIsRefusedWithNothingWritten() throws {
        let box = try Self.workspace()
        #expect(try box.run(["verify"]).status == 0)
        try box.sqlite(Self.ledger, "UPDATE meta SET value = 99 WHERE key = 'schema_version'; PRAGMA wal_checkpoint(TRUNCATE);")
        let before = try Data(contentsOf: box.path(Self.ledger))
        for arguments in [["verify"], ["report"], ["export"], ["sign", "--name", "Kai", "--email", "kai@example.org", "--field", "region=Lyon"]] {
            let result = try box.run(arguments)
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.stderr.contains(box.path(Self.ledger).path), "\(result)")
            #expect(result.stderr.contains("ledger format 99"), "\(result)")
            #expect(result.stderr.contains("upgrade muster"), "\(result)")
        }
        let list = try box.run(["list"])
        #expect(list.stdout.contains("upgrade muster"), "\(list)")
        #expect(try Data(contentsOf: box.path(Self.ledger)) == before)
    }

    @Test func aDamagedFormatRecordIsRefused() throws {
        let box = try Self.workspace()
        try box.sqlite(Self.ledger, "UPDATE meta SET value = 'two' WHERE key = 'schema_version'")
        let result = try box.run(["verify"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("damaged schema_version record ('two')"), "\(result)")
        #expect(try schemaVersion(box) == "two")
    }

    /// Runs muster as an unprivileged user when the tests run as root (who may write
    /// read-only files); nil when that is not possible here.
    static func unprivileged() -> [String]? {
        if getuid() != 0 { return [] }
        let setpriv = "/usr/bin/setpriv"
        return FileManager.default.isExecutableFile(atPath: setpriv)
            ? [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", MusterBinary.url.path] : nil
    }

    @Test(.enabled(if: unprivileged() != nil, "needs setpriv to drop root's rights"))
    func aReadOnlyOlderLedgerGivesAClearMessageAndStaysAsItWas() throws {
        let box = try Self.workspace()
        let prefix = try #require(Self.unprivileged())
        let folder = box.path("campaigns/fair-rates")
        let before = try Data(contentsOf: box.path(Self.ledger))
        // Every folder up to the sandbox readable by the unprivileged user; the ledger
        // and its folder read-only.
        for url in [box.root, box.path("campaigns"), folder, box.path("campaigns/fair-rates/emails")] {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
            for name in try FileManager.default.contentsOfDirectory(atPath: url.path) where name.contains(".") {
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.appendingPathComponent(name).path)
            }
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: box.path(Self.ledger).path)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: folder.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path) }
        for arguments in [["verify"], ["report"], ["export"]] {
            let result = prefix.isEmpty ? try box.run(arguments)
                : try Sandbox.run(URL(fileURLWithPath: prefix[0]), Array(prefix.dropFirst()) + arguments, in: box.root)
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.stderr.contains("\(box.path(Self.ledger).path) cannot be written"), "\(result)")
            #expect(result.stderr.contains("make the file and its folder writable"), "\(result)")
        }
        #expect(try Data(contentsOf: box.path(Self.ledger)) == before)
        #expect(try schemaVersion(box) == "1")
    }

    @Test func aFormatOneLedgerFromAnotherMachineMerges() throws {
        let box = try Self.workspace()
        let expected = try Self.expected()
        let other = box.path("other-laptop.sqlite")
        try FileManager.default.copyItem(at: box.path(Self.ledger), to: other)
        try box.run(["new", "second", "--title", "Second", "--goal", "10"])
        try FileManager.default.removeItem(at: box.path("campaigns/second/campaign.yaml"))
        try FileManager.default.copyItem(at: box.path("campaigns/fair-rates/campaign.yaml"), to: box.path("campaigns/second/campaign.yaml"))
        let merge = try box.run(["merge", other.path, "-c", "second", "--json"])
        #expect(merge.status == 0, "\(merge)")
        let count = try #require(expected["count"] as? Int), forgotten = try #require(expected["forgotten"] as? [String]).count
        let verify = try box.run(["verify", "-c", "second", "--json"])
        #expect(try verify.json()["count"] as? Int == count - forgotten, "\(merge.stdout)")
        #expect(try box.sqlite("other-laptop.sqlite", "SELECT value FROM meta WHERE key = 'schema_version'").stdout.hasPrefix("1"),
                "merge reads the other ledger without migrating it")
    }
}
