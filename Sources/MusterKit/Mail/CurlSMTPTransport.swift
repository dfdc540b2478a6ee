import CCurl
import Foundation

/// The SMTP transport: libcurl, one easy handle and so one connection, reused for every
/// message sent through this object (libcurl keeps the connection open between
/// transfers and sends QUIT when the handle is cleaned up).
///
/// Every libcurl result becomes an `SMTPError`; nothing here traps. Not thread-safe:
/// give each sending thread its own transport.
public final class CurlSMTPTransport: MailTransport {
    private let connection: CurlSMTPHandle

    /// Whether the relay offers SMTPUTF8, as this transport's connection learnt it.
    var relayOffersSMTPUTF8: Bool? {
        get { connection.relayOffersSMTPUTF8 }
        set { connection.relayOffersSMTPUTF8 = newValue }
    }

    /// Creates a handle configured for `settings`; connects lazily on the first send.
    public init(settings: SMTPSettings) throws(SMTPError) {
        connection = try CurlSMTPHandle(settings: settings)
    }

    /// Sends one message on the handle's connection (opening it if needed). Addresses are
    /// validated first: CR, LF, NUL or anything but an ASCII address never reaches libcurl.
    public func send(from envelopeFrom: String, to recipients: [String], message: [UInt8]) throws(SMTPError) -> SMTPReceipt {
        try connection.prepare(from: envelopeFrom, to: recipients, message: message)
        return try connection.finish(curl_easy_perform(connection.handle))
    }
}

/// One libcurl easy handle set up for SMTP, and the state of the transfer it is doing:
/// `prepare` a message, run the transfer (`curl_easy_perform`, or through a multi
/// handle), then `finish` with libcurl's result. Not thread-safe.
final class CurlSMTPHandle {
    let handle: UnsafeMutableRawPointer
    let settings: SMTPSettings
    private let errorBuffer: UnsafeMutablePointer<CChar>
    let replies = ReplyCollector()
    /// Whether the relay's EHLO offered SMTPUTF8; nil until a connection has said (see SMTPUTF8.swift).
    var relayOffersSMTPUTF8: Bool?
    private var recipientList: UnsafeMutablePointer<curl_slist>?
    private var body: Unmanaged<UploadBody>?
    /// The last envelope sender that passed validation (a blast uses one for every message).
    private var validatedFrom: String?
    /// The envelope sender the handle's `CURLOPT_MAIL_FROM` holds (it stays set between transfers).
    private var mailFromSet: String?
    /// The next transfer opens a new connection instead of reusing one.
    var freshConnection = false

    init(settings: SMTPSettings) throws(SMTPError) {
        _ = Curl.globalInit
        guard let handle = curl_easy_init() else { throw .setup("curl_easy_init failed") }
        self.handle = handle
        self.settings = settings
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        do {
            try Curl.configure(handle, settings: settings, errorBuffer: errorBuffer, replies: replies)
            try Curl.check(muster_curl_setopt_long(handle, CURLOPT_UPLOAD, 1), "CURLOPT_UPLOAD")
            try Curl.check(muster_curl_setopt_read_callback(handle, CURLOPT_READFUNCTION, uploadReadCallback), "CURLOPT_READFUNCTION")
        } catch {
            curl_easy_cleanup(handle)
            errorBuffer.deallocate()
            throw error
        }
    }

    deinit {
        releaseTransfer()
        curl_easy_cleanup(handle)  // sends QUIT on a connection the handle still owns, if any
        errorBuffer.deallocate()
    }

