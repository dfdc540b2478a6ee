import Foundation
import Testing

/// RELIABILITY.md row "kiosk lock": a member of the public tries every way out of the kiosk.
@Suite struct KioskReliabilityTests {
    @Test func noKeyNoKeyboardSignalAndNoGarbageEndsTheKiosk() throws {
        let box = try Sandbox.withCampaign()
        // Bytes as a keyboard, a paste or a confused terminal may send; Ctrl-D (which asks for
        // the passphrase, with a growing pause after each wrong one) is tested on its own.
        var generator = SystemRandomNumberGenerator()
        let garbageSize = Reliability.scale(full: 20_000, ci: 2_000)
        let garbage = (0..<garbageSize).map { _ -> UInt8 in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return byte == 0x04 ? 0x03 : byte
        }
        var steps = KioskDriver.start
        for key in ["\u{03}", "\u{1C}", "\u{1A}", "\u{11}", "\u{13}", "\u{1B}", "\u{1B}[A", "\u{1B}[1;2P", "\u{1B}[200~"] {
            steps += [.send(key), .alive]
        }
        for signal in ["INT", "QUIT", "TSTP", "TTIN", "TTOU"] {
            steps += [.signal(signal), .alive]
        }
        steps += [.send("\u{04}"), .expect("Volunteer passphrase"), .send("guess-one\r"), .expect("wrong passphrase"), .alive]
        for chunk in stride(from: 0, to: garbage.count, by: 256) {
            steps.append(.bytes(Array(garbage[chunk..<min(chunk + 256, garbage.count)])))
        }
        steps += [.alive, .send("\u{03}"), .expect("Name: ")] + KioskDriver.finish
        let (run, seconds) = try Reliability.time { try KioskDriver.run(box, steps: steps) }
        #expect(run.ok, "\(run)")
        #expect(run.status == 0, "\(run)")
        #expect(run.sttyAfter != nil && run.sttyAfter == run.sttyBefore, "terminal restored")
        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        Reliability.record("kiosk lock", "Ctrl-C, Ctrl-\\, Ctrl-Z, Ctrl-Q, Ctrl-S, Esc, escape sequences; SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU from outside; a wrong passphrase; \(garbageSize) random bytes: still running each time; ended only by the passphrase (exit 0), terminal settings restored, ledger verifies (\(Reliability.seconds(seconds)))")
    }
}
