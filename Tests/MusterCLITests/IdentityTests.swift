import Foundation
import Testing

/// Issue 15 end to end: typo hints at the kiosk and in `import`, and the `dedupe:` section
/// of muster.yaml, on the built binary. Every person here is invented.
@Suite(.serialized) struct IdentityTests {
    /// The kiosk asks before recording an address whose domain is one slip from a common
    /// provider; "y" records the corrected address, Enter (No) keeps it as typed.
    @Test func theKioskAsksAboutAMistypedProvider() throws {
        let box = try Sandbox.withCampaign(manifest: KioskTests.manifest)
        func signer(_ name: String, _ email: String, answer: String) -> [KioskDriver.Step] {
            [.send(name + "\r"), .expect("Email: "), .send(email + "\r"),
             .expect("Did you mean "), .expect("? [y/N]: "), .send(answer + "\r"),
             .expect("from?: "), .send("Lyon\r"), .expect("[optional]: "), .send("\r"), .expect("[y/N]: "), .send("\r"),
             .expect("Comment [optional]: "), .send("\r"), .expect("Sign now? [Y/n]: "), .send("\r")]
        }
        let run = try KioskDriver.run(box, steps: KioskDriver.start
            + signer("Ana Lima", "Ana.Lima@gmial.com", answer: "y") + [.expect("✓ Signed"), .expect("Name: ")]
            + signer("Bo Chen", "bo@hotmial.com", answer: "") + [.expect("✓ Signed"), .expect("Name: ")]
            + KioskDriver.finish)
        #expect(run.ok, "\(run)")
        #expect(run.status == 0, "\(run)")
        #expect(run.transcript.contains("Did you mean Ana.Lima@gmail.com? [y/N]: "), "\(run)")
        #expect(run.transcript.contains("Did you mean bo@hotmail.com? [y/N]: "), "\(run)")
        #expect(run.transcript.contains("Please check:\r\n  Ana Lima <Ana.Lima@gmail.com>"), "\(run)")
        #expect(run.transcript.contains("Please check:\r\n  Bo Chen <bo@hotmial.com>"), "\(run)")
        let export = try box.run(["export", "--format", "jsonl"])
        #expect(export.stdout.contains("\"email\":\"Ana.Lima@gmail.com\""), "\(export)")
        #expect(export.stdout.contains("\"email\":\"bo@hotmial.com\""), "kept as typed: \(export)")
        #expect(!export.stdout.contains("gmial.com"), "\(export)")
    }

    /// The spellings issue 15 found counted twice are duplicates at `sign`; a domain with a
    /// disallowed character is refused (exit 65) naming it.
    @Test func spellingsOfOneDomainAreOneSigner() throws {
        let box = try Sandbox.withCampaign(manifest: "title: T\ngoal: 10\n")
        for (first, variant) in [("k@example.org", "k@ｅｘａｍｐｌｅ.org"), ("m@example.org", "m@example。org"), ("c@viii.example", "c@ⅷ.example"),
                                 ("ana@bücher.example", "ana@XN--BCHER-KVA.example")] {
            let added = try box.run(["sign", "--name", "Ana", "--email", first, "--json"])
            #expect(try added.json()["status"] as? String == "added", "\(added)")
            let again = try box.run(["sign", "--name", "Ana", "--email", variant, "--json"])
            #expect(again.status == 0, "\(again)")
            #expect(try again.json()["status"] as? String == "duplicate", "\(variant): \(again)")
        }
        let bad = try box.run(["sign", "--name", "Eve", "--email", "eve@snow☃.example"])
        #expect(bad.status == 65, "\(bad)")
        #expect(bad.stderr.contains("U+2603 (☃) is not allowed in a domain name"), "\(bad)")
        #expect(try box.run(["verify", "--json"]).json()["count"] as? Int == 4)
    }