    /// Validates the envelope and sets the handle up to send `message`. Nothing goes out yet.
    func prepare(from envelopeFrom: String, to recipients: [String], message: [UInt8]) throws(SMTPError) {
        releaseTransfer()
        if envelopeFrom != validatedFrom {
            try Curl.validateEnvelope(envelopeFrom, command: "MAIL FROM")
            validatedFrom = envelopeFrom
        }
        guard !recipients.isEmpty else { throw .invalidEnvelope("no recipients") }
        var internationalized = false
        for recipient in recipients {
            if try Curl.validateEnvelope(recipient, command: "RCPT TO", allowUTF8LocalPart: true) { internationalized = true }
        }
        if internationalized { try requireSMTPUTF8() }

        for recipient in recipients {
            guard let appended = curl_slist_append(recipientList, "<\(recipient)>") else {
                releaseTransfer()
                throw .setup("curl_slist_append failed")
            }
            recipientList = appended
        }
        body = Unmanaged.passRetained(UploadBody(message))
        do {
            if mailFromSet != envelopeFrom {
                try Curl.check(muster_curl_setopt_string(handle, CURLOPT_MAIL_FROM, "<\(envelopeFrom)>"), "CURLOPT_MAIL_FROM")
                mailFromSet = envelopeFrom
            }
            try Curl.check(muster_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, recipientList), "CURLOPT_MAIL_RCPT")
            try Curl.check(muster_curl_setopt_pointer(handle, CURLOPT_READDATA, body?.toOpaque()), "CURLOPT_READDATA")
            try Curl.check(muster_curl_setopt_off_t(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(message.count)), "CURLOPT_INFILESIZE_LARGE")
            try Curl.check(muster_curl_setopt_long(handle, CURLOPT_FRESH_CONNECT, freshConnection ? 1 : 0), "CURLOPT_FRESH_CONNECT")
        } catch {
            releaseTransfer()
            throw error
        }
        freshConnection = false
        replies.reset()
        errorBuffer[0] = 0
    }

    /// The outcome of the transfer set up by `prepare`, from libcurl's result code.
    func finish(_ result: CURLcode) throws(SMTPError) -> SMTPReceipt {
        defer { releaseTransfer() }
        if relayOffersSMTPUTF8 == nil { relayOffersSMTPUTF8 = replies.offersSMTPUTF8 }
        if result == CURLE_OK {
            let code = Curl.responseCode(handle)
            let last = replies.last
            return SMTPReceipt(replyCode: code, replyText: last?.code == code ? last?.text ?? "" : "")
        }
        // libcurl stops reading once it has the announced size, so "every byte handed over"
        // is the sign that the message (and its final dot) went out; a failure after that
        // leaves the outcome unknown.
        let sent = body.map { $0.takeUnretainedValue() }.map { $0.finished || $0.offset == $0.bytes.count } ?? false
        throw Curl.classify(result, handle: handle, errorBuffer: errorBuffer, replies: replies, bodyFullySent: sent)
    }

    private func releaseTransfer() {
        if recipientList != nil {
            _ = muster_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, nil)
            curl_slist_free_all(recipientList)
            recipientList = nil
        }
        if let body {
            _ = muster_curl_setopt_pointer(handle, CURLOPT_READDATA, nil)
            body.release()
            self.body = nil
        }
    }
}

/// Connects to the relay, says EHLO, upgrades with STARTTLS and authenticates as
/// configured, then disconnects: it sends no message. Uses libcurl's
/// `CURLOPT_CONNECT_ONLY`, which for SMTP runs the whole connect phase (greeting,
/// EHLO, STARTTLS, AUTH) and stops before MAIL FROM.
public func smtpCheck(settings: SMTPSettings) throws(SMTPError) -> SMTPCheckReport {
    _ = Curl.globalInit
    guard let handle = curl_easy_init() else { throw .setup("curl_easy_init failed") }
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    let replies = ReplyCollector()
    defer {
        // Cleanup sends QUIT and hands the 221 reply to the header callback: keep the
        // collector alive until then (ARC could otherwise free it after its last use).
        withExtendedLifetime(replies) { curl_easy_cleanup(handle) }
        errorBuffer.deallocate()
    }
    try Curl.configure(handle, settings: settings, errorBuffer: errorBuffer, replies: replies)
    try Curl.check(muster_curl_setopt_long(handle, CURLOPT_CONNECT_ONLY, 1), "CURLOPT_CONNECT_ONLY")
    let result = curl_easy_perform(handle)
    guard result == CURLE_OK else {
        throw Curl.classify(result, handle: handle, errorBuffer: errorBuffer, replies: replies, bodyFullySent: false)
    }
    let all = replies.all
    let greeting = all.first { $0.code == 220 }?.text ?? ""
    let ehlo = all.last { $0.code == 250 }
    let capabilities = ehlo.map { Array($0.lines.dropFirst()) } ?? []
    let usedTLS = settings.security == .smtps || all.contains { $0.code == 220 && $0 != all.first }
    let authenticated = all.contains { $0.code == 235 }
    return SMTPCheckReport(greeting: greeting, capabilities: capabilities, tls: usedTLS, authenticated: authenticated,
                           replies: all.map { "\($0.code) \($0.text)" })
}

