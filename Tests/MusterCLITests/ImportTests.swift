import Foundation
import Testing

/// `muster import` end to end, on files shaped like the exports it recognises.
/// Every person here is invented; addresses use .example domains.
@Suite struct ImportTests {
    static let ledger = "campaigns/fair-rates/ledger.sqlite"

    /// The personal data and time of every signature, in ledger order.
    func signatures(_ box: Sandbox) throws -> [String] {
        let result = try box.sqlite(Self.ledger, "SELECT e.at || ' ' || e.body || ' ' || coalesce(p.data, '-') FROM entries e LEFT JOIN personal p ON p.seq = e.seq WHERE e.kind = 'signature' ORDER BY e.seq")
        return result.stdout.split(separator: "\n").map(String.init)
    }

    func importing(_ csv: String, _ extra: [String] = [], file: String = "in.csv", box: Sandbox? = nil) throws -> (Sandbox, RunResult) {
        let box = try box ?? Sandbox.withCampaign()
        try box.write(file, csv)
        let result = try box.run(["import", file, "--json"] + extra, environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        return (box, result)
    }

    @Test func plainSheet() throws {
        let (box, result) = try importing("""
            name,email,region,comment
            Ana Lima,ana@example.org,Lyon,"Fair pay, now"
            Bo Chen,bo@example.org,Paris,

            """)
        #expect(result.status == 0, "\(result)")
        let json = try result.json()
        #expect(json["added"] as? Int == 2)
        #expect(json["duplicates"] as? Int == 0)
        #expect(json["rejected"] as? Int == 0)
        let rows = try signatures(box)
        #expect(rows == [
            #"2026-11-26T12:00:00.000Z {"fields":{"region":"Lyon"},"source":"import"} {"comment":"Fair pay, now","email":"ana@example.org","name":"Ana Lima"}"#,
            #"2026-11-26T12:00:00.000Z {"fields":{"region":"Paris"},"source":"import"} {"email":"bo@example.org","name":"Bo Chen"}"#,
        ])
        #expect(try box.run(["verify"]).status == 0)
    }

    /// Action Network's people export: first_name, last_name, email, zip_code, can2_… columns.
    @Test func actionNetworkExport() throws {
        let (box, result) = try importing("""
            first_name,last_name,email,zip_code,can2_country,can2_state_abbreviated,can2_subscription_status,region,created_date\r
            Ana,Lima,ana@example.org,69001,FR,,subscribed,Lyon,2026-10-02 09:15:00\r
            Bo,,bo@example.org,75001,FR,,subscribed,paris,2026-10-03T10:00:00+02:00\r

            """, ["--by", "Sam"])
        #expect(result.status == 0, "\(result)")
        let json = try result.json()
        #expect(json["added"] as? Int == 2)
        #expect((json["ignored_columns"] as? [String]) == ["zip_code", "can2_country", "can2_state_abbreviated", "can2_subscription_status"])
        let rows = try signatures(box)
        #expect(rows == [
            #"2026-10-02T09:15:00.000Z {"collector":"Sam","fields":{"region":"Lyon"},"source":"import"} {"email":"ana@example.org","name":"Ana Lima"}"#,
            #"2026-10-03T08:00:00.000Z {"collector":"Sam","fields":{"region":"paris"},"source":"import"} {"email":"bo@example.org","name":"Bo"}"#,
        ])
    }

    /// Change.org's signature download: Name, Email, City, Country, Signed On, Comment.
    @Test func changeOrgExport() throws {
        let csv = "\u{FEFF}Name,Email,City,State,Postal Code,Country,Signed On,Comment,Region\n"
            + "Chidi Okafor,CHIDI@Example.ORG,Lille,,59000,FR,2026-10-05,\"I translate for a living.\nPlease act.\",Lille\n"
            + "Dana Weiß,dana@exämple.example,Lyon,,69002,FR,2026-10-06,,Lyon\n"
        let (box, result) = try importing(csv)
        #expect(result.status == 0, "\(result)")
        let json = try result.json()
        // A comment may hold line breaks (issue 10 item 12): both rows go in, nothing is rejected.
        #expect(json["added"] as? Int == 2)
        #expect(json["rejected"] as? Int == 0)
        #expect(!box.exists("in.rejects.csv"))
        let rows = try signatures(box)
        #expect(rows == [
            #"2026-10-05T00:00:00.000Z {"fields":{"region":"Lille"},"source":"import"} {"comment":"I translate for a living.\nPlease act.","email":"CHIDI@Example.ORG","name":"Chidi Okafor"}"#,
            #"2026-10-06T00:00:00.000Z {"fields":{"region":"Lyon"},"source":"import"} {"email":"dana@exämple.example","name":"Dana Weiß"}"#,
        ])
    }

    /// Issue 10 item 12: a Google Forms response sheet (downloaded as CSV: CRLF between rows)
    /// whose "why are you signing" answers have paragraphs, 300 of 317 rows. Every row goes
    /// in with its paragraphs (as LF), and a bad row after the multiline cells is reported
    /// on its physical line, with the column's value still refused where it must be.
    @Test func googleFormsParagraphCommentsAreAcceptedAndLinesStayPhysical() throws {
        var csv = "Timestamp,Email Address,Your full name,Your town or region,Why are you signing?,Keep me informed about this campaign\r\n"
        var line = 2
        var expectedComments: [String: String] = [:]
        for index in 0..<317 {
            let breaks = ["\n", "\r\n", "\r"][index % 3]
            var comment = ""
            if index < 300 {
                comment = "Paragraph one from signer \(index), \"quoted\", with a comma.\(breaks)\(breaks)Paragraph two\(breaks)=and a third line"
                expectedComments["s\(index)@example.org"] = comment.replacingOccurrences(of: breaks, with: "\n")
                line += 4
            } else {
                line += 1
            }
            csv += "11/\(index % 25 + 1)/2026 9:05:00,s\(index)@example.org,Signer \(index),Lyon,\"\(comment.replacingOccurrences(of: "\"", with: "\"\""))\",Yes\r\n"
        }
        let badEmailLine = line
        csv += "11/2/2026 10:00:00,not-an-address,Bad Address,Lyon,\"Two\r\nlines\",Yes\r\n"
        line += 2
        let tabLine = line
        csv += "11/2/2026 10:01:00,tab@example.org,Tab Comment,Lyon,\"one\ttwo\r\nthree\",Yes\r\n"
        line += 2
        let nameLine = line
        csv += "11/2/2026 10:02:00,name@example.org,\"Two\r\nLines\",Lyon,\"ok\",Yes\r\n"
        let (box, result) = try importing(csv)
        #expect(result.status == 0, "\(result)")
        let json = try result.json()
        #expect(json["rows"] as? Int == 320)
        #expect(json["added"] as? Int == 317)
        #expect(json["rejected"] as? Int == 3)
        let rejects = try String(contentsOf: box.path("in.rejects.csv"), encoding: .utf8)
        #expect(rejects.contains("\r\n\(badEmailLine),email 'not-an-address' has no @,"), "\(rejects.suffix(600))")
        #expect(rejects.contains("\r\n\(tabLine),comment contains a tab at character 4; a comment may hold line breaks but no other control character,"), "\(rejects.suffix(600))")
        #expect(rejects.contains("\r\n\(nameLine),name contains a carriage return (CR) at character 4; use a single line of plain text,"), "\(rejects.suffix(600))")
        let exported = try box.run(["export", "--format", "jsonl", "--fields", "email,comment"])
        #expect(exported.status == 0)
        var seen = 0
        for row in exported.stdout.split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any])
            let email = try #require(object["email"] as? String)
            if let expected = expectedComments[email] {
                #expect(object["comment"] as? String == expected)
                seen += 1
            } else {
                #expect(object["comment"] is NSNull, "\(row)")
            }
        }
        #expect(seen == 300)
        #expect(try box.run(["verify"]).status == 0)
    }

    /// Google Forms' response sheet: Timestamp, Email Address, then the questions as headers.
    @Test func googleFormsExport() throws {
        let (box, result) = try importing("""
            Timestamp\tEmail Address\tYour full name\tYour town or region\tKeep me informed about this campaign
            11/2/2026 14:03:22\tana@example.org\tAna Lima\tLyon\tYes
            11/3/2026 9:05:00\tbo@example.org\tBo Chen\tParis\t

            """)
        #expect(result.status == 0, "\(result)")
        #expect(try result.json()["added"] as? Int == 2)
        #expect(try result.json()["delimiter"] as? String == "tab")
        let rows = try signatures(box)
        #expect(rows == [
            #"2026-11-02T14:03:22.000Z {"consent":["updates"],"fields":{"region":"Lyon"},"source":"import"} {"email":"ana@example.org","name":"Ana Lima"}"#,
            #"2026-11-03T09:05:00.000Z {"fields":{"region":"Paris"},"source":"import"} {"email":"bo@example.org","name":"Bo Chen"}"#,
        ])
    }

    @Test func semicolonsAndExplicitMapping() throws {
        let (box, result) = try importing("""
            Qui;Adresse;Ville;Source
            Ana Lima;ana@example.org;Lyon;stall
            Bo Chen;bo@example.org;Paris;

            """, ["--map", "Qui=name", "--map", "Adresse=email", "--map", "Ville=region", "--source", "paper"])
        #expect(result.status == 0, "\(result)")
        #expect(try result.json()["added"] as? Int == 2)
        let rows = try signatures(box)
        #expect(rows[0].contains(#""source":"stall""#))
        #expect(rows[1].contains(#""source":"paper""#))
        let unknown = try box.run(["import", "in.csv", "--map", "Qui=nickname"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("--map: unknown field 'nickname'"), "\(unknown)")
        let missing = try box.run(["import", "in.csv", "--map", "Whom=name"])
        #expect(missing.status == 64)
    }

    @Test func duplicatesInTheFileAndAgainstTheLedgerAreCountedAndARerunChangesNothing() throws {
        let box = try Sandbox.withCampaign()
        try #require(box.run(["sign", "--name", "Ana Lima", "--email", "ana@example.org", "--field", "region=Lyon"]).status == 0)
        let csv = """
            name,email,region
            Ana Again,ANA@example.org,Lyon
            Bo Chen,bo@example.org,Paris
            Bo Twice, bo@EXAMPLE.org ,Paris
            No Email,,Paris
            Cy Dee,cy@example.org,Lille

            """
        let (_, first) = try importing(csv, box: box)
        #expect(first.status == 0, "\(first)")
        let json = try first.json()
        #expect(json["added"] as? Int == 2)
        #expect(json["duplicates"] as? Int == 2)
        #expect(json["rejected"] as? Int == 1)
        #expect(json["count"] as? Int == 3)
        let rejects = try Data(contentsOf: box.path("in.rejects.csv"))
        let (_, second) = try importing(csv, box: box)
        let again = try second.json()
        #expect(again["added"] as? Int == 0)
        #expect(again["duplicates"] as? Int == 4)
        #expect(again["rejected"] as? Int == 1)
        #expect(again["count"] as? Int == 3)
        #expect(try Data(contentsOf: box.path("in.rejects.csv")) == rejects)
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func rejectedRowsGoToTheRejectsFileAndTheImportStillSucceeds() throws {
        let (box, result) = try importing("""
            name,email,region,signed_at
            Good One,good@example.org,Lyon,
            ,nameless@example.org,Lyon,
            Bad Mail,bad.example.org,Lyon,
            No Region,noregion@example.org,,
            Future,future@example.org,Lyon,2030-01-01
            Garbled,garbled@example.org,Lyon,yesterday
            Extra,extra@example.org,Lyon,,surplus
            "Eve\u{1B}[2J",eve@example.org,Lyon,

            """, ["--rejects", "bad-rows.csv"])
        #expect(result.status == 0, "\(result)")
        let json = try result.json()
        #expect(json["added"] as? Int == 1)
        #expect(json["rejected"] as? Int == 7)
        let rejects = try String(contentsOf: box.path("bad-rows.csv"), encoding: .utf8)
        #expect(rejects.split(separator: "\r\n").map(String.init) == [
            "line,reason,name,email,region,signed_at",
            "3,name is required,,nameless@example.org,Lyon,",
            "4,email 'bad.example.org' has no @,Bad Mail,bad.example.org,Lyon,",
            "5,region is required,No Region,noregion@example.org,,",
            "6,signed_at '2030-01-01' is in the future,Future,future@example.org,Lyon,2030-01-01",
            "7,signed_at 'yesterday' is not a date and time such as 2026-11-26T14:03:00Z,Garbled,garbled@example.org,Lyon,yesterday",
            "8,the row has 5 columns; the header has 4,Extra,extra@example.org,Lyon,,surplus",
            "9,name contains the control character U+001B at character 4; use a single line of plain text,Eve\u{1B}[2J,eve@example.org,Lyon,",
        ])
        let attributes = try FileManager.default.attributesOfItem(atPath: box.path("bad-rows.csv").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // The text summary says the import went through, without echoing the file's values.
        try box.write("again.csv", "name,email,region\nBad Mail,bad.example.org,Lyon\n")
        let text = try box.run(["import", "again.csv"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("the import went through; 1 rejected row is in"), "\(text)")
        #expect(text.stdout.contains("1× email '…' has no @"), "\(text)")
        #expect(!text.stdout.contains("bad.example.org"))
    }

    @Test func dryRunWritesNothing() throws {
        let (box, result) = try importing("name,email,region\nAna,ana@example.org,Lyon\nBad,bad,Lyon\nAna,ana@example.org,Lyon\n", ["--dry-run"])
        #expect(result.status == 0, "\(result)")
        let json = try result.json()
        #expect(json["added"] as? Int == 1)
        #expect(json["duplicates"] as? Int == 1)
        #expect(json["rejected"] as? Int == 1)
        #expect(json["dry_run"] as? Bool == true)
        #expect(!box.exists(Self.ledger))
        #expect(!box.exists("in.rejects.csv"))
        // With a ledger: unchanged, byte for byte.
        try #require(box.run(["sign", "--name", "Bo", "--email", "bo@example.org", "--field", "region=Lyon"]).status == 0)
        let head = try box.run(["verify", "--json"]).json()["head"] as? String
        let again = try box.run(["import", "in.csv", "--dry-run", "--json"])
        #expect(try again.json()["count"] as? Int == 1)
        #expect(try box.run(["verify", "--json"]).json()["head"] as? String == head)
        #expect(try box.run(["verify", "--json"]).json()["count"] as? Int == 1)
    }

    @Test func embeddedNewlinesKeepLineNumbersPhysical() throws {
        let (box, result) = try importing("name,email,region,notes\r\nAna,ana@example.org,Lyon,\"line one\r\nline two\r\nline three\"\r\nBad,bad,Lyon,\r\n")
        #expect(result.status == 0, "\(result)")
        #expect(try result.json()["added"] as? Int == 1)
        let rejects = try String(contentsOf: box.path("in.rejects.csv"), encoding: .utf8)
        #expect(rejects.contains("\r\n5,email 'bad' has no @,"), "\(rejects)")
    }

    // MARK: - Files that cannot be read: exit 65, the line, nothing written

    func expectRefused(_ bytes: [UInt8], message: String) throws {
        let box = try Sandbox.withCampaign()
        try #require(box.run(["sign", "--name", "Zed", "--email", "zed@example.org", "--field", "region=Lyon"]).status == 0)
        let head = try box.run(["verify", "--json"]).json()["head"] as? String
        try Data(bytes).write(to: box.path("bad.csv"))
        let result = try box.run(["import", "bad.csv"])
        #expect(result.status == 65, "\(result)")
        #expect(result.stderr.hasPrefix("muster: error: \(box.path("bad.csv").path):"), "\(result)")
        #expect(result.stderr.contains(message), "\(result)")
        #expect(result.stderr.hasSuffix("; nothing was imported\n"), "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(!box.exists("bad.rejects.csv"))
        let verify = try box.run(["verify", "--json"]).json()
        #expect(verify["count"] as? Int == 1)
        #expect(verify["head"] as? String == head)
    }

    static let goodRows = Array("name,email,region\nAna,ana@example.org,Lyon\nBo,bo@example.org,Lyon\n".utf8)

    @Test func invalidUTF8() throws {
        try expectRefused(Self.goodRows + Array("Cy".utf8) + [0xC3, 0x28] + Array(",cy@example.org,Lyon\n".utf8),
                          message: "bad.csv:4: invalid UTF-8 (byte 0xC3) in column 1; save the file as UTF-8 and try again")
        // Latin-1, as an old spreadsheet might save it.
        try expectRefused(Array("name,email,region\n".utf8) + [0x4C, 0xE9, 0x61] + Array(",lea@example.org,Lyon\n".utf8),
                          message: "bad.csv:2: invalid UTF-8 (byte 0xE9) in column 1")
    }

    @Test func unterminatedQuote() throws {
        try expectRefused(Self.goodRows + Array("\"Cy,cy@example.org,Lyon\nDee,dee@example.org,Lyon\n".utf8),
                          message: "bad.csv:4: a quoted field opened on line 4 is never closed (unterminated quote)")
    }

    @Test func oneMebibyteField() throws {
        try expectRefused(Self.goodRows + Array("Cy,".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 1_048_576) + Array(",Lyon\n".utf8),
                          message: "bad.csv:4: a field of 1 MiB or more (column 2, starting on line 4)")
        // The same in quotes, never closed: refused at the limit, not at the end of the file.
        try expectRefused(Self.goodRows + Array("Cy,\"".utf8) + [UInt8](repeating: UInt8(ascii: "\n"), count: 1_100_000),
                          message: "a field of 1 MiB or more (column 2, starting on line 4)")
    }

    @Test func tenThousandColumns() throws {
        try expectRefused(Self.goodRows + Array((String(repeating: "x,", count: 9_999) + "x\n").utf8),
                          message: "bad.csv:4: a row with more than 9999 columns; is this a CSV file?")
    }

    @Test func emptyFileAndMissingColumns() throws {
        let box = try Sandbox.withCampaign()
        try box.write("empty.csv", "")
        let empty = try box.run(["import", "empty.csv"])
        #expect(empty.status == 65)
        #expect(empty.stderr.contains("empty.csv is empty"))
        try box.write("noemail.csv", "name,region\nAna,Lyon\n")
        let noEmail = try box.run(["import", "noemail.csv"])
        #expect(noEmail.status == 65)
        #expect(noEmail.stderr.contains("no email column: the header is name, region; name it with --map COLUMN=email"))
        let missing = try box.run(["import", "absent.csv"])
        #expect(missing.status == 65)
        #expect(missing.stderr.contains("cannot read"))
        #expect(!box.exists(Self.ledger))
    }

    /// kill -9 in the middle of a 200,000-row import: the ledger holds all of it or none
    /// of it, verifies, and a rerun ends in the same state as an uninterrupted import.
    @Test func killedImportIsAllOrNothingAndARerunCompletesIt() throws {
        let box = try Sandbox.withCampaign()
        var csv = "name,email,region\n"
        csv.reserveCapacity(200_000 * 40)
        for index in 0..<200_000 { csv += "Signer \(index),signer\(index)@bench.example,Lyon\n" }
        try box.write("big.csv", csv)
        let process = try box.start(["import", "big.csv"])
        // Wait until the import is writing (its write-ahead log grows), then kill it.
        let wal = box.path(Self.ledger + "-wal").path
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let size = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
            if size > 2_000_000 || !process.isRunning { break }
            usleep(20_000)
        }
        let killedMidway = process.isRunning
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        // A big import into an empty ledger rebuilds the one-signature-per-signer index
        // inside its transaction: killed, it leaves the index as it was.
        let index = "SELECT sql FROM sqlite_schema WHERE name = 'entries_one_signature_per_signer'"
        let indexSQL = "CREATE UNIQUE INDEX entries_one_signature_per_signer ON entries(fingerprint) WHERE kind = 'signature'"
        #expect(try box.sqlite(Self.ledger, index).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == indexSQL)
        let verify = try box.run(["verify", "--json"]).json()
        #expect(verify["ok"] as? Bool == true)
        let count = verify["count"] as? Int ?? -1
        #expect(count == 0 || count == 200_000, "count after kill -9: \(count)")
        if killedMidway { #expect(count == 0) }
        let rerun = try box.run(["import", "big.csv", "--json"])
        #expect(rerun.status == 0, "\(rerun)")
        #expect(try rerun.json()["added"] as? Int == 200_000 - count)
        #expect(try rerun.json()["count"] as? Int == 200_000)
        let after = try box.run(["verify", "--json"]).json()
        #expect(after["ok"] as? Bool == true)
        #expect(after["count"] as? Int == 200_000)
        #expect(try box.sqlite(Self.ledger, index).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == indexSQL)
        // The rebuilt index is in use: signing again with a known address is a duplicate.
        let again = try box.run(["sign", "--name", "Again", "--email", "SIGNER7@bench.example", "--field", "region=Lyon", "--json"])
        #expect(try again.json()["status"] as? String == "duplicate", "\(again)")
        #expect(try box.run(["verify", "--json"]).json()["count"] as? Int == 200_000)
        #expect(try box.sqlite(Self.ledger, "PRAGMA integrity_check").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
    }

    /// Issue 10: a rejects file left half-written by a killed import of an older muster
    /// (`.<name>.rejects.csv.tmp-<pid>`, names and addresses in it) is deleted by the next
    /// import once that process is gone; one of a process still running is left alone.
    /// A dry run neither leaves files in $TMPDIR nor creates a ledger.
    @Test func leftoverRejectsOfADeadProcessAreDeletedAndDryRunsLeaveNoTemporaryFiles() throws {
        let box = try Sandbox.withCampaign()
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let alive = ProcessInfo.processInfo.processIdentifier
        try box.write(".in.rejects.csv.tmp-\(dead.processIdentifier)", "line,reason,name,email\r\n2,bad,Left Over,left@over.example\r\n")
        try box.write(".in.rejects.csv.tmp-\(alive)", "someone else's, still being written\r\n")
        try FileManager.default.createDirectory(at: box.path("tmp"), withIntermediateDirectories: true)
        let csv = "name,email,region\nAna Lima,ana@example.org,Lyon\nNo Address,,Paris\n"
        try box.write("in.csv", csv)

        let dry = try box.run(["import", "in.csv", "--dry-run", "--json"], environment: ["TMPDIR": box.path("tmp").path])
        #expect(dry.status == 0, "\(dry)")
        #expect(try dry.json()["added"] as? Int == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.path("tmp").path) == [], "a dry run leaves nothing in TMPDIR")
        #expect(!box.exists("campaigns/fair-rates/ledger.sqlite"), "nor a ledger")
        #expect(!box.exists(".in.rejects.csv.tmp-\(dead.processIdentifier)"), "the dead process's leftover is gone")
        #expect(box.exists(".in.rejects.csv.tmp-\(alive)"), "a running process's file is left alone")

        let (_, result) = try importing(csv, box: box)
        #expect(result.status == 0, "\(result)")
        let rejects = try String(contentsOf: box.path("in.rejects.csv"), encoding: .utf8)
        #expect(rejects.contains("No Address") && !rejects.contains("Left Over"), "\(rejects)")
        // The rejects file is private, and nothing else was left beside it.
        let mode = (try FileManager.default.attributesOfItem(atPath: box.path("in.rejects.csv").path)[.posixPermissions] as? Int) ?? 0
        #expect(mode == 0o600)
        let names = try FileManager.default.contentsOfDirectory(atPath: box.root.path).filter { $0.contains(".tmp-") }
        #expect(names == [".in.rejects.csv.tmp-\(alive)"], "\(names)")
        // Replacing an existing rejects file works too (the unnamed file is linked, then renamed over it).
        let (_, again) = try importing(csv, box: box)
        #expect(again.status == 0, "\(again)")
        #expect(try String(contentsOf: box.path("in.rejects.csv"), encoding: .utf8) == rejects)
    }
}
