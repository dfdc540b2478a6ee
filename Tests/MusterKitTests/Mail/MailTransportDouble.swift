import Foundation
@testable import MusterKit

/// A `MailTransport` double for engine tests: records every message and answers with a
/// scripted outcome per recipient (default: accepted).
final class RecordingMailTransport: MailTransport {
    struct Sent {
        var from: String
        var to: [String]
        var message: [UInt8]
    }

    private(set) var sent: [Sent] = []
    private(set) var attempts = 0
    var outcome: (_ recipient: String, _ attempt: Int) -> SMTPError?

    init(outcome: @escaping (_ recipient: String, _ attempt: Int) -> SMTPError? = { _, _ in nil }) {
        self.outcome = outcome
    }

    func send(from envelopeFrom: String, to recipients: [String], message: [UInt8]) throws(SMTPError) -> SMTPReceipt {
        attempts += 1
        try Curl.validateEnvelope(envelopeFrom, command: "MAIL FROM")
        for recipient in recipients { try Curl.validateEnvelope(recipient, command: "RCPT TO") }
        if let first = recipients.first, let error = outcome(first, attempts) { throw error }
        sent.append(Sent(from: envelopeFrom, to: recipients, message: message))
        return SMTPReceipt(replyCode: 250, replyText: "2.0.0 OK recorded \(sent.count)")
    }
}