/// What `smtpCheck` found.
public struct SMTPCheckReport: Sendable, Equatable {
    /// The 220 greeting text.
    public var greeting: String
    /// EHLO keywords from the last EHLO (after STARTTLS when used), e.g. `AUTH PLAIN LOGIN`.
    public var capabilities: [String]
    /// Whether the session ran over TLS (implicit or STARTTLS).
    public var tls: Bool
    /// Whether AUTH succeeded (235).
    public var authenticated: Bool
    /// Every reply received, `code text`, for `--verbose` output.
    public var replies: [String]
}

// MARK: - libcurl plumbing

/// The message being uploaded, read by libcurl through `uploadReadCallback`.
private final class UploadBody {
    let bytes: [UInt8]
    var offset = 0
    /// Set once libcurl has taken every byte of the message.
    var finished = false
    init(_ bytes: [UInt8]) { self.bytes = bytes }
}

private let uploadReadCallback: muster_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer, let userdata else { return 0 }
    let body = Unmanaged<UploadBody>.fromOpaque(userdata).takeUnretainedValue()
    let room = size * count
    let remaining = body.bytes.count - body.offset
    if remaining == 0 {
        body.finished = true
        return 0
    }
    let n = min(room, remaining)
    body.bytes.withUnsafeBufferPointer { source in
        guard let base = source.baseAddress else { return }
        UnsafeMutableRawPointer(buffer).copyMemory(from: base + body.offset, byteCount: n)
    }
    body.offset += n
    // With CURLOPT_INFILESIZE_LARGE set, libcurl may never ask again for end of file.
    if body.offset == body.bytes.count { body.finished = true }
    return n
}

/// One complete SMTP reply (possibly multi-line).
struct SMTPReply: Equatable {
    var code: Int
    var lines: [String]
    var text: String { lines.joined(separator: " / ") }
}

/// Collects server replies, which libcurl hands to the header callback for SMTP.
final class ReplyCollector {
    private(set) var all: [SMTPReply] = []
    private var pending: [String] = []

    var last: SMTPReply? { all.last }

    func reset() {
        all.removeAll(keepingCapacity: true)
        pending.removeAll()
    }

    /// One reply line as libcurl hands it over (`250-…` or `250 …`, with its line break).
    func receive(_ bytes: UnsafeRawBufferPointer) {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
        guard end >= 3 else { return }
        var code = 0
        for index in 0..<3 {
            let digit = bytes[index]
            guard digit >= 0x30, digit <= 0x39 else { return }
            code = code * 10 + Int(digit - 0x30)
        }
        let text = end > 4 ? String(decoding: UnsafeRawBufferPointer(rebasing: bytes[4..<end]), as: UTF8.self) : ""
        pending.append(text)
        if end == 3 || bytes[3] == UInt8(ascii: " ") {
            all.append(SMTPReply(code: code, lines: pending))
            pending.removeAll()
        }
    }
}

private let replyHeaderCallback: muster_curl_data_callback = { buffer, size, count, userdata in
    let n = size * count
    guard let buffer, let userdata else { return n }
    let collector = Unmanaged<ReplyCollector>.fromOpaque(userdata).takeUnretainedValue()
    let bytes = UnsafeRawBufferPointer(start: buffer, count: n)
    collector.receive(bytes)
    return n
}

/// Shows the SMTP dialogue of `--verbose`: commands (`>`), replies (`<`) and libcurl's
/// notes (`*`). Message bodies are summarised, and every client line from `AUTH` until
/// the relay's final answer is hidden, so credentials never reach the screen.
public final class SMTPDialogueLog: @unchecked Sendable {
    private let write: @Sendable (String) -> Void
    private let lock = NSLock()
    private var inAuthentication = false

