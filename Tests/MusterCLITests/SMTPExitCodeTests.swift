import Foundation
import Testing

/// One SMTP failure class, as the loopback relay produces it, and the exit code each
/// command that meets it must end with (SPEC.md: 69 relay unreachable, 75 temporary
/// failure worth retrying, 1 failure). A blast that only fails or loses single messages
/// still succeeds (0), and `smtp check` sends no MAIL FROM, RCPT TO or DATA.
struct SMTPFailureCase: Sendable, CustomTestStringConvertible {
    let name: String
    /// Arguments of Tests/support/smtp_server.py; nil: nothing listens.
    let relay: [String]?
    /// `muster.yaml`'s smtp section instead of MUSTER_SMTP_URL (for TLS and login).
    let tls: TLSSetup?
    /// Who `mail send --to` writes to.
    var testRecipient = "me@organisers.example"
    let blast: Int32
    let testSend: Int32
    let check: Int32

    enum TLSSetup: Sendable { case untrusted, wrongPassword }

    var testDescription: String { name }

    static let all: [SMTPFailureCase] = [
        .init(name: "nothing listens", relay: nil, tls: nil, blast: 69, testSend: 69, check: 69),
        .init(name: "554 greeting", relay: ["--mode", "greet554"], tls: nil, blast: 1, testSend: 1, check: 1),
        .init(name: "421 greeting", relay: ["--mode", "greet421"], tls: nil, blast: 75, testSend: 75, check: 75),
        .init(name: "EHLO and HELO refused", relay: ["--reject-helo"], tls: nil, blast: 1, testSend: 1, check: 1),
        .init(name: "MAIL FROM refused", relay: ["--reject-sender", "hello@"], tls: nil, blast: 1, testSend: 1, check: 0),
        .init(name: "RCPT TO refused", relay: ["--reject-rcpt", "^ana@"], tls: nil, testRecipient: "ana@example.org",
              blast: 0, testSend: 1, check: 0),
        .init(name: "451 to DATA", relay: ["--tempfail-data", "^ana@"], tls: nil, testRecipient: "ana@example.org",
              blast: 75, testSend: 75, check: 0),
        .init(name: "dropped after the dot", relay: ["--drop-after-dot", "^ana@"], tls: nil, testRecipient: "ana@example.org",
              blast: 0, testSend: 75, check: 0),
        .init(name: "untrusted certificate", relay: ["--mode", "starttls"], tls: .untrusted, blast: 1, testSend: 1, check: 1),
        .init(name: "wrong password", relay: ["--mode", "starttls", "--auth", "fairrates:s3cret"], tls: .wrongPassword,
              blast: 1, testSend: 1, check: 1),
    ]
}

@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct SMTPExitCodeTests {
    @Test(arguments: SMTPFailureCase.all)
    func everySMTPFailureClassEndsEveryCommandWithItsExitCode(_ failure: SMTPFailureCase) throws {
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true), ("Bo", "bo@example.org", true)])
        var relay: TestRelay?
        var environment = ["MUSTER_BACKOFF_SECONDS": "0.01", "MUSTER_SMTP_URL": "smtp://127.0.0.1:9"]
        if var arguments = failure.relay {
            if failure.tls != nil { arguments += ["--cert-out", box.path("relay-ca.pem").path] }
            relay = try TestRelay(arguments, in: box)
            environment["MUSTER_SMTP_URL"] = relay?.url
        }
        if let tls = failure.tls, let relay {
            environment["MUSTER_SMTP_URL"] = nil
            var yaml = "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: smtp://127.0.0.1:\(relay.port)\n  starttls: required\n"
            if tls == .wrongPassword {
                yaml += "  username: fairrates\n  ca_file: relay-ca.pem\n"
                environment["MUSTER_SMTP_PASSWORD"] = "hunter2"
            }
            try box.write("muster.yaml", yaml)
        }

        let check = try box.run(["smtp", "check"], environment: environment)
        #expect(check.status == failure.check, "smtp check: \(check)")
        let test = try box.run(["mail", "send", "thanks", "--to", failure.testRecipient], environment: environment)
        #expect(test.status == failure.testSend, "mail send --to: \(test)")
        let blast = try box.run(["mail", "send", "thanks", "--yes"], environment: environment)
        #expect(blast.status == failure.blast, "mail send: \(blast)")
        // A command that stops on the failure says why (a blast that ends with deferred rows
        // prints its summary instead).
        for (command, result) in [("smtp check", check), ("mail send --to", test), ("mail send", blast)] where result.status != 0 {
            if command == "mail send" && result.status == 75 { continue }
            #expect(result.stderr.contains("muster: error: "), "\(command): a message says why: \(result.stderr)")
            #expect(!result.stderr.contains("hunter2"), "the password is never printed")
        }
        if failure.check != 0 {
            #expect(try relay?.received().isEmpty ?? true, "nothing was delivered")
        }
    }
}
