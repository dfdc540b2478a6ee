import Foundation
import Testing
@testable import MusterKit

/// The kiosk's flow against a scripted console (the terminal itself is tested end to end in KioskTests).
@Suite struct KioskSessionTests {
    /// Answers in order; when they run out, SIGTERM (so a test that loops cannot hang).
    struct ScriptedConsole: KioskConsole {
        var inputs: [KioskInput]
        var prompts: [String] = []
        var screen = ""
        mutating func read(prompt: String, secret: Bool) -> KioskInput {
            prompts.append(prompt + (secret ? " (secret)" : ""))
            return inputs.isEmpty ? .terminated(signal: SIGTERM) : inputs.removeFirst()
        }
        mutating func write(_ text: String) { screen += text }
    }

    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)
    let passphrase = KioskPassphrase("stall-secret")

    func session(_ folder: TemporaryFolder) throws -> (KioskSession, Ledger) {
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        return (KioskSession(manifest: sampleManifest(), ledger: ledger, clock: clock, source: "kiosk", collector: "Sam",
                             wrongPassphrasePause: 0), ledger)
    }

    static func lines(_ answers: String...) -> [KioskInput] { answers.map { .line($0) } }
    static let end: [KioskInput] = [.endRequested, .line("stall-secret")]

    @Test func aSignerIsRecordedAndTheSessionEndsOnlyWithThePassphrase() throws {
        let folder = try TemporaryFolder()
        let (session, ledger) = try session(folder)
        var console = ScriptedConsole(inputs: Self.lines("Ana Lima", "ana@example.org", "Lyon", "", "", "y", "Merci", "")
                                      + [.endRequested, .line("not-it")] + Self.end)
        let (tally, ending) = try session.run(console: &console, passphrase: passphrase)
        #expect(ending == .passphrase)
        #expect(tally == { var t = KioskSession.Tally(); t.added = 1; t.count = 1; return t }())
        #expect(try ledger.signatureCount() == 1)
        #expect(console.prompts == ["Name: ", "Email: ", "region: ", "profession (translator, interpreter) [optional]: ",
                                    "phone [optional]: ", "Keep me informed? [y/N]: ", "Comment [optional]: ", "Sign now? [Y/n]: ",
                                    "Name: ", "Volunteer passphrase to end the session (Enter to go back):  (secret)",
                                    "Name: ", "Volunteer passphrase to end the session (Enter to go back):  (secret)"])
        #expect(console.screen.contains("  Keep me informed: yes\n  Comment: Merci\n"))
        #expect(console.screen.contains("wrong passphrase; the kiosk goes on"))
        #expect(console.screen.hasSuffix(KioskSession.clearScreen), "the screen is cleared at the end")
        #expect(console.screen.hasPrefix(KioskSession.clearScreen), "and at the start")
    }

    @Test func abandonedEntriesAreCountedAsDiscarded() throws {
        let folder = try TemporaryFolder()
        let (session, ledger) = try session(folder)
        var console = ScriptedConsole(inputs:
            [.interrupted(hadText: false)]                                           // nothing typed: not counted
            + [.interrupted(hadText: true)]                                          // half a name: counted
            + Self.lines("Ana") + [.endRequested, .interrupted(hadText: false)]      // Ctrl-D at Email is ignored; Ctrl-C: counted
            + Self.lines("Ana", "ana@example.org", "Lyon", "", "", "", "") + [.interrupted(hadText: false)] // at the confirmation
            + Self.lines("Bo", "bo@example.org", "Paris", "", "", "", "", "n")      // declined
            + Self.end)
        let (tally, ending) = try session.run(console: &console, passphrase: passphrase)
        #expect(ending == .passphrase)
        #expect(tally.discarded == 4 && tally.added == 0)
        #expect(console.prompts.filter { $0 == "Email: " }.count == 4, "Ctrl-D at Email asks Email again: \(console.prompts)")
        #expect(try ledger.signatureCount() == 0)
    }

    @Test func aSignalEndsTheSessionAndDiscardsTheEntryBeingTyped() throws {
        let folder = try TemporaryFolder()
        let (session, _) = try session(folder)
        var console = ScriptedConsole(inputs: Self.lines("Ana", "ana@example.org") + [.terminated(signal: SIGHUP)])
        let (tally, ending) = try session.run(console: &console, passphrase: passphrase)
        #expect(ending == .signal(SIGHUP))
        #expect(tally.discarded == 1)
        var idle = ScriptedConsole(inputs: [])
        let (quiet, _) = try session.run(console: &idle, passphrase: passphrase)
        #expect(quiet.discarded == 0, "nothing typed, nothing discarded")
    }

    @Test func thePassphraseIsChosenTwiceAndComparedAsText() throws {
        var console = ScriptedConsole(inputs: Self.lines("short", "long-enough", "different", "long-enough", "long-enough"))
        let chosen = try #require(try KioskSession.choosePassphrase(console: &console))
        #expect(console.screen.contains("too short: at least 6 characters"))
        #expect(console.screen.contains("the two differ; choose again"))
        #expect(console.prompts.allSatisfy { $0.hasSuffix("(secret)") })
        #expect(chosen.matches("long-enough") && !chosen.matches("long-enough ") && !chosen.matches(""))
        #expect(KioskPassphrase("caf\u{E9}-secret").matches("cafe\u{301}-secret"), "NFC and NFD spellings are one passphrase")

        var giveUp = ScriptedConsole(inputs: [.interrupted(hadText: true)])
        #expect(try KioskSession.choosePassphrase(console: &giveUp) == nil)
        var endOfInput = ScriptedConsole(inputs: Self.lines("long-enough") + [.endRequested])
        #expect(try KioskSession.choosePassphrase(console: &endOfInput) == nil)
        var terminated = ScriptedConsole(inputs: [])
        #expect(throws: KioskSession.Stop.self) { try KioskSession.choosePassphrase(console: &terminated) }
    }
}
