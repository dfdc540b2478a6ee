import Foundation
import Testing

/// The kiosk, driven in a real pseudo-terminal against the built binary (KioskDriver).
@Suite(.serialized) struct KioskTests {
    static let manifest = """
        title: Fair rates
        goal: 100
        fields:
          - name: region
            label: "Where do you work from?"
            required: true
          - name: profession
            options: [translator, interpreter]
        consent:
          updates: "Keep me informed"
        """

    static let clear = "\u{1B}[H\u{1B}[2J\u{1B}[3J"
    static let left = "\u{1B}[D", right = "\u{1B}[C", home = "\u{1B}[H", end = "\u{1B}[F"
    static let up = "\u{1B}[A", delete = "\u{1B}[3~", backspace = "\u{7F}"

    /// One signer's answers, each followed by Enter, waiting for each prompt.
    static func signer(_ name: String, _ email: String, region: String = "Lyon", profession: String = "",
                       consent: String = "", comment: String = "", confirm: String = "") -> [KioskDriver.Step] {
        [.send(name + "\r"), .expect("Email: "), .send(email + "\r"), .expect("from?: "), .send(region + "\r"),
         .expect("[optional]: "), .send(profession + "\r"), .expect("[y/N]: "), .send(consent + "\r"),
         .expect("Comment [optional]: "), .send(comment + "\r"), .expect("Sign now? [Y/n]: "), .send(confirm + "\r")]
    }

    func signatures(_ box: Sandbox) throws -> Int? {
        try box.run(["verify", "--json"]).json()["count"] as? Int
    }

