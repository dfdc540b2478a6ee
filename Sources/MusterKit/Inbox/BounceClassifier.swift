import Crypto
import Foundation

/// What a message is, before it is tied to anything: the classifier reads shapes; only
/// `InboxCampaigns` decides, through tokens, whom a message is about.
struct BounceVerdict: Sendable {
    enum Kind: String, Sendable {
        case hard, soft, delayed, complaint, unsubscribe, autoReply, unrelated, unrecognised
    }

    var kind: Kind
    /// The enhanced status code (`5.1.1`), when the message gives one.
    var status: String?
    /// Why, in a few words; never an address.
    var reason: String
    /// VERP tokens found in the addresses the message was delivered to (trusted first).
    var verpTokens: [MailToken] = []
    /// Tokens of muster Message-IDs: the returned message's headers first, then anywhere.
    var idTokens: [MailToken] = []
    /// The sender's address, for an unsubscribe request without a token.
    var from: String?
    /// The hash the message is recorded under (`inbox_processed.message_hash`).
    var messageHash: String
}

/// Reads a received message's shape: an RFC 3464 delivery status notification, an
/// RFC 5965 complaint, one of the common prose bounces (Postfix, Exim, qmail, Exchange,
/// Gmail, Yahoo), an RFC 3834 auto-reply, an unsubscribe request, or none of these.
enum BounceClassifier {
    static func classify(_ message: InboxMessage) -> BounceVerdict {
        let headers = message.headers
        let hash = messageHash(message)
        var verdict = BounceVerdict(kind: .unrelated, reason: "not a bounce, complaint, auto-reply or unsubscribe request", messageHash: hash)
        if message.malformed {
            verdict.kind = .unrecognised
            verdict.reason = "malformed: its MIME structure or header could not be read"
            return verdict
        }
        verdict.verpTokens = verpTokens(headers)
        verdict.idTokens = messageIDTokens(message)

        let type = message.root.contentType
        let reportType = message.root.parameters["report-type"]?.lowercased()
        let parts = message.parts
        if let report = parts.first(where: { $0.contentType == "message/feedback-report" }) ?? (type == "multipart/report" && reportType == "feedback-report" ? message.root : nil) {
            let fields = dsnBlocks(report.content).first ?? [:]
            let feedback = fields["feedback-type"]?.lowercased() ?? "abuse"
            if feedback == "not-spam" {
                verdict.kind = .autoReply
                verdict.reason = "a feedback report that is not a complaint (not-spam)"
            } else {
                verdict.kind = .complaint
                verdict.reason = "complaint (ARF feedback report, type \(printable(feedback)))"
            }
            return verdict
        }
        if let dsn = parts.first(where: { $0.contentType == "message/delivery-status" || $0.contentType == "message/global-delivery-status" }) {
            classifyDSN(dsn.content, into: &verdict)
            if verdict.kind != .unrecognised { return verdict }
        }
        if isBounceShaped(headers) {
            classifyProse(message.bodyText, subject: headers.first("subject") ?? "", into: &verdict)
            return verdict
        }
        if isAutoReply(headers) {
            verdict.kind = .autoReply
            verdict.reason = "an automatic reply (RFC 3834 Auto-Submitted, X-Autoreply, Precedence or a vacation subject)"
            return verdict
        }
        if isUnsubscribeRequest(headers) {
            verdict.kind = .unsubscribe
            verdict.reason = "an unsubscribe request sent to the List-Unsubscribe mailto"
            verdict.from = address(in: headers.first("from") ?? "")
            return verdict
        }
        return verdict
    }

    // MARK: - RFC 3464