    /// `write` receives one line at a time, without a line break.
    public init(_ write: @escaping @Sendable (String) -> Void) { self.write = write }

    func record(_ type: curl_infotype, _ bytes: UnsafeRawBufferPointer) {
        lock.lock(); defer { lock.unlock() }
        switch type {
        case CURLINFO_TEXT:
            for line in Self.lines(bytes) { write("* \(line)") }
        case CURLINFO_HEADER_IN:
            for line in Self.lines(bytes) {
                if !line.hasPrefix("334") { inAuthentication = false }
                write("< \(line)")
            }
        case CURLINFO_HEADER_OUT:
            for line in Self.lines(bytes) {
                if line.uppercased().hasPrefix("AUTH ") {
                    inAuthentication = true
                    let words = line.split(separator: " ", maxSplits: 2)
                    write("> \(words.prefix(2).joined(separator: " "))\(words.count > 2 ? " [credentials hidden]" : "")")
                } else if inAuthentication {
                    write("> [credentials hidden]")
                } else {
                    write("> \(line)")
                }
            }
        case CURLINFO_DATA_OUT:
            write("> [\(bytes.count) bytes of the message]")
        default:
            break
        }
    }

    private static func lines(_ bytes: UnsafeRawBufferPointer) -> [String] {
        String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }).map { line in
            String(line.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
        }
    }
}