    @Test func withoutATerminalTheKioskRefusesToStart() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        // Piped input could end the session at any moment: a kiosk that cannot be locked does not start.
        let result = try box.run(["sign", "--kiosk", "--by", "Sam"], stdin: Data("Ana Lima\nana@example.org\nLyon\n\ny\n\n\n".utf8))
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains("--kiosk needs a terminal (standard input is not one)"), "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(try signatures(box) == 0)
    }

    @Test func keyboardSignalsAndEndOfInputDoNotEndTheKiosk() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, steps: KioskDriver.start + [
            .send("\u{03}"), .expect("Name: "), .alive,                  // Ctrl-C on an empty line
            .send("\u{1C}"), .alive,                                     // Ctrl-\ (SIGQUIT on a cooked terminal)
            .send("\u{1A}"), .alive,                                     // Ctrl-Z (SIGTSTP)
            .send("\u{04}"), .expect("Volunteer passphrase"),            // Ctrl-D on an empty line asks…
            .send("wrong-guess\r"), .expect("wrong passphrase; the kiosk goes on"), .expect("Name: "), .alive,
            .send("\u{04}"), .expect("Volunteer passphrase"), .send("\u{04}"), .expect("Name: "), .alive,
            .send("Ana\u{04}\u{04}"), .alive,                            // Ctrl-D mid-entry: nothing to delete
            .send("\r"), .expect("Email: "), .send("ana@exa"),           // half an entry…
            .send("\u{03}"), .expect("Started over; nothing was recorded."), .expect("Name: "), .alive,
            .send("Bo\r"), .expect("Email: "), .send("\u{04}\u{04}\u{1C}\u{1A}"), .alive,
            .send("\u{03}"), .expect("Name: "),                          // …abandoned twice: 2 discarded
        ] + KioskDriver.finish)
        #expect(run.ok, "\(run)")
        #expect(run.status == 0, "only the passphrase ends it, with exit 0: \(run)")
        #expect(run.transcript.contains("Session ended: 0 added, 0 duplicates, 2 discarded; 0 signatures in all."), "\(run)")
        #expect(run.sttyBefore != nil && run.sttyAfter == run.sttyBefore, "the terminal is restored: \(run)")
        #expect(!run.transcript.contains("wrong-guess") && !run.transcript.contains(KioskDriver.passphrase), "passphrases are not shown")
        #expect(try signatures(box) == 0)
    }

    @Test func theScreenAndScrollbackAreClearedAtTheStartBetweenSignersAndAtTheEnd() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, steps: KioskDriver.start + Self.signer("Ana Lima", "ana@example.org", consent: "y")
                                        + [.expect("✓ Signed"), .expect("Name: ")] + KioskDriver.finish)
        #expect(run.ok, "\(run)")
        #expect(run.status == 0)
        let screen = run.transcript
        let firstClear = try #require(screen.range(of: Self.clear), "\(run)")
        let firstName = try #require(screen.range(of: "Name: "))
        #expect(firstClear.upperBound <= firstName.lowerBound, "cleared, scrollback too, before the first signer")
        let signed = try #require(screen.range(of: "✓ Signed"))
        let lastClearBeforeSigned = try #require(screen[..<signed.lowerBound].range(of: Self.clear, options: .backwards))
        #expect(!screen[lastClearBeforeSigned.upperBound..<signed.lowerBound].contains("ana@example.org"), "the previous signer is not on the new screen")
        let ended = try #require(screen.range(of: "Session ended: 1 added, 0 duplicates, 0 discarded; 1 signature in all."))
        let finalClear = try #require(screen[..<ended.lowerBound].range(of: Self.clear, options: .backwards))
        #expect(!screen[finalClear.upperBound...].contains("ana@example.org"), "nothing typed is left on screen for the shell")
        #expect(!screen[finalClear.upperBound...].contains("Ana Lima"))
    }

    @Test func arrowKeysAndLineEditingStoreExactlyTheEditedText() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let name = "Ana Lma" + Self.left + Self.left + "i" + Self.home + "Dr " + Self.end + " Zoë" + Self.backspace + "e"
            + Self.up + "\u{1B}[15~" + "\u{1B}[1;5D" + Self.end + "\u{09}"                     // Up, F5, Ctrl-Left, Tab: ignored (Ctrl-Left moves)
        let email = "xx" + "\u{15}" + "ana@example.org" + "\u{01}" + Self.delete + "A"        // Ctrl-U, Ctrl-A, Delete
        let region = "Lyonxx" + Self.left + Self.left + "\u{0B}" + "\u{05}"                    // Ctrl-K, Ctrl-E
        let comment = "Bon courage à tous" + "\u{02}\u{02}\u{02}\u{02}" + "\u{08}" + "\u{06}" + "X" // Ctrl-B, Ctrl-H, Ctrl-F
        let run = try KioskDriver.run(box, steps: KioskDriver.start
            + Self.signer(name, email, region: region, profession: "Translator", consent: "y", comment: comment, confirm: "n" + Self.backspace)
            + [.expect("✓ Signed"), .expect("Name: ")] + KioskDriver.finish)
        #expect(run.ok, "\(run)")
        #expect(run.status == 0)
        // Each answer is shown as edited when Enter is pressed (here, with the keys in one write).
        #expect(run.transcript.contains("\rName: Dr Ana Lima Zoe\u{1B}[K\r\n"), "\(run)")
        #expect(run.transcript.contains("\rEmail: Ana@example.org\u{1B}[K\u{1B}[14D\r\n"), "\(run)")
        // The confirmation screen shows every answer, the consents and the comment.
        #expect(run.transcript.contains("Please check:\r\n  Dr Ana Lima Zoe <Ana@example.org>\r\n  Where do you work from?: Lyon\r\n  profession: translator\r\n  Keep me informed: yes\r\n  Comment: Bon courage àtXous\r\n"), "\(run)")
        let export = try box.run(["export", "--format", "jsonl"])
        #expect(export.status == 0, "\(export)")
        #expect(export.stdout.contains("\"name\":\"Dr Ana Lima Zoe\""), "\(export)")
        #expect(export.stdout.contains("\"email\":\"Ana@example.org\""), "\(export)")
        #expect(export.stdout.contains("\"region\":\"Lyon\""), "\(export)")
        #expect(export.stdout.contains("\"comment\":\"Bon courage àtXous\""), "\(export)")
        #expect(!export.stdout.contains("\\u001b") && !export.stdout.contains("[D"), "no escape sequence stored")
    }

    @Test func aFullSessionValidatesConfirmsRecordsAndTallies() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, ["sign", "--kiosk", "--by", "Sam"], steps: KioskDriver.start
            // 1: a valid signer, consent given, confirmed
            + Self.signer("Ana Lima", "ana@example.org", profession: "Translator", consent: "y")
            + [.expect("✓ Signed — thank you! 1 of 100."), .expect("Name: ")]
            // 2: bad email first, then fixed; bad option, then blank (optional); declined
            + [.send("Bo\r"), .expect("Email: "), .send("bo@@example\r"), .expect("has an invalid part before the @"),
               .expect("Email: "), .send("bo@example.org\r"), .expect("from?: "), .send("Paris\r"),
               .expect("[optional]: "), .send("lawyer\r"), .expect("profession 'lawyer' is not one of: translator, interpreter"),
               .expect("[optional]: "), .send("\r"), .expect("Keep me informed? [y/N]: "), .send("\r"),
               .expect("Comment [optional]: "), .send("\r"), .expect("Keep me informed: no"), .expect("[Y/n]: "), .send("n\r"),
               .expect("Discarded; nothing was recorded."), .expect("Name: ")]
            // 3: the first signer again, in capitals: a duplicate
            + Self.signer("Ana", "ANA@EXAMPLE.ORG") + [.expect("This address already signed on"), .expect("Name: ")]
            // 4: invalid UTF-8 typed: refused with its position, typed again
            + [.bytes(Array("An".utf8) + [0xFF] + Array("a\r".utf8)), .expect("that was not valid UTF-8 text (at byte 3); please type it again"),
               .expect("Name: "), .send("\u{03}"), .expect("Started over")]
            + [.expect("Name: ")] + KioskDriver.finish)
        #expect(run.ok, "\(run)")
        #expect(run.status == 0)
        #expect(run.transcript.contains("Session ended: 1 added, 1 duplicate, 2 discarded; 1 signature in all."), "\(run)")
        #expect(try signatures(box) == 1)
        let row = try box.sqlite("campaigns/fair-rates/ledger.sqlite", "SELECT body FROM entries WHERE seq = 1")
        #expect(row.stdout == "{\"collector\":\"Sam\",\"consent\":[\"updates\"],\"fields\":{\"profession\":\"translator\"},\"source\":\"kiosk\"}\n",
                "region has no options, so it is personal data, kept out of the chain's body")
    }

    @Test func choosingThePassphrase() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, steps: [
            .expect("Passphrase: "), .send("short\r"), .expect("too short: at least 6 characters"),
            .expect("Passphrase: "), .send("first-one\r"), .expect("Type it again: "), .send("other-one\r"),
            .expect("the two differ; choose again"), .expect("Passphrase: "), .send("\u{03}"), .end,
        ])
        #expect(run.ok, "\(run)")
        #expect(run.status == 1, "giving up before the kiosk starts: exit 1")
        #expect(run.transcript.contains("muster: error: kiosk not started: no passphrase was chosen"))
        #expect(!run.transcript.contains("first-one") && !run.transcript.contains("short\r"), "not echoed")
        #expect(run.sttyAfter == run.sttyBefore)
    }

    @Test(arguments: [("TERM", 15), ("HUP", 1)])
    func aSignalFromOutsideEndsTheKioskTidily(signal: String, number: Int) throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, ["sign", "--kiosk", "--json"], steps: KioskDriver.start
            + Self.signer("Ana Lima", "ana@example.org") + [.expect("✓ Signed"), .expect("Name: ")]
            + [.send("Bo\r"), .expect("Email: "), .send("bo@exa"), .signal(signal), .end])
        #expect(run.ok, "\(run)")
        #expect(run.status == 128 + number, "ended by the signal itself, after tidying up: \(run)")
        #expect(run.sttyAfter == run.sttyBefore, "raw mode undone: \(run)")
        #expect(run.transcript.contains("Session ended: 1 added, 0 duplicates, 1 discarded; 1 signature in all."), "\(run)")
        #expect(run.transcript.contains("\"added\":1") && run.transcript.contains("\"discarded\":1"), "--json tally: \(run)")
        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0)
        #expect(try verify.json()["count"] as? Int == 1)
    }

    @Test func aSignalWhileThePassphraseIsChosenRestoresTheTerminal() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, steps: [.expect("Passphrase: "), .send("half"), .signal("TERM"), .end])
        #expect(run.ok, "\(run)")
        #expect(run.status == 128 + 15, "\(run)")
        #expect(run.sttyBefore != nil && run.sttyAfter == run.sttyBefore, "\(run)")
        #expect(!run.transcript.contains("half"))
    }

    @Test(arguments: [("SEGV", 11), ("ABRT", 6)])
    func aCrashStillRestoresTheTerminal(signal: String, number: Int) throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, steps: KioskDriver.start + [.send("Ana"), .signal(signal), .end])
        #expect(run.ok, "\(run)")
        #expect(run.status == 128 + number, "the crash itself is not hidden: \(run)")
        #expect(run.sttyBefore != nil && run.sttyAfter == run.sttyBefore, "raw mode undone even so: \(run)")
    }

    @Test func aSignatureTheLedgerRefusesIsReportedAndTheKioskStaysLocked() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let ledger = "campaigns/fair-rates/ledger.sqlite"
        #expect(try box.run(["sign", "--name", "Ana Lima", "--email", "ana@example.org", "--field", "region=Lyon"]).status == 0)
        // Bad luck while the kiosk runs: the ledger refuses every new entry.
        let refuse = "CREATE TRIGGER refuse BEFORE INSERT ON entries BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;"
        var steps = KioskDriver.start + Self.signer("Bo Berg", "bo@example.org") + [.expect("! Not recorded: "), .expect("Please tell the volunteer."), .expect("Name: "), .alive]
        steps += KioskDriver.finish
        let trigger = try box.sqlite(ledger, refuse)
        #expect(trigger.status == 0, "\(trigger)")
        let run = try KioskDriver.run(box, steps: steps)
        #expect(run.ok, "\(run)")
        #expect(run.status == 0)
        #expect(run.transcript.contains("Session ended: 0 added, 0 duplicates, 0 discarded, 1 not recorded; 1 signature in all."), "\(run)")
        #expect(try box.sqlite(ledger, "DROP TRIGGER refuse").status == 0)
        #expect(try signatures(box) == 1)
    }

    @Test func closingTheTerminalEndsTheKioskWithNothingHalfWritten() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let run = try KioskDriver.run(box, steps: KioskDriver.start
            + Self.signer("Ana Lima", "ana@example.org") + [.expect("✓ Signed"), .expect("Name: ")]
            + [.send("Bo\r"), .expect("Email: "), .send("bo@example.org\r"), .expect("from?: "), .hangup])
        #expect(run.ok, "\(run)")
        #expect(run.kioskGone == true, "\(run)")
        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        #expect(try verify.json()["count"] as? Int == 1)
    }
}
