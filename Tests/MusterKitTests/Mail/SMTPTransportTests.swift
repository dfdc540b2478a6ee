import Foundation
import Synchronization
import Testing
@testable import MusterKit

private func plainMessage(_ subject: String = "Hello", to: String = "ada@example.org") -> [UInt8] {
    Array("From: hello@fairrates.example\r\nTo: \(to)\r\nSubject: \(subject)\r\n\r\nBody line\r\n.leading dot\r\n".utf8)
}

@Suite("SMTP through libcurl against aiosmtpd", .enabled(if: aiosmtpdAvailable, skipReason), .serialized)
struct SMTPTransportTests {
    @Test("plain send: envelope and bytes arrive as sent")
    func plainSend() throws {
        let server = try SMTPTestServer()
        let transport = try CurlSMTPTransport(settings: server.settings())
        let receipt = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage())
        #expect(receipt.replyCode == 250)
        #expect(receipt.replyText.contains("queued as 0001"))
        let got = try server.received()
        #expect(got.count == 1)
        #expect(got.first?.mailFrom == "hello@fairrates.example")
        #expect(got.first?.recipients == ["ada@example.org"])
        #expect(got.first?.raw == plainMessage())
    }

    @Test("one connection is reused for several messages")
    func reuse() throws {
        let server = try SMTPTestServer()
        let transport = try CurlSMTPTransport(settings: server.settings())
        for i in 0..<5 {
            _ = try transport.send(from: "hello@fairrates.example", to: ["r\(i)@example.org"], message: plainMessage("n\(i)"))
        }
        let got = try server.received()
        #expect(got.count == 5)
        #expect(Set(got.map(\.peerPort)).count == 1)
    }

    @Test("one transport per worker thread: parallel connections, each reused")
    func parallelWorkers() throws {
        let server = try SMTPTestServer()
        let settings = try server.settings()
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            do {
                let transport = try CurlSMTPTransport(settings: settings)
                for i in 0..<10 {
                    _ = try transport.send(from: "hello@fairrates.example", to: ["w\(worker)-\(i)@example.org"], message: plainMessage())
                }
            } catch {
                failures.withLock { $0 += 1 }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        let got = try server.received()
        #expect(got.count == 40)
        #expect(Set(got.flatMap(\.recipients)).count == 40)
        #expect(Set(got.map(\.peerPort)).count == 4)
    }

    @Test("STARTTLS with the CA file: delivered over TLS")
    func starttls() throws {
        let server = try SMTPTestServer(["--mode", "starttls"])
        let transport = try CurlSMTPTransport(settings: server.settings(starttls: .required, caFile: true))
        _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage())
        #expect(try server.received().first?.tls == true)
    }

    @Test("STARTTLS without the CA: refused as tlsFailed, nothing sent")
    func starttlsUntrusted() throws {
        let server = try SMTPTestServer(["--mode", "starttls"])
        let transport = try CurlSMTPTransport(settings: server.settings(starttls: .required))
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage()) }
            throws: { error in if case .tlsFailed(let f)? = error as? SMTPError { return f.curlCode == 60 } else { return false } }
        #expect(try server.received().isEmpty)
    }

    @Test("server requires STARTTLS, client set to never: tlsFailed, nothing sent")
    func starttlsNeverAgainstRequired() throws {
        let server = try SMTPTestServer(["--mode", "starttls"])
        let transport = try CurlSMTPTransport(settings: server.settings(starttls: .never))
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage()) }
            throws: { error in if case .tlsFailed(let f)? = error as? SMTPError { return f.replyCode == 530 } else { return false } }
        #expect(try server.received().isEmpty)
    }

    @Test("implicit TLS (smtps://) with the CA file")
    func smtps() throws {
        let server = try SMTPTestServer(["--mode", "smtps"])
        let transport = try CurlSMTPTransport(settings: server.settings("smtps", caFile: true))
        _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage())
        #expect(try server.received().first?.tls == true)
    }

    @Test("AUTH with the right password over STARTTLS")
    func authGood() throws {
        let server = try SMTPTestServer(["--mode", "starttls", "--auth", "alice:s3cret pass"])
        let transport = try CurlSMTPTransport(settings: server.settings(starttls: .required, username: "alice",
                                                                         password: "s3cret pass", caFile: true))
        _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage())
        #expect(try server.received().first?.authenticated == true)
    }

    @Test("AUTH with a wrong password: authFailed with 535, and the password appears nowhere")
    func authBad() throws {
        let server = try SMTPTestServer(["--mode", "starttls", "--auth", "alice:right"])
        let settings = try server.settings(starttls: .required, username: "alice", password: "wrong-Pa55", caFile: true)
        let transport = try CurlSMTPTransport(settings: settings)
        var caught: SMTPError?
        do { _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage()) } catch { caught = error }
        guard case .authFailed(let failure)? = caught else { Issue.record("expected authFailed, got \(String(describing: caught))"); return }
        #expect(failure.replyCode == 535)
        let texts = [caught?.localizedDescription ?? "", "\(String(describing: caught))", settings.description,
                     settings.debugDescription, "\(settings)", String(reflecting: settings), { var s = ""; dump(settings, to: &s); return s }()]
        for text in texts { #expect(!text.contains("wrong-Pa55"), "password leaked: \(text)") }
        #expect(try server.received().isEmpty)
    }

    @Test("AUTH on a plain connection")
    func authPlain() throws {
        let server = try SMTPTestServer(["--auth", "bob:pw", "--auth-without-tls"])
        let transport = try CurlSMTPTransport(settings: server.settings(username: "bob", password: "pw"))
        _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage())
        #expect(try server.received().first?.authenticated == true)
    }

    @Test("421 at greeting is transient, with the reply")
    func greeting421() throws {
        let server = try SMTPTestServer(["--mode", "greet421"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage()) }
            throws: { error in
                guard case .transient(let f)? = error as? SMTPError else { return false }
                return f.replyCode == 421 && (f.replyText ?? "").contains("Service not available")
            }
    }

    @Test("550 on RCPT is permanent with the reply; other recipients are unaffected")
    func reject550() throws {
        let server = try SMTPTestServer(["--reject-rcpt", "^bad"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        _ = try transport.send(from: "hello@fairrates.example", to: ["good1@example.org"], message: plainMessage())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["bad@example.org"], message: plainMessage()) }
            throws: { error in
                guard case .permanent(let f)? = error as? SMTPError else { return false }
                return f.replyCode == 550 && f.replyText == "5.1.1 <bad@example.org>: recipient rejected by test server"
            }
        _ = try transport.send(from: "hello@fairrates.example", to: ["good2@example.org"], message: plainMessage())
        #expect(try server.received().map(\.recipients) == [["good1@example.org"], ["good2@example.org"]])
    }

    @Test("451 after DATA is transient with the reply")
    func tempfail451() throws {
        let server = try SMTPTestServer(["--tempfail-data", "^later"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["later@example.org"], message: plainMessage()) }
            throws: { error in
                guard case .transient(let f)? = error as? SMTPError else { return false }
                return f.replyCode == 451 && (f.replyText ?? "").contains("try again later")
            }
        _ = try transport.send(from: "hello@fairrates.example", to: ["now@example.org"], message: plainMessage())
        #expect(try server.received().map(\.recipients) == [["now@example.org"]])
    }

    @Test("connection dropped before DATA: transient; the next message still goes")
    func dropAtRcpt() throws {
        let server = try SMTPTestServer(["--drop-at-rcpt", "^cut"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["cut@example.org"], message: plainMessage()) }
            throws: { error in if case .transient? = error as? SMTPError { return true } else { return false } }
        _ = try transport.send(from: "hello@fairrates.example", to: ["next@example.org"], message: plainMessage())
        #expect(try server.received().map(\.recipients) == [["next@example.org"]])
    }

    @Test("STARTTLS optional: upgrades when offered, continues in clear when not")
    func starttlsOptional() throws {
        let tls = try SMTPTestServer(["--mode", "starttls"])
        _ = try CurlSMTPTransport(settings: tls.settings(starttls: .optional, caFile: true))
            .send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage())
        #expect(try tls.received().first?.tls == true)
        let plain = try SMTPTestServer()
        _ = try CurlSMTPTransport(settings: plain.settings(starttls: .optional))
            .send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage())
        #expect(try plain.received().first?.tls == false)
        let required = try CurlSMTPTransport(settings: plain.settings(starttls: .required))
        #expect { _ = try required.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage()) }
            throws: { error in if case .tlsFailed? = error as? SMTPError { return true } else { return false } }
    }

    @Test("connection dropped after the final dot: outcomeUnknown; the next message still goes")
    func dropAfterDot() throws {
        let server = try SMTPTestServer(["--drop-after-dot", "^lost"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["lost@example.org"], message: plainMessage()) }
            throws: { error in if case .outcomeUnknown? = error as? SMTPError { return true } else { return false } }
        _ = try transport.send(from: "hello@fairrates.example", to: ["next@example.org"], message: plainMessage())
        let got = try server.received()
        #expect(got.map(\.note) == ["dropped", "accepted"])
    }

    @Test("no reply after the final dot: outcomeUnknown (timeout), not a hang")
    func silentAfterDot() throws {
        let server = try SMTPTestServer(["--silent-after-dot", "^slow"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["slow@example.org"], message: plainMessage()) }
            throws: { error in if case .outcomeUnknown(let f)? = error as? SMTPError { return f.curlCode == 28 } else { return false } }
    }

    @Test("a relay that never answers gives a timeout error, not a hang")
    func silentServer() throws {
        let server = try SMTPTestServer(["--mode", "silent"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage()) }
            throws: { error in if case .transient(let f)? = error as? SMTPError { return f.curlCode == 28 } else { return false } }
    }

    @Test("nothing listening: relayUnreachable")
    func unreachable() throws {
        let port: Int
        do {  // a port that was just free
            let server = try SMTPTestServer()
            port = server.port
        }
        var settings = try SMTPSettings(url: "smtp://127.0.0.1:\(port)", starttls: .never)
        settings.connectTimeout = 5
        let transport = try CurlSMTPTransport(settings: settings)
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: plainMessage()) }
            throws: { error in if case .relayUnreachable? = error as? SMTPError { return true } else { return false } }
    }

    @Test("CR/LF in envelope addresses never reaches libcurl", arguments: [
        "ada@example.org>\r\nRCPT TO:<evil@evil.test", "ada@example.org\nDATA", "ada@example.org\0", "ada@bücher.example",
    ])
    func envelopeInjection(_ address: String) throws {
        let server = try SMTPTestServer()
        let transport = try CurlSMTPTransport(settings: server.settings())
        #expect { _ = try transport.send(from: "hello@fairrates.example", to: [address], message: plainMessage()) }
            throws: { error in if case .invalidEnvelope? = error as? SMTPError { return true } else { return false } }
        #expect { _ = try transport.send(from: address, to: ["ada@example.org"], message: plainMessage()) }
            throws: { error in if case .invalidEnvelope? = error as? SMTPError { return true } else { return false } }
        #expect(try server.received().isEmpty)
    }

    @Test("smtpCheck over implicit TLS and over plain SMTP")
    func checkOtherModes() throws {
        let smtps = try SMTPTestServer(["--mode", "smtps"])
        let secure = try smtpCheck(settings: smtps.settings("smtps", caFile: true))
        #expect(secure.tls)
        #expect(!secure.authenticated)
        let plain = try SMTPTestServer()
        let clear = try smtpCheck(settings: plain.settings(starttls: .never))
        #expect(!clear.tls)
        #expect(clear.greeting.hasPrefix("muster-test.localhost"))
        #expect { _ = try smtpCheck(settings: plain.settings(starttls: .required)) }
            throws: { error in if case .tlsFailed? = error as? SMTPError { return true } else { return false } }
        #expect(try plain.received().isEmpty && smtps.received().isEmpty)
    }

    @Test("smtpCheck: EHLO, STARTTLS and AUTH, nothing sent")
    func check() throws {
        let server = try SMTPTestServer(["--mode", "starttls", "--auth", "alice:pw"])
        let report = try smtpCheck(settings: server.settings(starttls: .required, username: "alice", password: "pw", caFile: true))
        #expect(report.tls)
        #expect(report.authenticated)
        #expect(report.greeting == "muster-test.localhost Python SMTP 1.4.6")
        #expect(report.capabilities.contains("AUTH LOGIN PLAIN"))
        #expect(try server.received().isEmpty)
        #expect { _ = try smtpCheck(settings: server.settings(starttls: .required, username: "alice", password: "no", caFile: true)) }
            throws: { error in if case .authFailed? = error as? SMTPError { return true } else { return false } }
        #expect { _ = try smtpCheck(settings: server.settings(starttls: .required, username: "alice", password: "pw")) }
            throws: { error in if case .tlsFailed? = error as? SMTPError { return true } else { return false } }
    }
}