    /// A correct address is not questioned.
    @Test func theKioskDoesNotAskAboutRealProviders() throws {
        let box = try Sandbox.withCampaign(manifest: KioskTests.manifest)
        let run = try KioskDriver.run(box, steps: KioskDriver.start
            + KioskTests.signer("Ana Lima", "ana@gmail.com") + [.expect("✓ Signed"), .expect("Name: ")]
            + KioskTests.signer("Cy", "cy@mail.com") + [.expect("✓ Signed"), .expect("Name: ")]
            + KioskDriver.finish)
        #expect(run.ok, "\(run)")
        #expect(!run.transcript.contains("Did you mean"), "\(run)")
    }

    /// `import` keeps suspected typos as typed and reports them by line, never by address.
    @Test func importCountsSuspectedTyposByLine() throws {
        let box = try Sandbox.withCampaign()
        try box.write("in.csv", """
            name,email,region
            Ana Lima,ana@gmail.com,Lyon
            Bo Chen,bo.chen@gmial.com,Paris
            Cy Diaz,cy@example.org,Lyon
            Di Eze,di@YAHOOO.COM,Lille
            Eva Fox,eva@gmail.con,Lyon

            """)
        let result = try box.run(["import", "in.csv", "--json"], environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        #expect(result.status == 0, "\(result)")
        let json = try result.json()
        #expect(json["added"] as? Int == 5, "imported as typed: \(result)")
        #expect(json["suspected_typos"] as? Int == 3, "\(result)")
        #expect(json["suspected_typo_lines"] as? [Int] == [3, 5, 6], "\(result)")
        #expect(!result.stdout.contains("gmial") && !result.stdout.contains("bo.chen"), "no addresses in the summary")

        try box.write("again.csv", "name,email,region\nFa Gil,fa@hotmial.com,Lyon\n")
        let text = try box.run(["import", "again.csv"], environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("1 row has a domain one typing slip from a common mail provider (e.g. gmial.com), imported as typed; check line 2"), "\(text)")
        #expect(!text.stdout.contains("hotmial") && !text.stderr.contains("hotmial") && !text.stdout.contains("fa@"), "\(text)")
    }

    /// A bad `dedupe:` section: exit 65, every problem named with muster.yaml, line, key and value.
    @Test func badDedupeSettingsAreRefusedWithFileKeyAndValue() throws {
        let box = try Sandbox.withCampaign()
        let settings = try String(contentsOf: box.path("muster.yaml"), encoding: .utf8)
        try box.write("muster.yaml", settings + """

            dedupe:
              keep_tags: perhaps
              separators: ["+", "ab", "."]
              domains:
                "exa mple.org": { ignore_dots: true }
                example.org: { separators: ["-"], ignore_dots: maybe, same_as: [example.net, example.org] }
                other.org: { same_as: [example.net] }

            """)
        let result = try box.run(["check"])
        #expect(result.status == 65, "\(result)")
        let output = result.stdout + result.stderr
        for expected in [
            "muster.yaml:", "'dedupe.keep_tags' must be true or false, not 'perhaps'",
            "'dedupe.separators' must list single characters such as \"+\" or \"-\"", "not 'ab'",
            "'dedupe.domains' has 'exa mple.org', which is not a domain",
            "'dedupe.domains.example.org.ignore_dots' must be true or false, not 'maybe'",
            "'dedupe.domains.example.org.same_as' lists the domain itself ('example.org')",
            "'example.net' is in the same_as of both example.org and other.org",
        ] {
            #expect(output.contains(expected), "missing \(expected): \(result)")
        }

        try box.write("muster.yaml", settings + """

            dedupe:
              keep_tags: true
              separators: ["+", "="]
              domains:
                Bücher.example: { separators: ["-"], ignore_dots: true, same_as: [books.example] }

            """)
        let good = try box.run(["check"])
        #expect(good.status == 0, "\(good)")
        #expect(!(good.stdout + good.stderr).contains("unknown key 'dedupe'"), "\(good)")
    }
}
