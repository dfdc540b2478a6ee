import Foundation
import Testing

/// Runs `muster sign --kiosk` in a real pseudo-terminal through Tests/support/kiosk_pty.py
/// (Python's pexpect), under `sh -c` as if typed at a shell prompt.
struct KioskDriver {
    enum Step: Encodable {
        /// Wait for this text (after the previous match).
        case expect(String)
        /// Type this (control characters included).
        case send(String)
        /// Type these raw bytes.
        case bytes([UInt8])
        case sleep(Double)
        /// The kiosk still runs and the shell has not come back.
        case alive
        /// A signal from outside, e.g. "TERM".
        case signal(String)
        /// Close the terminal.
        case hangup
        /// Wait for the kiosk to end and the shell to report its status.
        case end

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            switch self {
            case .expect(let text): try container.encode(text, forKey: .expect)
            case .send(let text): try container.encode(text, forKey: .send)
            case .bytes(let bytes): try container.encode(bytes.map { String(format: "%02x", $0) }.joined(), forKey: .send_hex)
            case .sleep(let seconds): try container.encode(seconds, forKey: .sleep)
            case .alive: try container.encode(true, forKey: .alive)
            case .signal(let name): try container.encode(name, forKey: .signal)
            case .hangup: try container.encode(true, forKey: .hangup)
            case .end: try container.encode(true, forKey: .end)
            }
        }

        enum Key: String, CodingKey { case expect, send, send_hex, sleep, alive, signal, hangup, end }
    }

    struct Outcome: CustomStringConvertible {
        let ok: Bool
        let error: String?
        let failedStep: Int?
        /// The kiosk's exit status as the shell saw it (128+N for signal N); nil if the shell never came back.
        let status: Int?
        let sttyBefore: String?
        let sttyAfter: String?
        let kioskGone: Bool?
        /// Everything the terminal showed.
        let transcript: String

        var description: String {
            "ok \(ok), error \(error ?? "-") at step \(failedStep.map(String.init) ?? "-"), status \(status.map(String.init) ?? "-")\n--- transcript\n\(transcript.debugDescription)"
        }
    }

    static let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/kiosk_pty.py")

    /// The passphrase the helpers choose.
    static let passphrase = "stall-secret"

    /// Steps that choose `passphrase` and wait for the first Name prompt.
    static let start: [Step] = [
        .expect("Passphrase: "), .send(passphrase + "\r"),
        .expect("Type it again: "), .send(passphrase + "\r"),
        .expect("Name: "),
    ]

    /// Steps that end the session with the passphrase, from an empty Name prompt.
    static let finish: [Step] = [
        .send("\u{04}"), .expect("Volunteer passphrase"), .send(passphrase + "\r"), .end,
    ]

    static func run(_ box: Sandbox, _ arguments: [String] = ["sign", "--kiosk"], steps: [Step]) throws -> Outcome {
        struct Script: Encodable {
            let binary: String
            let args: [String]
            let cwd: String
            let steps: [Step]
        }
        let input = try JSONEncoder().encode(Script(binary: MusterBinary.url.path, args: arguments, cwd: box.root.path, steps: steps))
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path], in: box.root, stdin: input)
        try #require(result.status == 0, "the driver failed: \(result)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return Outcome(ok: object["ok"] as? Bool ?? false, error: object["error"] as? String,
                       failedStep: object["failed_step"] as? Int, status: object["status"] as? Int,
                       sttyBefore: object["stty_before"] as? String, sttyAfter: object["stty_after"] as? String,
                       kioskGone: object["kiosk_gone"] as? Bool, transcript: object["transcript"] as? String ?? "")
    }
}
