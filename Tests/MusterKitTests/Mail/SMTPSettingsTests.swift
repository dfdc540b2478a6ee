import Foundation
import Testing
import Yams
@testable import MusterKit

@Suite("SMTP settings")
struct SMTPSettingsTests {
    @Test("decoded from muster.yaml's smtp mapping")
    func fromYAML() throws {
        let yaml = """
        url: smtp://mail.example.org:2525
        starttls: optional
        username: alice
        ca_file: /etc/muster/ca.pem
        """
        let config = try YAMLDecoder().decode(SMTPConfig.self, from: yaml)
        #expect(config == SMTPConfig(url: "smtp://mail.example.org:2525", starttls: .optional, username: "alice", caFile: "/etc/muster/ca.pem"))
        let s = try SMTPSettings.resolve(config: config, environment: ["MUSTER_SMTP_PASSWORD": "pw"])
        #expect(s.host == "mail.example.org")
        #expect(s.port == 2525)
        #expect(s.starttls == .optional)
        #expect(s.username == "alice")
        #expect(s.hasPassword)
        #expect(s.caFile == "/etc/muster/ca.pem")
    }

    @Test("environment wins over the file")
    func environmentWins() throws {
        let config = SMTPConfig(url: "smtp://file.example.org", username: "file-user")
        let s = try SMTPSettings.resolve(config: config, environment: [
            "MUSTER_SMTP_URL": "smtps://env.example.org", "MUSTER_SMTP_USERNAME": "env-user", "MUSTER_SMTP_PASSWORD": "pw",
        ])
        #expect(s.security == .smtps)
        #expect(s.host == "env.example.org")
        #expect(s.port == 465)
        #expect(s.username == "env-user")
        let fromURL = try SMTPSettings.resolve(config: config, environment: ["MUSTER_SMTP_URL": "smtp://u%40x:p%3Aw@env.example.org:25"])
        #expect(fromURL.username == "u@x")
        #expect(fromURL.port == 25)
        #expect(fromURL.curlURL.hasPrefix("smtp://env.example.org:25/"))
        #expect(!fromURL.curlURL.contains("p:w") && !fromURL.curlURL.contains("u@x"))
    }

    @Test("defaults: submission port, STARTTLS required")
    func defaults() throws {
        let s = try SMTPSettings.resolve(config: SMTPConfig(url: "smtp://relay.example.org"), environment: [:])
        #expect(s.port == 587)
        #expect(s.starttls == .required)
        #expect(s.username == nil)
    }

    @Test("refusals", arguments: [
        (SMTPConfig(url: nil), [String: String](), SMTPSettingsError.missingURL),
        (SMTPConfig(url: "smtp://u:secret@relay.example.org"), [:], .passwordInWorkspaceFile),
        (SMTPConfig(url: "smtp://relay.example.org", username: "u"), [:], .missingPassword),
        (SMTPConfig(url: "http://relay.example.org"), [:], .invalidURL(source: "smtp.url", reason: "scheme must be smtp or smtps, not http")),
        (SMTPConfig(url: "smtp://relay.example.org"), ["MUSTER_SMTP_USERNAME": "u\r\nX", "MUSTER_SMTP_PASSWORD": "p"], .controlCharacter(setting: "SMTP user name")),
    ])
    func refusals(config: SMTPConfig, environment: [String: String], expected: SMTPSettingsError) {
        #expect(throws: expected) { _ = try SMTPSettings.resolve(config: config, environment: environment) }
    }

    @Test("the password never shows")
    func redaction() throws {
        let s = try SMTPSettings.resolve(config: SMTPConfig(url: "smtp://relay.example.org", username: "alice"),
                                         environment: ["MUSTER_SMTP_PASSWORD": "hunter2-secret"])
        var dumped = ""
        dump(s, to: &dumped)
        for text in [s.description, s.debugDescription, "\(s)", String(reflecting: s), dumped] {
            #expect(!text.contains("hunter2-secret"))
        }
        #expect(s.description == "smtp://relay.example.org:587 (STARTTLS required, user alice, password set)")
    }
}

@Suite("Transport double")
struct RecordingMailTransportTests {
    @Test("scripted outcomes reach the caller as classified errors")
    func scripted() throws {
        let transport = RecordingMailTransport { recipient, _ in
            recipient.hasPrefix("bad") ? .permanent(SMTPFailure(replyCode: 550, replyText: "no such user", detail: "scripted")) : nil
        }
        let double: any MailTransport = transport
        _ = try double.send(from: "a@example.org", to: ["ok@example.org"], message: [])
        #expect(throws: SMTPError.permanent(SMTPFailure(replyCode: 550, replyText: "no such user", detail: "scripted"))) {
            _ = try double.send(from: "a@example.org", to: ["bad@example.org"], message: [])
        }
        #expect(transport.sent.map(\.to) == [["ok@example.org"]])
        #expect(transport.attempts == 2)
    }
}