private let dialogueCallback: muster_curl_debug_callback = { _, type, data, size, userdata in
    guard let data, let userdata else { return 0 }
    let log = Unmanaged<SMTPDialogueLog>.fromOpaque(userdata).takeUnretainedValue()
    log.record(type, UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

private let discardWriteCallback: muster_curl_data_callback = { _, size, count, _ in size * count }

enum Curl {
    /// `curl_global_init` is not thread-safe in 7.88; a static let runs it exactly once.
    static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    static func check(_ code: CURLcode, _ option: String) throws(SMTPError) {
        guard code == CURLE_OK else {
            throw .setup("\(option): \(String(cString: curl_easy_strerror(code)))")
        }
    }

    /// Options shared by sending and checking. `replies` must outlive the handle.
    static func configure(_ handle: UnsafeMutableRawPointer, settings: SMTPSettings,
                          errorBuffer: UnsafeMutablePointer<CChar>, replies: ReplyCollector) throws(SMTPError) {
        var useSSL: curl_usessl?
        if settings.security == .smtp {
            switch settings.starttls {
            case .required: useSSL = CURLUSESSL_ALL
            case .optional: useSSL = CURLUSESSL_TRY
            case .never: useSSL = CURLUSESSL_NONE
            }
        }
        try Curl.setSession(handle, errorBuffer: errorBuffer, url: settings.curlURL, protocols: "smtp,smtps",
                            connectTimeout: settings.connectTimeout, responseTimeout: settings.responseTimeout,
                            transferTimeout: settings.transferTimeout, useSSL: useSSL, caFile: settings.caFile,
                            username: settings.username, password: settings.password, check)
        try check(muster_curl_setopt_write_callback(handle, CURLOPT_HEADERFUNCTION, replyHeaderCallback), "CURLOPT_HEADERFUNCTION")
        try check(muster_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, Unmanaged.passUnretained(replies).toOpaque()), "CURLOPT_HEADERDATA")
        try check(muster_curl_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION, discardWriteCallback), "CURLOPT_WRITEFUNCTION")
        // CURLOPT_VERBOSE only through the debug callback, which hides what follows AUTH
        // (libcurl's own log would print the base64 credentials).
        if let dialogue = settings.dialogue {
            try check(muster_curl_setopt_debug_callback(handle, dialogueCallback), "CURLOPT_DEBUGFUNCTION")
            try check(muster_curl_setopt_pointer(handle, CURLOPT_DEBUGDATA, Unmanaged.passUnretained(dialogue).toOpaque()), "CURLOPT_DEBUGDATA")
            try check(muster_curl_setopt_long(handle, CURLOPT_VERBOSE, 1), "CURLOPT_VERBOSE")
        }
    }

    /// Refuses anything libcurl would pass through into the SMTP dialogue unchecked.
    /// Returns whether the address has a UTF-8 local part (only with `allowUTF8LocalPart`).
    @discardableResult
    static func validateEnvelope(_ address: String, command: String, allowUTF8LocalPart: Bool = false) throws(SMTPError) -> Bool {
        do {
            let parsed = try MailAddress(address: address, header: command, allowUTF8LocalPart: allowUTF8LocalPart)
            guard parsed.address == address else {
                throw SMTPError.invalidEnvelope("\(command) address must be in canonical form (domain as xn--…): \(MessageError.printable(address))")
            }
            return parsed.isInternationalized
        } catch let error as MessageError {
            throw .invalidEnvelope(error.localizedDescription)
        } catch {
            throw error as? SMTPError ?? .invalidEnvelope("\(command): \(error)")
        }
    }

    static func responseCode(_ handle: UnsafeMutableRawPointer) -> Int {
        var code = 0
        _ = muster_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// Whether a 5xx failure answered the greeting, EHLO/HELO or MAIL FROM rather than
    /// RCPT TO or DATA. libcurl (7.x, 8.x) says so only in its error message: "Got
    /// unexpected smtp-server response" (greeting), "Remote access denied" (HELO after a
    /// refused EHLO), "MAIL failed"; RCPT and DATA say "RCPT failed" and "DATA failed",
    /// and the reply to the end of DATA leaves no message (CURLE_WEIRD_SERVER_REPLY alone).
    static func isSessionRefusal(_ result: CURLcode, detail: String) -> Bool {
        if result == CURLE_REMOTE_ACCESS_DENIED { return true }
        return detail.hasPrefix("MAIL failed") || detail.hasPrefix("Got unexpected smtp-server response")
            || detail.hasPrefix("Remote access denied")
    }

    /// Turns a failed `curl_easy_perform` into the classification the blast engine uses.
    static func classify(_ result: CURLcode, handle: UnsafeMutableRawPointer, errorBuffer: UnsafeMutablePointer<CChar>,
                         replies: ReplyCollector, bodyFullySent: Bool) -> SMTPError {
        let code = responseCode(handle)
        var detail = String(cString: errorBuffer)
        if detail.isEmpty { detail = String(cString: curl_easy_strerror(result)) }
        // On failure libcurl also sends QUIT, so the 221 reply may follow the one that matters.
        let reply = replies.all.last { $0.code == code }
        let failure = SMTPFailure(replyCode: code > 0 ? code : nil,
                                  replyText: reply?.text,
                                  curlCode: Int(result.rawValue), detail: detail)
        switch result {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            return .relayUnreachable(failure)
        case CURLE_LOGIN_DENIED, CURLE_AUTH_ERROR:
            return .authFailed(failure)
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_USE_SSL_FAILED, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_ENGINE_NOTFOUND,
             CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_SHUTDOWN_FAILED:
            return .tlsFailed(failure)
        case CURLE_OPERATION_TIMEDOUT:
            if bodyFullySent { return .outcomeUnknown(failure) }
            if detail.hasPrefix("Connection timed out") || detail.hasPrefix("Resolving timed out") {
                return .relayUnreachable(failure)
            }
            return .transient(failure)
        default:
            break
        }
        switch code {
        case 530, 538:
            // 530 is "authentication required" (RFC 4954) or "must issue STARTTLS first".
            let text = (failure.replyText ?? "").uppercased()
            return text.contains("STARTTLS") || text.contains("TLS") ? .tlsFailed(failure) : .authFailed(failure)
        case 534, 535:
            return .authFailed(failure)
        case 500...599:
            return isSessionRefusal(result, detail: detail) ? .sessionRefused(failure) : .permanent(failure)
        case 400...499:
            return .transient(failure)
        default:
            return bodyFullySent ? .outcomeUnknown(failure) : .transient(failure)
        }
    }
}
