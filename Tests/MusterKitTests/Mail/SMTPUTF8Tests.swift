import Foundation
import Testing
@testable import MusterKit

private func message(to: String) -> [UInt8] {
    Array("From: hello@fairrates.example\r\nTo: \(to)\r\nSubject: Hello\r\n\r\nBody\r\n".utf8)
}

@Suite("SMTPUTF8: recipients with a UTF-8 local part", .enabled(if: aiosmtpdAvailable, skipReason), .serialized)
struct SMTPUTF8Tests {
    @Test("relay offers SMTPUTF8: a fresh transport probes, then libcurl sends MAIL FROM … SMTPUTF8")
    func offeredOnFirstMessage() throws {
        let server = try SMTPTestServer(["--smtputf8"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        _ = try transport.send(from: "hello@fairrates.example", to: ["jöns@xn--bcher-kva.example"], message: message(to: "jöns@xn--bcher-kva.example"))
        _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: message(to: "ada@example.org"))
        let got = try server.received()
        #expect(got.map(\.recipients) == [["jöns@xn--bcher-kva.example"], ["ada@example.org"]])
        #expect(got[0].mailOptions.contains("SMTPUTF8"))
        #expect(!got[1].mailOptions.contains("SMTPUTF8"), "only messages that need it declare it")
        #expect(got[0].raw == message(to: "jöns@xn--bcher-kva.example"))
        #expect(transport.relayOffersSMTPUTF8 == true)
    }

    @Test("relay offers SMTPUTF8: learned from the EHLO of a connection already open")
    func learnedFromEarlierMessage() throws {
        let server = try SMTPTestServer(["--smtputf8"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: message(to: "ada@example.org"))
        #expect(transport.relayOffersSMTPUTF8 == true)
        _ = try transport.send(from: "hello@fairrates.example", to: ["ünïcode.名前@example.org"], message: message(to: "x"))
        let got = try server.received()
        #expect(got.last?.recipients == ["ünïcode.名前@example.org"])
        #expect(got.last?.mailOptions.contains("SMTPUTF8") == true)
        #expect(Set(got.map(\.peerPort)).count == 1, "same connection, no probe")
    }

    @Test("relay without SMTPUTF8: permanent failure with a clear reason, nothing sent, others unaffected", arguments: [false, true])
    func notOffered(sendASCIIFirst: Bool) throws {
        let server = try SMTPTestServer()
        let transport = try CurlSMTPTransport(settings: server.settings())
        if sendASCIIFirst {
            _ = try transport.send(from: "hello@fairrates.example", to: ["ada@example.org"], message: message(to: "ada@example.org"))
        }
        #expect {
            _ = try transport.send(from: "hello@fairrates.example", to: ["jöns@example.org"], message: message(to: "jöns@example.org"))
        } throws: { error in
            guard case .permanent(let failure)? = error as? SMTPError else { return false }
            return failure.description.contains("needs SMTPUTF8 (RFC 6531), and the relay does not offer it")
                && !failure.description.contains("jöns")
        }
        _ = try transport.send(from: "hello@fairrates.example", to: ["bo@example.org"], message: message(to: "bo@example.org"))
        #expect(try server.received().map(\.recipients) == (sendASCIIFirst ? [["ada@example.org"], ["bo@example.org"]] : [["bo@example.org"]]))
        #expect(transport.relayOffersSMTPUTF8 == false)
    }

    @Test("MAIL FROM stays ASCII, and UTF-8 never excuses CR/LF or a Unicode domain")
    func stillRefused() throws {
        let server = try SMTPTestServer(["--smtputf8"])
        let transport = try CurlSMTPTransport(settings: server.settings())
        for (from, to) in [("jöns@example.org", "ada@example.org"), ("hello@fairrates.example", "jöns@bücher.example"),
                           ("hello@fairrates.example", "jöns\r\n@example.org"), ("hello@fairrates.example", "j\u{202E}s@example.org")] {
            #expect { _ = try transport.send(from: from, to: [to], message: message(to: "x")) }
                throws: { error in if case .invalidEnvelope? = error as? SMTPError { return true } else { return false } }
        }
        #expect(try server.received().isEmpty)
    }

    @Test("EHLO keywords: the first 250 after the last 220")
    func ehloKeywords() {
        let greeting = SMTPReply(code: 220, lines: ["relay ESMTP"])
        let plain = SMTPReply(code: 250, lines: ["relay", "SIZE 1000", "STARTTLS"])
        let tls = SMTPReply(code: 220, lines: ["2.0.0 Ready to start TLS"])
        let afterTLS = SMTPReply(code: 250, lines: ["relay", "SIZE 1000", "smtputf8", "AUTH PLAIN"])
        let mail = SMTPReply(code: 250, lines: ["OK"])
        #expect(SMTPCapabilities.ehloKeywords([greeting, plain, mail]) == ["SIZE", "STARTTLS"])
        #expect(SMTPCapabilities.ehloKeywords([greeting, plain, tls, afterTLS, mail]) == ["SIZE", "SMTPUTF8", "AUTH"])
        #expect(SMTPCapabilities.ehloKeywords([mail, mail]) == nil, "no greeting: the connection was reused")
    }
}
