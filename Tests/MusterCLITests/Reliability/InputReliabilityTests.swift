import Foundation
import Testing

/// Reliability rows for hostile input: header injection, HTML injection, spreadsheet
/// formulas, paths, YAML and Unicode.
@Suite struct InputReliabilityTests {
    static let campaign = "campaigns/fair-rates"

    /// Every file under `root`, relative, sorted.
    static func tree(_ root: URL) -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        var paths: [String] = []
        while let path = enumerator?.nextObject() as? String { paths.append(path) }
        return paths.sorted()
    }

    @Test(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd"))
    func headerInjectionIsRefusedOrEncodedAndTheSinkSeesNoExtraHeaderOrRecipient() throws {
        let box = try MailTests.workspace(signers: [("Eve Bcc: x@evil.test", "eve@example.org", true), ("\"Ana\", <Lima>; x", "ana@example.org", true)])
        var refused = 0
        // On the command line: CR, LF in names, fields and addresses.
        for arguments in [["--name", "Eve\r\nBcc: x@evil.test", "--email", "e1@example.org"],
                          ["--name", "Eve\nBcc: x@evil.test", "--email", "e2@example.org"],
                          ["--name", "Eve", "--email", "e3@example.org\r\nRCPT TO:<x@evil.test>"],
                          ["--name", "Eve", "--email", "e4@example.org>\r\nRCPT TO:<x@evil.test"]] {
            let result = try box.run(["sign"] + arguments + ["--field", "region=Lyon"])
            #expect(result.status == 65, "\(result)")
            refused += 1
        }
        let field = try box.run(["sign", "--name", "Eve", "--email", "e5@example.org", "--field", "region=Lyon\r\nBcc: x@evil.test"])
        #expect(field.status == 65, "\(field)")
        refused += 1
        // In an imported sheet: CR, LF and NUL inside quoted cells.
        try box.write("sheet.csv", "name,email,region\n\"Eve\r\nBcc: x@evil.test\",i1@example.org,Lyon\n\"Eve\u{0}\",i2@example.org,Lyon\nEve,\"i3@example.org\nRCPT TO:<x@evil.test>\",Lyon\nOk,ok@example.org,\"Lyon\rX\"\n")
        let imported = try box.run(["import", "sheet.csv", "--json"])
        #expect(imported.status == 0, "\(imported)")
        #expect(try imported.json()["added"] as? Int == 0)
        #expect(try imported.json()["rejected"] as? Int == 4)
        refused += 4
        // In a template: a subject and a Reply-To with an encoded line break.
        try box.write("\(Self.campaign)/emails/evil.md", "---\nsubject: \"Hello\\r\\nBcc: x@evil.test\"\naudience: signers\nreply_to: \"a@example.org\\nBcc: x@evil.test\"\n---\nHi {{name}}\n")
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        #expect(check.stderr.contains("evil.md"), "\(check)")
        let relay = try TestRelay(in: box)
        let environment = ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"]
        let evil = try box.run(["mail", "send", "evil", "--yes"], environment: environment)
        #expect(evil.status != 0, "\(evil)")
        // A signer's name changed behind muster's back (sqlite3) to hold CR LF.
        try #require(try box.sqlite("\(Self.campaign)/ledger.sqlite",
            "UPDATE personal SET data = json_set(data, '$.name', 'Mallory' || char(13, 10) || 'Bcc: x@evil.test') WHERE seq = 2").status == 0)
        let send = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: environment)
        #expect(send.status == 0 || send.status == 1, "\(send)")
        let received = try relay.received()
        #expect(received.map(\.to) == [["eve@example.org"]], "one recipient, the real one: \(received.map(\.to))")
        for message in received {
            let headerBlock = message.raw.components(separatedBy: "\r\n\r\n").first ?? ""
            #expect(!headerBlock.lowercased().contains("\r\nbcc:"), "no Bcc header")
            #expect(headerBlock.components(separatedBy: "\r\n").filter { $0.hasPrefix("To:") }.count == 1)
        }
        let tampered = try box.run(["mail", "status", "thanks", "--details"])
        #expect(tampered.stdout.contains("failed: entry 2"), "the tampered row failed, alone: \(tampered)")
        Reliability.record("header injection", "\(refused) CR/LF/NUL values in names, fields and addresses refused at sign and import; CR/LF in subject and Reply-To refused by check and send; a name edited in the ledger to hold CR LF fails that one message; the sink saw 1 message, 1 recipient, no extra header")
    }

    @Test(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd"))
    func htmlInSignerFieldsIsEscapedInHTMLAndLiteralInText() throws {
        let name = "<script>alert(1)</script> {{campaign.title}}"
        let region = "<img src=x onerror=alert(1)>{{#campaign}}x{{/campaign}}"
        let box = try MailTests.workspace(signers: [])
        let sign = try box.run(["sign", "--name", name, "--email", "zoe@example.org", "--field", "region=\(region)", "--by", "<b>stall</b>"])
        #expect(sign.status == 0, "\(sign)")
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes"], environment: ["MUSTER_SMTP_URL": relay.url])
        #expect(send.status == 0, "\(send)")
        let message = try relay.parsed(0)
        #expect(!message.html.contains("<script>") && !message.html.contains("<img"), "\(message.html)")
        #expect(message.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(message.html)")
        #expect(message.html.contains("&lt;img src=x onerror=alert(1)&gt;"), "\(message.html)")
        #expect(message.text.contains(name), "literal in text: \(message.text)")
        #expect(message.text.contains(region), "literal in text: \(message.text)")
        #expect(message.html.contains("{{campaign.title}}") && message.html.contains("{{#campaign}}x{{/campaign}}"), "never rendered as a template")
        #expect(message.defects.isEmpty, "\(message.defects)")
        let html = try box.run(["report", "--format", "html"])
        #expect(html.status == 0)
        #expect(!html.stdout.contains("<script>alert") && !html.stdout.contains("<img src=x") && !html.stdout.contains("<b>stall</b>"), "the HTML report escapes too")
        Reliability.record("HTML injection", "<script>, <img onerror> and Mustache tags in a name, a field and a collector: escaped in the HTML part and the HTML report, literal in the text part, never rendered")
    }

    @Test func spreadsheetFormulasAreNeutralisedInCSVAndKeptInJSON() throws {
        let box = try Sandbox.withCampaign()
        let formulas = ["=HYPERLINK(\"http://evil.test\",\"x\")", "+1", "-1+2", "@SUM(1)", "=1+1", "\t=1", "\r=1"]
        var csv = "name,email,region\n"
        for (index, formula) in formulas.enumerated() {
            let quoted = "\"" + formula.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            csv += "\(quoted),f\(index)@example.org,\(quoted)\n"
        }
        try box.write("formulas.csv", csv)
        let imported = try box.run(["import", "formulas.csv", "--json"])
        #expect(imported.status == 0, "\(imported)")
        let added = try imported.json()["added"] as? Int ?? 0
        // Tab and CR are control characters: those rows are refused, and their rejects
        // file is itself spreadsheet-safe.
        #expect(added == 5, "\(imported)")
        let rejects = try String(contentsOf: box.path("formulas.rejects.csv"), encoding: .utf8)
        // Cells are quoted when they hold a CR, so look at each cell's first character
        // after its opening quote.
        let rejectCells = rejects.components(separatedBy: "\r\n").dropFirst().flatMap { $0.split(separator: ",") }
        #expect(rejects.contains("'\t=1") && rejects.contains("'\r=1"), "\(rejects)")
        for cell in rejectCells {
            let text = cell.hasPrefix("\"") ? cell.dropFirst() : cell[...]
            if let first = text.unicodeScalars.first, "=+@\t\r".unicodeScalars.contains(first) {
                Issue.record("rejects file cell left live: \(cell.debugDescription)")
            }
        }
        let export = try box.run(["export", "--format", "csv"])
        #expect(export.status == 0)
        let rows = export.stdout.components(separatedBy: "\r\n").filter { !$0.isEmpty }.dropFirst()
        #expect(rows.count == 5)
        for row in rows {
            // Every cell that began with = + - @ now begins with a single quote.
            let cells = row.split(separator: ",").map { $0.hasPrefix("\"") ? String($0.dropFirst()) : String($0) }
            for cell in cells where ["=", "+", "-", "@"].contains(cell.first.map(String.init) ?? "") {
                Issue.record("formula cell left live: \(cell) in \(row)")
            }
        }
        let jsonl = try box.run(["export", "--format", "jsonl"]).stdout
        let names = jsonl.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.compactMap { $0["name"] as? String }
        #expect(Set(names) == Set(formulas.prefix(5)), "JSON keeps the value as typed: \(names)")
        Reliability.record("spreadsheet formulas", "=HYPERLINK, +1, -1+2, @SUM(1), =1+1 imported then exported: every CSV cell starts with ', JSON keeps the value; tab- and CR-prefixed values refused as control characters (rejects file neutralised too)")
    }

    @Test func pathsInSlugsAndOutTargetsNeverEscape() throws {
        let box = try Sandbox.withCampaign()
        try #require(try box.run(["sign", "--name", "Ana", "--email", "ana@example.org", "--field", "region=Lyon"]).status == 0)
        let outside = box.root.deletingLastPathComponent().appendingPathComponent("muster-escape-\(UUID().uuidString)")
        let before = Self.tree(box.root)
        var refused = 0
        for slug in ["../x", "%2e%2e", "%2e%2e/x", "/tmp/muster-evil", "x/../../y", "\u{FF0E}\u{FF0E}", "a\u{FF0E}\u{FF0E}b", "..", ".", "x\u{0}y".replacingOccurrences(of: "\u{0}", with: "\u{1}"), outside.path] {
            let new = try box.run(["new", "--", slug])
            #expect(new.status == 64, "new \(slug): \(new)")
            let scoped = try box.run(["report", "-c", slug])
            #expect(scoped.status == 64, "-c \(slug): \(scoped)")
            refused += 2
        }
        for target in ["campaigns/fair-rates/ledger.sqlite", "campaigns/fair-rates/campaign.yaml", "./campaigns/../muster.yaml",
                       "campaigns/fair-rates/emails", "templates/campaign/petition.md", "campaigns/x\u{1}y"] {
            for command in [["export", "--out", target], ["report", "--out", target], ["mail", "send", "thank-you", "--dry-run", "--out", target]] {
                let result = try box.run(command)
                #expect(result.status == 64, "\(command): \(result)")
                refused += 1
            }
        }
        #expect(Self.tree(box.root) == before, "nothing written anywhere")
        #expect(!FileManager.default.fileExists(atPath: outside.path) && !FileManager.default.fileExists(atPath: "/tmp/muster-evil"))
        #expect(try box.run(["verify"]).status == 0)
        // A symbolic link does not get around it.
        try FileManager.default.createSymbolicLink(atPath: box.path("link").path, withDestinationPath: box.path("campaigns/fair-rates").path)
        let viaLink = try box.run(["export", "--out", "link/ledger.sqlite"])
        #expect(viaLink.status == 64, "\(viaLink)")
        #expect(try box.run(["verify"]).status == 0)
        // Outside muster's own files, --out writes the file named (`../` included: it is
        // the user's machine), and nothing else.
        let elsewhere = "../muster-report-\(UUID().uuidString).txt"
        let report = try box.run(["report", "--out", elsewhere])
        #expect(report.status == 0, "\(report)")
        #expect(FileManager.default.fileExists(atPath: box.path(elsewhere).path))
        try? FileManager.default.removeItem(at: box.path(elsewhere))
        #expect(Self.tree(box.root) == (before + ["link"]).sorted(), "nothing written in the workspace")
        Reliability.record("paths", "\(refused + 1) slugs and --out targets (../, %2e%2e, absolute, control characters, fullwidth dots, the ledger, manifests, templates, a symlink into a campaign) refused with exit 64; the workspace tree unchanged")
    }

    @Test func hostileYAMLIsRefusedQuicklyAndInLittleMemory() throws {
        let box = try Sandbox.withCampaign()
        let manifest = "\(Self.campaign)/campaign.yaml"
        let good = try String(contentsOf: box.path(manifest), encoding: .utf8)
        var laughs = ["a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
        for level in 1..<10 { laughs.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ",") + "]") }
        var huge = "title: x\ngoal: 10\nfields:\n"
        let entry = "  - name: f\n    label: \"" + String(repeating: "x", count: 90) + "\"\n"
        huge.reserveCapacity(101 << 20)
        while huge.utf8.count < 100 << 20 { huge += entry }
        let cases: [(String, String, String)] = [
            ("billion laughs", "title: x\ngoal: 10\n" + laughs.joined(separator: "\n") + "\nfields: *a9\n", "expands to more than"),
            ("10,000 nested brackets", "title: x\ngoal: 10\nx: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n", "nesting deeper than"),
            ("100 MB manifest", huge, "muster reads YAML files of at most"),
            ("tabs", "title: x\ngoal: 10\nfields:\n\t- name: region\n", "YAML syntax"),
            ("duplicate keys", "title: x\ngoal: 10\ntitle: y\n", "duplicate key 'title'"),
        ]
        var figures: [String] = []
        for (name, text, message) in cases {
            try box.write(manifest, text)
            let (result, seconds) = try Reliability.time {
                try Sandbox.run(URL(fileURLWithPath: "/usr/bin/time"), ["-f", "maxrss %M", MusterBinary.url.path, "check"], in: box.root)
            }
            #expect(result.status == 65, "\(name): \(result)")
            #expect(result.stderr.contains(message), "\(name): \(result.stderr.prefix(500))")
            let kilobytes = Int(result.stderr.components(separatedBy: "maxrss ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
            #expect(kilobytes > 0 && kilobytes < 100 * 1024, "\(name): peak memory \(kilobytes) KiB")
            figures.append("\(name) \(Reliability.seconds(seconds)), \(kilobytes / 1024) MiB")
        }
        try box.write(manifest, good)
        #expect(try box.run(["check"]).status == 0)
        Reliability.record("YAML", "all refused with exit 65 and a located error: " + figures.joined(separator: "; "))
    }

    @Test func unicodeVariantsAreOneSignerAndInvalidUTF8IsRefusedWithItsPosition() throws {
        let box = try Sandbox.withCampaign()
        let variants: [(String, String)] = [
            ("Jos\u{E9} Mu\u{F1}oz", "jos\u{E9}@b\u{FC}cher.example"),           // NFC
            ("Jose\u{301} Mun\u{303}oz", "jose\u{301}@bu\u{308}cher.example"),  // NFD
            ("José Muñoz", "JOSÉ@BÜCHER.EXAMPLE"),                              // upper case
            ("José Muñoz", "josé@xn--bcher-kva.example"),                        // the xn-- form
            ("José Muñoz", "  josé@Xn--Bcher-Kva.Example "),
        ]
        for (name, email) in variants {
            let result = try box.run(["sign", "--name", name, "--email", email, "--field", "region=Lyon"])
            #expect(result.status == 0, "\(result)")
        }
        #expect(try box.run(["verify", "--json"]).json()["count"] as? Int == 1, "one canonical signer")
        let exported = try box.run(["export", "--format", "jsonl"]).stdout
        #expect(exported.contains("\"name\":\"Jos\u{E9} Mu\u{F1}oz\""), "stored in NFC: \(exported)")

        // Invalid UTF-8 everywhere muster reads text.
        let bad = Data([0x4C, 0x79, 0xC3, 0x28, 0x6F, 0x6E])  // "Ly\xC3(on"
        var refused: [String] = []
        func expectRefused(_ what: String, _ result: RunResult, _ position: String) {
            #expect(result.status == 65, "\(what): \(result)")
            #expect(result.stderr.contains("UTF-8") && result.stderr.contains(position), "\(what): \(result.stderr)")
            refused.append(what)
        }
        var csv = Data("name,email,region\nAna,ana@example.org,".utf8); csv.append(bad); csv.append(Data("\n".utf8))
        try csv.write(to: box.path("bad.csv"))
        expectRefused("CSV", try box.run(["import", "bad.csv"]), "bad.csv:2: invalid UTF-8 (byte 0xC3) in column 3")
        /// Puts `prefix` + the bad bytes + `suffix` in `relative` (after the file's own
        /// text when `append`), runs `muster check`, then restores the file.
        func checkWithBadBytes(in relative: String, prefix: String, suffix: String = "\n", append: Bool = false,
                               what: String, position: String) throws {
            let url = box.path(relative)
            let original = try? Data(contentsOf: url)
            var bytes = append ? original ?? Data() : Data()
            bytes.append(Data(prefix.utf8)); bytes.append(bad); bytes.append(Data(suffix.utf8))
            try bytes.write(to: url)
            expectRefused(what, try box.run(["check"]), position)
            if let original { try original.write(to: url) } else { try FileManager.default.removeItem(at: url) }
        }
        try checkWithBadBytes(in: "\(Self.campaign)/campaign.yaml", prefix: "title: ", suffix: "\ngoal: 10\n", what: "manifest", position: "campaign.yaml:1:")
        try checkWithBadBytes(in: "\(Self.campaign)/emails/bad.md", prefix: "---\nsubject: Hi\naudience: signers\n---\nHello ", what: "email template", position: "bad.md:5:")
        try checkWithBadBytes(in: "\(Self.campaign)/petition.md", prefix: "", suffix: "", append: true, what: "petition", position: "petition.md:")
        try checkWithBadBytes(in: "muster.yaml", prefix: "sender: \"", suffix: " <a@example.org>\"\n", what: "muster.yaml", position: "muster.yaml:1:")
        // The kiosk needs a terminal: the bad bytes are typed into a pseudo-terminal.
        let session = try KioskDriver.run(box, steps: KioskDriver.start + [
            .send("Ana\r"), .expect("Email: "), .send("ana@example.org\r"), .expect("region: "), .bytes(Array(bad) + [0x0D]),
            .expect("that was not valid UTF-8 text (at byte 3); please type it again"), .send("\u{03}"), .expect("Name: "),
        ] + KioskDriver.finish)
        #expect(session.ok && session.status == 0, "kiosk: \(session)")
        refused.append("kiosk input")
        let argument = try box.run(["sign", "--name", String(decoding: bad, as: UTF8.self), "--email", "b@example.org", "--field", "region=Lyon"])
        expectRefused("command-line value", argument, "character 3")
        #expect(try box.run(["verify", "--json"]).json()["count"] as? Int == 1, "nothing invalid got in")
        Reliability.record("Unicode", "NFC, NFD, upper-case, IDN and xn-- spellings of one address: 1 signer, stored in NFC; invalid UTF-8 refused with its position in: " + refused.joined(separator: ", "))
    }

    /// Issue 10 item 12: multiline comments, hostile ones included, from a Google Forms-style
    /// export to every place a comment could go. Reports and mail never show a comment;
    /// exports carry it whole; a template cannot ask for it.
    @Test func multilineCommentsStayInTheirCellAndNeverReachAReportOrAHeader() throws {
        let box = try MailTests.workspace(signers: [])
        let hostile = "| a | table |\r\n|---|---|\r\n# Heading\r\n<script>alert(1)</script>\r\n\r\nBcc: x@evil.test\r\n=HYPERLINK(\"http://evil.example\")"
        var csv = "Timestamp,Email Address,Your full name,Region,Why are you signing?\r\n"
        let rows = Reliability.scale(full: 317, ci: 317)
        for index in 0..<rows {
            let comment = index % 20 == 0 ? hostile : "Signer \(index) says:\n\nparagraph two, \"quoted\"\r\nand three"
            csv += "11/2/2026 9:\(String(format: "%02d", index % 60)):00,c\(index)@example.org,Commenter \(index),Lyon,\"\(comment.replacingOccurrences(of: "\"", with: "\"\""))\"\r\n"
        }
        try box.write("forms.csv", csv)
        let started = Date()
        let imported = try box.run(["import", "forms.csv", "--json"], environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        let seconds = Date().timeIntervalSince(started)
        #expect(imported.status == 0, "\(imported)")
        #expect(try imported.json()["added"] as? Int == rows)
        #expect(try imported.json()["rejected"] as? Int == 0)
        // Reports: no comment text, so no line of it can break a table or inject markup.
        for format in ["text", "markdown", "html", "json"] {
            let report = try box.run(["report", "--format", format], environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
            #expect(report.status == 0, "\(format): \(report)")
            for needle in ["paragraph two", "# Heading", "<script>", "evil", "| a | table"] {
                #expect(!report.stdout.contains(needle), "\(format) shows a comment: \(needle)")
            }
        }
        // CSV export: each comment in one quoted, neutralised cell; the row count stays exact.
        let export = try box.run(["export", "--out", "all.csv"])
        #expect(export.status == 0, "\(export)")
        let reread = try Sandbox.withCampaign()
        try FileManager.default.copyItem(at: box.path("all.csv"), to: reread.path("all.csv"))
        let again = try reread.run(["import", "all.csv", "--json"], environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        #expect(again.status == 0, "\(again)")
        #expect(try again.json()["added"] as? Int == rows)
        #expect(try reread.run(["export", "--format", "jsonl", "--fields", "email,comment"]).stdout
                == (try box.run(["export", "--format", "jsonl", "--fields", "email,comment"]).stdout))
        // Mail: a template asking for {{comment}} is refused before anything is sent.
        try box.write("\(Self.campaign)/emails/echo.md", "---\nsubject: \"{{comment}}\"\naudience: signers\n---\nYou said {{comment}}\n")
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        #expect((check.stdout + check.stderr).contains("comment"), "\(check)")
        let send = try box.run(["mail", "send", "echo", "--dry-run", "--out", "eml"])
        #expect(send.status == 65, "\(send)")
        #expect(!box.exists("eml/00001.eml"))
        Reliability.record("multiline comments", "\(rows) Google Forms-style rows with paragraph comments (LF, CRLF; 1 in 20 a markdown table, heading, <script>, Bcc: line and formula) imported in \(Reliability.seconds(seconds)), all accepted; absent from text, markdown, html and json reports; CSV export → import gives the same comments; a {{comment}} template refused with exit 65")
    }

    /// Issue 10 item 12 on the command line: `sign --comment` takes paragraphs (exit 0, stored
    /// with LF); every other control character, and any line break outside the comment, is
    /// refused with exit 65 and nothing written.
    @Test func signTakesParagraphCommentsAndRefusesOtherControlsWithExit65() throws {
        let box = try Sandbox.withCampaign()
        let ok = try box.run(["sign", "--name", "Ana", "--email", "ana@example.org", "--field", "region=Lyon", "--comment=Line one\r\n\r\nLine two\r"])
        #expect(ok.status == 0, "\(ok)")
        #expect(try box.run(["export", "--format", "jsonl", "--fields", "comment"]).stdout == #"{"comment":"Line one\n\nLine two"}"# + "\n")
        let head = try box.run(["verify", "--json"]).json()["head"] as? String
        let cases: [([String], String)] = [
            (["--name", "Bo", "--comment=a\tb"], "comment contains a tab at character 2; a comment may hold line breaks but no other control character"),
            (["--name", "Bo", "--comment=ok\n\u{202E}gnp.exe"], "comment contains the control character U+202E at character 4; a comment may hold line breaks but no other control character"),
            (["--name", "Bo", "--comment=a\u{2029}b"], "comment contains the control character U+2029 at character 2; a comment may hold line breaks but no other control character"),
            (["--name", "Bo\nBcc: x@evil.test"], "name contains a line feed (LF) at character 3; use a single line of plain text"),
            (["--name", "Bo", "--by", "Sam\r\nX"], "collector (--by) contains a carriage return (CR) at character 4; use a single line of plain text"),
            (["--name", "Bo", "--source", "stall\n2"], "source contains a line feed (LF) at character 6; use a single line of plain text"),
        ]
        for (arguments, message) in cases {
            let result = try box.run(["sign", "--email", "bo@example.org", "--field", "region=Lyon"] + arguments)
            #expect(result.status == 65, "\(arguments): \(result)")
            #expect(result.stderr == "muster: error: \(message)\n", "\(arguments): \(result)")
        }
        let field = try box.run(["sign", "--name", "Bo", "--email", "bo@example.org", "--field", "region=Lyon\nNorth"])
        #expect(field.status == 65, "\(field)")
        let verify = try box.run(["verify", "--json"]).json()
        #expect(verify["count"] as? Int == 1)
        #expect(verify["head"] as? String == head)
    }
}