    /// The blocks of `field: value` lines of a message/delivery-status (or feedback-report) body.
    static func dsnBlocks(_ content: [UInt8]) -> [[String: String]] {
        let text = String(decoding: content, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
        var blocks: [[String: String]] = []
        for block in text.components(separatedBy: "\n\n") {
            let headers = MIMEHeaders.parse(ArraySlice(Array(block.utf8)))
            guard !headers.fields.isEmpty else { continue }
            var fields: [String: String] = [:]
            for field in headers.fields where fields[field.name] == nil { fields[field.name] = field.value }
            blocks.append(fields)
        }
        return blocks
    }

    static func classifyDSN(_ content: [UInt8], into verdict: inout BounceVerdict) {
        let blocks = dsnBlocks(content)
        // The per-recipient blocks are those with an Action (the first block is per message).
        let recipients = blocks.filter { $0["action"] != nil }
        var best: (rank: Int, kind: BounceVerdict.Kind, status: String?, reason: String)?
        for fields in recipients {
            let action = (fields["action"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
            let status = fields["status"].flatMap { enhancedStatus(in: $0) }
            let diagnostic = (fields["diagnostic-code"] ?? "").lowercased()
            let candidate: (Int, BounceVerdict.Kind, String)
            switch action {
            case "failed":
                if isMailboxFull(status: status, text: diagnostic) {
                    candidate = (2, .soft, "mailbox full or over quota (delivery status notification)")
                } else if status?.hasPrefix("4") == true {
                    candidate = (2, .soft, "temporary failure, given up (delivery status notification)")
                } else {
                    candidate = (3, .hard, "permanent failure (delivery status notification)")
                }
            case "delayed":
                candidate = (1, .delayed, "delayed: the relay is still trying (delivery status notification)")
            default:
                candidate = (0, .autoReply, "a delivery status notification that reports no failure (\(printable(action)))")
            }
            if best == nil || candidate.0 > best!.rank { best = (candidate.0, candidate.1, status, candidate.2) }
        }
        guard let best else {
            verdict.kind = .unrecognised
            verdict.reason = "a delivery status notification without a recipient's Action"
            return
        }
        verdict.kind = best.kind
        verdict.status = best.status
        verdict.reason = best.reason
    }

    // MARK: - Prose bounces

    static let bounceSubjects = [
        "undelivered mail returned to sender", "mail delivery failed", "delivery status notification", "undeliverable",
        "failure notice", "returned mail", "delivery failure", "mail delivery system", "non remis", "unzustellbar",
        "delivery has failed", "message not delivered", "could not be delivered", "warning: message", "delayed mail",
        "mail delivery subsystem", "delivery notification",
    ]

    static func isBounceShaped(_ headers: MIMEHeaders) -> Bool {
        let from = (headers.first("from") ?? "").lowercased()
        if from.contains("mailer-daemon") || from.contains("postmaster") || from.contains("mail delivery") { return true }
        if headers.first("return-path")?.replacingOccurrences(of: " ", with: "") == "<>" { return true }
        if headers.first("x-failed-recipients") != nil { return true }
        // A subject alone is not enough (a person may write "Returned mail" too): only with
        // an Auto-Submitted header, which people's mail does not carry.
        guard let auto = headers.first("auto-submitted")?.lowercased(), !auto.hasPrefix("no") else { return false }
        let subject = (headers.first("subject") ?? "").lowercased()
        return bounceSubjects.contains { subject.contains($0) }
    }

    static let softPhrases = ["mailbox full", "mailbox is full", "over quota", "quota exceeded", "exceeded storage", "insufficient storage",
                              "mailbox size limit", "user is over", "overquota", "storage allocation"]
    static let delayPhrases = ["(delay)", "delayed", "has not yet been delivered", "will retry", "still trying", "will keep trying",
                               "not been delivered yet", "delivery is delayed"]
    static let permanentPhrases = ["permanent error", "permanently", "permanent failure", "does not exist", "user unknown", "unknown user",
                                   "no such user", "address not found", "mailbox unavailable", "no mailbox", "doesn't have a",
                                   "does not have a", "invalid recipient", "recipient rejected", "delivery has failed",
                                   "account has been disabled", "undeliverable", "not found"]

    static func classifyProse(_ body: String, subject: String, into verdict: inout BounceVerdict) {
        let text = body.lowercased()
        let subjectText = subject.lowercased()
        let status = enhancedStatus(in: text)
        let code = smtpCode(in: text)
        if isMailboxFull(status: status, text: text) {
            (verdict.kind, verdict.status, verdict.reason) = (.soft, status, "mailbox full or over quota (prose bounce)")
        } else if delayPhrases.contains(where: { subjectText.contains($0) || text.contains($0) }) && !(status?.hasPrefix("5") ?? false)
                    && !text.contains("permanent") {
            (verdict.kind, verdict.status, verdict.reason) = (.delayed, status, "delayed: the relay is still trying (prose notice)")
        } else if let status {
            (verdict.kind, verdict.status, verdict.reason) = status.hasPrefix("5")
                ? (.hard, status, "permanent failure (prose bounce, status \(status))")
                : (.soft, status, "temporary failure (prose bounce, status \(status))")
        } else if let code {
            (verdict.kind, verdict.reason) = code >= 500 ? (.hard, "permanent failure (prose bounce, reply \(code))") : (.soft, "temporary failure (prose bounce, reply \(code))")
        } else if permanentPhrases.contains(where: { text.contains($0) }) {
            (verdict.kind, verdict.reason) = (.hard, "permanent failure (prose bounce)")
        } else {
            (verdict.kind, verdict.reason) = (.unrecognised, "a bounce whose failure muster could not read")
        }
    }

    static func isMailboxFull(status: String?, text: String) -> Bool {
        if let status, status.hasSuffix(".2.2") { return true }
        return softPhrases.contains { text.contains($0) }
    }

    /// The first `d.ddd.ddd` in `text` whose class is 2, 4 or 5.
    static func enhancedStatus(in text: String) -> String? {
        let bytes = Array(text.utf8)
        var index = 0
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= 48 && bytes[i] <= 57 }
        while index < bytes.count {
            if (bytes[index] == 52 || bytes[index] == 53 || bytes[index] == 50), index + 1 < bytes.count, bytes[index + 1] == 46,
               index == 0 || !(isDigit(index - 1) || bytes[index - 1] == 46) {
                var cursor = index + 2
                var first = 0
                while isDigit(cursor) && first < 3 { cursor += 1; first += 1 }
                if first > 0, cursor < bytes.count, bytes[cursor] == 46 {
                    cursor += 1
                    var second = 0
                    while isDigit(cursor) && second < 3 { cursor += 1; second += 1 }
                    if second > 0, !isDigit(cursor), !(cursor < bytes.count && bytes[cursor] == 46 && isDigit(cursor + 1)) {
                        return String(decoding: bytes[index..<cursor], as: UTF8.self)
                    }
                }
            }
            index += 1
        }
        return nil
    }

    /// The first three-digit 4xx/5xx reply code standing alone (`550 `, `554:`, `550-`).
    static func smtpCode(in text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 3 else { return nil }
        func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
        for index in 0...(bytes.count - 3) where bytes[index] == 52 || bytes[index] == 53 {
            guard isDigit(bytes[index + 1]), isDigit(bytes[index + 2]) else { continue }
            if index > 0, isDigit(bytes[index - 1]) || bytes[index - 1] == 46 || bytes[index - 1] == 58 { continue }
            let after = index + 3 < bytes.count ? bytes[index + 3] : 32
            guard after == 32 || after == 45 || after == 58 || after == 10 || after == 13 else { continue }
            return Int(String(decoding: bytes[index..<(index + 3)], as: UTF8.self))
        }
        return nil
    }

    // MARK: - Auto-replies and unsubscribe requests

    /// Subjects vacation programs start with (a person's "Re: … I'm on vacation" is not one).
    static let autoReplySubjects = ["out of office", "automatic reply", "auto:", "autoreply", "auto-reply", "auto reply",
                                    "abwesenheit", "réponse automatique", "respuesta automática", "vacation reply", "away from the office",
                                    "on vacation:", "on holiday:", "out of the office"]

    static func isAutoReply(_ headers: MIMEHeaders) -> Bool {
        if let auto = headers.first("auto-submitted")?.lowercased(), !auto.hasPrefix("no") { return true }
        if headers.first("x-autoreply") != nil || headers.first("x-autorespond") != nil || headers.first("x-autogenerated") != nil { return true }
        if let precedence = headers.first("precedence")?.lowercased(), precedence.contains("auto_reply") { return true }
        if let suppress = headers.first("x-auto-response-suppress"), !suppress.isEmpty, headers.first("x-ms-exchange-generated-message-source") != nil { return true }
        let subject = (headers.first("subject") ?? "").lowercased().trimmingCharacters(in: .whitespaces)
        return autoReplySubjects.contains { subject.hasPrefix($0) }
    }

    static func isUnsubscribeRequest(_ headers: MIMEHeaders) -> Bool {
        var subject = (headers.first("subject") ?? "").lowercased().trimmingCharacters(in: .whitespaces)
        // "Re: ", "Fwd: ", "AW: " before it.
        while let colon = subject.firstIndex(of: ":"), subject.distance(from: subject.startIndex, to: colon) <= 4,
              ["re", "fw", "fwd", "aw", "wg", "sv", "tr"].contains(String(subject[..<colon])) {
            subject = String(subject[subject.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        return subject == "unsubscribe" || subject.hasPrefix("unsubscribe ")
    }

    // MARK: - Tokens

    /// VERP tokens (`local+TOKEN@domain`) in the addresses the message was delivered to.
    static func verpTokens(_ headers: MIMEHeaders) -> [MailToken] {
        var tokens: [MailToken] = []
        for name in ["delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "x-delivered-to"] {
            for value in headers.all(name) {
                for token in scan(value, after: "+", before: "@") where !tokens.contains(token) { tokens.append(token) }
            }
        }
        return tokens
    }

    /// Tokens of muster Message-IDs (`muster.TOKEN@`): in the returned message's headers
    /// first, then in In-Reply-To and References, then anywhere in the parts' text —
    /// never the message's own Message-ID.
    static func messageIDTokens(_ message: InboxMessage) -> [MailToken] {
        var tokens: [MailToken] = []
        func add(_ text: String) {
            for token in scan(text, after: "muster.", before: "@") where !tokens.contains(token) { tokens.append(token) }
        }
        for part in message.parts.dropFirst() {
            if part.contentType == "text/rfc822-headers" {
                MIMEHeaders.parse(ArraySlice(part.content)).all("message-id").forEach(add)
            }
        }
        for part in message.parts.dropFirst() where part.headers.first("message-id") != nil && part.headers.first("from") != nil {
            part.headers.all("message-id").forEach(add)
        }
        for name in ["in-reply-to", "references"] { message.headers.all(name).forEach(add) }
        for part in message.parts.dropFirst() { add(String(decoding: part.rawHeader, as: UTF8.self)) }
        for part in message.parts where part.children.isEmpty { add(String(decoding: part.content, as: UTF8.self)) }
        return tokens
    }

    /// Every `MailToken` that follows `after` and is followed by `before` in `text`.
    static func scan(_ text: String, after: String, before: String) -> [MailToken] {
        let bytes = Array(text.utf8), lead = Array(after.utf8), tail = Array(before.utf8)
        var found: [MailToken] = []
        let length = MailToken.textLength
        var index = 0
        while index + lead.count + length + tail.count <= bytes.count {
            if bytes[index..<(index + lead.count)].elementsEqual(lead) {
                let start = index + lead.count
                let end = start + length
                if bytes[end..<(end + tail.count)].elementsEqual(tail),
                   let token = MailToken(text: String(decoding: bytes[start..<end], as: UTF8.self)) {
                    found.append(token)
                    if found.count >= 8 { break }
                    index = end
                    continue
                }
            }
            index += 1
        }
        return found
    }

    // MARK: - Helpers

    static func messageHash(_ message: InboxMessage) -> String {
        if let id = message.headers.first("message-id"), !id.isEmpty {
            return "id:" + Hex.encode(SHA256.hash(data: Data(id.utf8)))
        }
        return "content:" + Hex.encode(SHA256.hash(data: message.bytes))
    }

    /// The address in a `From` value (`Name <a@b>` or `a@b`).
    static func address(in value: String) -> String? {
        if let open = value.lastIndex(of: "<"), let close = value[open...].firstIndex(of: ">") {
            let inside = value[value.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
            return inside.contains("@") ? inside : nil
        }
        let bare = value.trimmingCharacters(in: .whitespaces)
        return bare.contains("@") && !bare.contains(" ") ? bare : nil
    }

    /// At most 40 printable ASCII characters of `text`, for reasons.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F && $0 != "@" }.prefix(40).map(Character.init))
    }
}
