import Foundation
import Testing

@Suite struct BadInputTests {
    @Test(arguments: ["../x", "%2e%2e", "/tmp/evil", "Fair", "a b", "", "-x", "x/../y", "ｆａｉｒ", "a\u{FF0E}\u{FF0E}b", String(repeating: "a", count: 64)])
    func badSlugsAreRefusedBeforeAnyPathIsBuilt(slug: String) throws {
        let box = try Sandbox.withCampaign()
        let before = try FileManager.default.contentsOfDirectory(atPath: box.path("campaigns").path).sorted()
        let result = try box.run(["new", "--", slug])
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains("is not a valid campaign slug"), "\(result)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.path("campaigns").path).sorted() == before)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/evil"))
        #expect(!FileManager.default.fileExists(atPath: box.root.appendingPathComponent("x").path))
        let scoped = try box.run(["report", "-c", slug])
        #expect(scoped.status == 64, "\(scoped)")
    }

    @Test(arguments: [
        (["--name", "Eve\r\nBcc: x@evil.test", "--email", "eve@example.org", "--field", "region=Lyon"], "name contains a carriage return (CR) at character 4; use a single line of plain text"),
        (["--name", "", "--email", "eve@example.org", "--field", "region=Lyon"], "name is required"),
        (["--name", "Eve", "--email", "eve@example.org\nRCPT TO:<x@evil.test>", "--field", "region=Lyon"], "email 'eve@example.org\\nRCPT TO:<x@evil.test>' contains a line break or control character"),
        (["--name", "Eve", "--email", "eve.example.org", "--field", "region=Lyon"], "email 'eve.example.org' has no @"),
        (["--name", "Eve", "--email", "eve@example.org"], "region is required"),
        (["--name", "Eve", "--email", "eve@example.org", "--field", "region=Lyon", "--field", "colour=red"], "unknown field 'colour'; this campaign's fields are region"),
        (["--name", "Eve", "--email", "eve@example.org", "--field", "region=Lyon", "--consent", "spam"], "unknown consent 'spam'; this campaign asks for updates"),
        (["--name", "Eve", "--email", "eve@example.org", "--field", "region=Ly\u{1B}[2Jon"], "region contains the control character U+001B at character 3; use a single line of plain text"),
        (["--name", "Eve\u{202E}gnp.exe", "--email", "eve@example.org", "--field", "region=Lyon"], "name contains the control character U+202E at character 4; use a single line of plain text"),
        (["--name", String(repeating: "x", count: 10_000), "--email", "eve@example.org", "--field", "region=Lyon"], "name is 10000 characters long; the limit is 200"),
    ])
    func badSignaturesExit65AndWriteNothing(arguments: [String], message: String) throws {
        let box = try Sandbox.withCampaign()
        let result = try box.run(["sign"] + arguments)
        #expect(result.status == 65, "\(result)")
        #expect(result.stderr == "muster: error: \(message)\n")
        #expect(result.stdout.isEmpty)
        #expect(!box.exists("campaigns/fair-rates/ledger.sqlite"), "nothing written")
    }

    @Test func optionValuesAreCheckedCaseInsensitively() throws {
        let box = try Sandbox.withCampaign(manifest: """
            title: Fair rates
            goal: 10
            fields:
              - name: profession
                options: [translator, interpreter]
            """)
        let wrong = try box.run(["sign", "--name", "Eve", "--email", "eve@example.org", "--field", "profession=lawyer"])
        #expect(wrong.status == 65)
        #expect(wrong.stderr == "muster: error: profession 'lawyer' is not one of: translator, interpreter\n")
        #expect(try box.run(["sign", "--name", "Eve", "--email", "eve@example.org", "--field", "profession=Translator"]).status == 0)
    }

    @Test func usageErrorsExit64() throws {
        let box = try Sandbox.withCampaign()
        let missing = try box.run(["sign", "--name", "Eve"])
        #expect(missing.status == 64)
        #expect(missing.stderr.contains("missing --email"))
        let malformed = try box.run(["sign", "--name", "Eve", "--email", "e@example.org", "--field", "region"])
        #expect(malformed.status == 64)
        #expect(malformed.stderr.contains("--field takes KEY=VALUE"))
        #expect(try box.run(["new", "x", "--deadline", "soon"]).status == 65)
        #expect(try box.run(["new", "x", "--goal", "0"]).status == 64, "a numeric option out of its range is a usage error (issue 10, item 9)")
        #expect(!box.exists("campaigns/x"))
    }

    @Test func manifestErrorsAreAllReportedWithPositions() throws {
        let box = try Sandbox.withCampaign(manifest: """
            title: Fair rates
            goal: -3
            deadline: 2027-02-30
            milestones:
              - at: many
            fields:
              - name: email
            unknown_thing: 1
            """)
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        let lines = check.stderr.split(separator: "\n").map(String.init)
        #expect(lines == [
            "campaigns/fair-rates/campaign.yaml:8:1: warning: unknown key 'unknown_thing' in the manifest; it is ignored",
            "campaigns/fair-rates/campaign.yaml:2:7: error: 'goal' must be a whole number above 0, not '-3'",
            "campaigns/fair-rates/campaign.yaml:3:11: error: 'deadline' must be a date like 2027-03-31, not '2027-02-30'",
            "campaigns/fair-rates/campaign.yaml:5:9: error: 'at' must be a whole number above 0, not 'many'",
            "campaigns/fair-rates/campaign.yaml:7:11: error: 'email' is built into every signature; choose another field name",
            "muster: error: 4 errors found",
        ])
        let json = try box.run(["check", "--json"])
        #expect(json.status == 65)
        #expect(try json.json()["ok"] as? Bool == false)
        #expect((try json.json()["errors"] as? [Any])?.count == 4)

        let sign = try box.run(["sign", "--name", "Eve", "--email", "eve@example.org"])
        #expect(sign.status == 65)
        #expect(sign.stderr.hasPrefix("muster: error: campaigns/fair-rates/campaign.yaml has 4 errors; fix them and run again\n"))
    }

    @Test func passwordsInTheWorkspaceFileAreRefused() throws {
        let box = try Sandbox.withCampaign()
        try box.write("muster.yaml", "sender: \"A <a@example.org>\"\nsmtp:\n  url: smtp://localhost:25\n  password: hunter2\n")
        let check = try box.run(["check"])
        #expect(check.status == 65)
        #expect(check.stderr.contains("muster.yaml:4:3: error: never store the SMTP password in muster.yaml"))
        #expect(!check.stderr.contains("hunter2"))
    }

    @Test func brokenPetitionAndTemplateAreReported() throws {
        let box = try Sandbox.withCampaign()
        try Data([0x23, 0x20, 0xC3, 0x28]).write(to: box.path("campaigns/fair-rates/petition.md"))
        try box.write("templates/campaign/petition.md.mustache", "# {{title}\n")
        let check = try box.run(["check"])
        #expect(check.status == 65)
        #expect(check.stderr.contains("campaigns/fair-rates/petition.md:1:3: error: invalid UTF-8 (byte 0xC3)"))
        #expect(check.stderr.contains("templates/campaign/petition.md.mustache:1:"))
    }

    @Test func emailTemplatesAreCheckedAgainstTheManifest() throws {
        let box = try Sandbox.withCampaign()
        #expect(try box.run(["check"]).status == 0)
        try box.write("campaigns/fair-rates/emails/oops.md", "---\nsubject: \"Hi {{frist_name}}\"\naudience: signers\n---\nWe are {{campaign.count}} in {{regoin}}.\n")
        let check = try box.run(["check"])
        #expect(check.status == 65)
        #expect(check.stderr.contains("campaigns/fair-rates/emails/oops.md:2:14: error: unknown variable 'frist_name' in subject"), "\(check)")
        #expect(check.stderr.contains("campaigns/fair-rates/emails/oops.md:5:"), "\(check)")
        #expect(check.stderr.contains("unknown variable 'regoin'"), "\(check)")
    }
}
