import Foundation

/// What the relay and libcurl said about a failed exchange.
public struct SMTPFailure: Sendable, Equatable, CustomStringConvertible {
    /// The server's last reply code (e.g. 451, 550), when one was received.
    public var replyCode: Int?
    /// The server's last reply text (e.g. `5.1.1 <x@y>: recipient rejected`), when received.
    public var replyText: String?
    /// The libcurl result code (`CURLcode`), 0 when not from libcurl.
    public var curlCode: Int
    /// libcurl's error-buffer message, or muster's own explanation.
    public var detail: String

    /// Creates a failure record.
    public init(replyCode: Int? = nil, replyText: String? = nil, curlCode: Int = 0, detail: String) {
        self.replyCode = replyCode
        self.replyText = replyText
        self.curlCode = curlCode
        self.detail = detail
    }

    /// `451 4.3.0 try later (libcurl 56: Failure when receiving data from the peer)`.
    public var description: String {
        var head = ""
        if let replyCode { head = "\(replyCode)" }
        if let replyText, !replyText.isEmpty { head += head.isEmpty ? replyText : " \(replyText)" }
        let tail = curlCode != 0 ? "libcurl \(curlCode): \(detail)" : detail
        return head.isEmpty ? tail : "\(head) (\(tail))"
    }
}

/// A failed send or check. `DeliveryOutcome(_:)` classifies it for the blast engine and
/// `MusterError(_:)` for a command that stops on it.
public enum SMTPError: Error, Sendable, Equatable, LocalizedError {
    /// Worth retrying later: a 4xx reply, a timeout, or a connection lost before the
    /// message was fully handed over.
    case transient(SMTPFailure)
    /// The relay refused for good (5xx); record the reply, do not retry.
    case permanent(SMTPFailure)
    /// The whole message was sent but the connection was lost (or timed out) before
    /// the final reply: it may or may not have been accepted. Do not resend blindly.
    case outcomeUnknown(SMTPFailure)
    /// The relay cannot be reached (name resolution or TCP connect failed).
    case relayUnreachable(SMTPFailure)
    /// AUTH was refused, or the relay requires authentication muster did not offer.
    case authFailed(SMTPFailure)
    /// The relay refused the session or the sender, not the recipient: a 5xx reply to the
    /// greeting, to EHLO/HELO or to MAIL FROM (e.g. a sender address it does not accept).
    /// Every other message would meet the same refusal: stop, and leave the rows queued.
    case sessionRefused(SMTPFailure)
    /// TLS could not be set up: certificate not trusted, STARTTLS unavailable, handshake failed.
    case tlsFailed(SMTPFailure)
    /// An envelope address was refused before reaching libcurl (CR/LF/NUL or invalid syntax).
    case invalidEnvelope(String)
    /// libcurl could not be initialised or rejected an option (a build or setup problem).
    case setup(String)

    /// The failure details, when the error came from the relay or libcurl.
    public var failure: SMTPFailure? {
        switch self {
        case .transient(let f), .permanent(let f), .outcomeUnknown(let f), .relayUnreachable(let f),
             .authFailed(let f), .sessionRefused(let f), .tlsFailed(let f):
            return f
        case .invalidEnvelope, .setup:
            return nil
        }
    }

    /// A short, lower-case message for the user.
    public var errorDescription: String? {
        switch self {
        case .transient(let f): return "temporary SMTP failure: \(f)"
        case .permanent(let f): return "permanent SMTP failure: \(f)"
        case .outcomeUnknown(let f): return "connection lost after the message was sent; outcome unknown: \(f)"
        case .relayUnreachable(let f): return "SMTP relay unreachable: \(f)"
        case .authFailed(let f): return "SMTP authentication failed: \(f)"
        case .sessionRefused(let f):
            return "the relay refused the session or the sender address, so no message can go out (nothing was sent; check smtp settings and the sender): \(f)"
        case .tlsFailed(let f):
            switch f.curlCode {
            case 64: // CURLE_USE_SSL_FAILED
                return "the relay does not offer STARTTLS and muster.yaml requires it (smtp.starttls: required); nothing was sent in clear. Use an smtps:// relay URL, or `starttls: optional` only on a network you trust (libcurl 64: \(f.detail))"
            case 60: // CURLE_PEER_FAILED_VERIFICATION
                return "the relay's TLS certificate is not trusted, so nothing was sent: \(f.detail). If the relay uses its own certificate authority, set smtp.ca_file in muster.yaml to that CA's PEM file"
            default:
                return "TLS with the SMTP relay failed: \(f)"
            }
        case .invalidEnvelope(let why): return "invalid SMTP envelope: \(why)"
        case .setup(let why): return "cannot set up the SMTP client: \(why)"
        }
    }
}

extension MusterError {
    /// The one mapping from an SMTP failure to the error a command stops with, and so to
    /// its exit code (SPEC.md): 69 the relay cannot be reached; 75 a temporary failure
    /// worth retrying (a 4xx, a time-out, a lost reply); 65 an envelope address that can
    /// never be sent; 1 anything else: TLS, login, a refused session or sender, a
    /// permanent refusal, the client's own set-up. `mail send` (a blast or `--to`) and
    /// `smtp check` all stop through it.
    public init(_ error: SMTPError) {
        let status: ExitStatus
        switch error {
        case .relayUnreachable: status = .relayUnreachable
        case .transient, .outcomeUnknown: status = .temporary
        case .invalidEnvelope: status = .badInput
        case .tlsFailed, .authFailed, .sessionRefused, .permanent, .setup: status = .failure
        }
        self.init(status, error.localizedDescription)
    }
}

/// The relay's acceptance of one message.
public struct SMTPReceipt: Sendable, Equatable {
    /// The final reply code (250).
    public var replyCode: Int
    /// The final reply text (often a queue id), for the outbox.
    public var replyText: String
}

/// Sends rendered messages. Implementations hold one connection and reuse it across
/// calls; they are not thread-safe: use one per worker thread. `send` blocks.
public protocol MailTransport: AnyObject {
    /// Sends `message` (CRLF octets) with the given envelope. Succeeds only after the
    /// relay's 2xx reply to the end of DATA.
    func send(from envelopeFrom: String, to recipients: [String], message: [UInt8]) throws(SMTPError) -> SMTPReceipt
}

extension MailTransport {
    /// Sends a message produced by `renderMessage`.
    public func send(_ message: RenderedMessage) throws(SMTPError) -> SMTPReceipt {
        try send(from: message.envelopeFrom, to: [message.envelopeTo], message: message.bytes)
    }
}
