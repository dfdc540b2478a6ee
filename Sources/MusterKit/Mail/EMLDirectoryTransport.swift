import Foundation

/// A transport that touches no network: each message is written as `<n>-<recipient>.eml`
/// in a folder (for `muster mail send --dry-run --out DIR`, and as a test double).
public final class EMLDirectoryTransport: MailTransport {
    /// Where the files go (created if missing).
    public let directory: URL
    private var count = 0

    /// Creates the folder if needed.
    public init(directory: URL) throws(SMTPError) {
        self.directory = directory
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw .setup("cannot create \(directory.path): \(error.localizedDescription)")
        }
    }

    /// Writes the message atomically; the envelope is validated as the SMTP transport would.
    public func send(from envelopeFrom: String, to recipients: [String], message: [UInt8]) throws(SMTPError) -> SMTPReceipt {
        try Curl.validateEnvelope(envelopeFrom, command: "MAIL FROM")
        guard let first = recipients.first else { throw .invalidEnvelope("no recipients") }
        for recipient in recipients { try Curl.validateEnvelope(recipient, command: "RCPT TO") }
        count += 1
        let safe = String(first.unicodeScalars.map { MailAddress.isAtext($0) && $0 != "/" || $0 == "@" ? Character($0) : "_" })
        let file = directory.appendingPathComponent(String(format: "%05d-", count) + safe + ".eml")
        do { try Data(message).write(to: file, options: .atomic) } catch {
            throw .setup("cannot write \(file.path): \(error.localizedDescription)")
        }
        return SMTPReceipt(replyCode: 250, replyText: "written to \(file.lastPathComponent)")
    }
}
