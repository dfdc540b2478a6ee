import Foundation
import Testing

@Suite struct KioskTests {
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

    @Test func pipedSessionPromptsValidatesConfirmsAndTallies() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let answers = [
            // 1: a valid signer, consent given, confirmed
            "Ana Lima", "ana@example.org", "Lyon", "Translator", "y", "",
            // 2: bad email first, then fixed; bad option, then blank (optional); declined
            "Bo", "bo@@example", "bo@example.org", "Paris", "lawyer", "", "n", "n",
            // 3: the first signer again, in capitals: a duplicate
            "Ana", "ANA@EXAMPLE.ORG", "Lyon", "", "", "y",
            // 4: typing stops half-way (Ctrl-D): nothing recorded
            "Cleo", "cleo@example.org",
        ]
        let result = try box.run(["sign", "--kiosk", "--by", "Sam"], stdin: Data((answers.joined(separator: "\n") + "\n").utf8))
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("Where do you work from?: "))
        #expect(result.stdout.contains("profession (translator, interpreter) [optional]: "))
        #expect(result.stdout.contains("Email: bo@@example\n  ! email 'bo@@example' has an invalid part before the @ (\"@\" is not allowed there)\nEmail: bo@example.org\n"))
        #expect(result.stdout.contains("  ! profession 'lawyer' is not one of: translator, interpreter"))
        #expect(result.stdout.contains("Keep me informed? [y/N]: "))
        #expect(result.stdout.contains("✓ Signed — thank you! 1 of 100."))
        #expect(result.stdout.contains("Discarded; nothing was recorded."))
        #expect(result.stdout.contains("This address already signed on"))
        #expect(result.stdout.hasSuffix("Session ended: 1 added, 1 duplicate, 1 discarded; 1 signature in all.\n"))
        #expect(!result.stdout.contains("\u{1B}[2J"), "the screen is cleared only on a terminal")

        let report = try box.run(["verify", "--json"]).json()
        #expect(report["count"] as? Int == 1)
        let row = try box.sqlite("campaigns/fair-rates/ledger.sqlite", "SELECT body FROM entries WHERE seq = 1")
        #expect(row.stdout == "{\"collector\":\"Sam\",\"consent\":[\"updates\"],\"fields\":{\"profession\":\"translator\"},\"source\":\"kiosk\"}\n",
                "region has no options, so it is personal data, kept out of the chain's body")
    }

    @Test func invalidUTF8IsRefusedAndAskedAgain() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        var input = Data("Ana".utf8) + Data([0xFF, 0x0A])
        input += Data("Ana\nana@example.org\nLyon\n\nn\ny\n".utf8)
        let result = try box.run(["sign", "--kiosk", "--json"], stdin: input)
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("that was not valid UTF-8 text; please type it again"))
        let tally = try result.json()
        #expect(tally["added"] as? Int == 1)
        #expect(tally["count"] as? Int == 1)
    }

    @Test func terminalSessionClearsTheScreenBetweenSigners() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        // Drive the kiosk through a pseudo-terminal, as at a stall.
        let driver = """
            import os, pty, sys, time
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], [sys.argv[1], "sign", "--kiosk"])
            out = b""
            def read_until(token, limit=10):
                global out
                end = time.time() + limit
                while token not in out and time.time() < end:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
            for answer, prompt in [("Ana Lima", b"Name: "), ("ana@example.org", b"Email: "), ("Lyon", b"from?: "),
                                   ("", b"[optional]: "), ("y", b"[y/N]: "), ("", b"[Y/n]: ")]:
                read_until(prompt)
                os.write(fd, answer.encode() + b"\\n")
            read_until(b"Name: ")
            os.write(fd, b"\\x04")
            read_until(b"Session ended")
            os.waitpid(pid, 0)
            sys.stdout.buffer.write(out)
            """
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", driver, MusterBinary.url.path], in: box.root)
        #expect(result.status == 0, "\(result)")
        let screen = result.stdout
        let signed = try #require(screen.range(of: "✓ Signed"))
        let cleared = try #require(screen.range(of: "\u{1B}[H\u{1B}[2J\u{1B}[3J"))
        #expect(cleared.upperBound <= signed.lowerBound, "cleared before the next signer")
        #expect(!screen[cleared.upperBound...].contains("ana@example.org"), "the previous signer's data is not on the new screen")
        #expect(screen.contains("Session ended: 1 added, 0 duplicates, 0 discarded"))
    }
}
