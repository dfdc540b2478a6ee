import CCurl
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The real mailbox: IMAP over one libcurl connection.
///
/// libcurl opens the connection, does TLS (implicit for `imaps://`, STARTTLS required for
/// `imap://`), verifies the certificate and logs in (`CURLOPT_CONNECT_ONLY`); the session
/// then speaks IMAP itself over that connection (`curl_easy_send`/`curl_easy_recv`).
/// Why not libcurl's own IMAP requests: its URL fetch sends `BODY[]`, which marks the
/// message read, and a `CURLOPT_CUSTOMREQUEST` fetch hands the message back as reply
/// lines, clipped when long and ended early by a line inside the message that looks like
/// libcurl's command tag. Here a message is read by its literal's byte count instead.
///
/// Commands used: `CAPABILITY`, `LIST "" ""` (the hierarchy separator), `SELECT`
/// (UIDVALIDITY), `UID FETCH 1:* (UID RFC822.SIZE)` (the list),
/// `UID FETCH n (UID BODY.PEEK[]<0.limit+1>)` (never sets `\Seen`, and the server sends
/// at most one byte past the limit), `UID MOVE <set>` of up to `maxUIDsPerCommand` UIDs
/// (runs written as ranges, `1:40,42`) — or, when the server does not offer MOVE,
/// `UID COPY`, `UID STORE +FLAGS.SILENT (\Deleted)` and `UID EXPUNGE` of that same set
/// (UIDPLUS); never a plain `EXPUNGE` — and `CREATE`/`SUBSCRIBE` for a missing folder.
///
/// One connection serves the whole run. When it drops, the call fails with
/// `MailboxError.connection`; the next call connects again (and refuses to go on if the
/// folder's UIDVALIDITY changed meanwhile). Safe to share between threads (calls are
/// serialised).
public final class IMAPMailbox: MailboxAccess, @unchecked Sendable {
    public let settings: IMAPSettings
    private let lock = NSLock()
    private var session: IMAPSession?
    /// The UIDVALIDITY that `listUIDs` reported; UIDs mean nothing under another one.
    private var validity: UInt64?
    /// RFC822.SIZE of each listed message, so that an oversized one is never fetched.
    private var sizes: [UInt64: Int] = [:]

    /// Connects lazily, on the first call.
    public init(settings: IMAPSettings) {
        self.settings = settings
    }

    deinit { session?.close() }

    /// Logs out and closes the connection (the next call would open a new one).
    public func close() {
        lock.lock(); defer { lock.unlock() }
        session?.close()
        session = nil
    }

    public func listUIDs() throws -> (validity: UInt64, uids: [UInt64]) {
        try withSession(reselect: true) { session in
            var sizes: [UInt64: Int] = [:]
            if session.exists > 0 {
                let status = try session.command("UID FETCH 1:* (UID RFC822.SIZE)", doing: "listing the messages") { response in
                    guard let items = response.fetchItems, let uid = items.uid else { return }
                    sizes[uid] = items.number("RFC822.SIZE") ?? -1
                }
                try status.require(doing: "listing the messages in \(settings.folder)", server: settings.server)
            }
            self.sizes = sizes
            self.validity = session.validity
            return (session.validity, sizes.keys.sorted())
        }
    }

    public func fetch(uid: UInt64, limit: Int) throws -> [UInt8] {
        try withSession { session in
            if let size = sizes[uid], size > limit { throw MailboxError.tooLarge(uid: uid) }
            let section = limit >= Int.max - 1 ? "BODY.PEEK[]" : "BODY.PEEK[]<0.\(limit + 1)>"
            var found = false
            var body: [UInt8]?
            var size = 0
            let status = try session.command("UID FETCH \(uid) (UID \(section))", doing: "fetching message UID \(uid)",
                                             literalLimit: max(limit, 0)) { response in
                guard let items = response.fetchItems, items.uid == uid else { return }
                for (key, value) in items.pairs where key.hasPrefix("BODY[") {
                    if case .string(let bytes, let count) = value, count >= 0 {  // NIL: no such message
                        found = true
                        body = bytes
                        size = count
                    }
                }
            }
            try status.require(doing: "fetching message UID \(uid)", server: settings.server)
            guard found else {
                throw MailboxError.protocolError("\(settings.server): message UID \(uid) is no longer in \(settings.folder)")
            }
            guard let body, size <= limit else { throw MailboxError.tooLarge(uid: uid) }
            return body
        }
    }

    /// The most UIDs one `UID MOVE` (or COPY/STORE/EXPUNGE) names: the command line stays
    /// under ~6 kB even when no two UIDs are adjacent (RFC 7162 asks clients to keep lines
    /// under 8,192 octets).
    public static let maxUIDsPerCommand = 500

    public func move(uids: [UInt64], to folder: String) throws {
        if let problem = IMAPSettings.folderProblem(folder) {
            throw MailboxError.protocolError("cannot move to folder '\(folder)': it \(problem)")
        }
        for chunk in IMAPUIDSet.chunks(uids, size: Self.maxUIDsPerCommand) {
            try moveChunk(chunk, to: folder)
        }
    }

    private func moveChunk(_ uids: [UInt64], to folder: String) throws {
        let set = IMAPUIDSet.compress(uids)
        let which = uids.count == 1 ? "message UID \(set)" : "\(uids.count) messages (UIDs \(set.count > 60 ? String(set.prefix(57)) + "..." : set))"
        try withSession { session in
            let name = session.mailboxName(folder)
            if session.capabilities.contains("MOVE") {
                try session.creatingFolder(name, shown: folder) {
                    try session.command("UID MOVE \(set) \(IMAPSession.quoted(name))", doing: "moving \(which) to \(folder)")
                }
            } else if session.capabilities.contains("UIDPLUS") {
                try session.creatingFolder(name, shown: folder) {
                    try session.command("UID COPY \(set) \(IMAPSession.quoted(name))", doing: "copying \(which) to \(folder)")
                }
                try session.command("UID STORE \(set) +FLAGS.SILENT (\\Deleted)", doing: "flagging \(which) for removal")
                    .require(doing: "flagging \(which) for removal", server: settings.server)
                // UID EXPUNGE (RFC 4315) removes these UIDs only, never other mail flagged \Deleted.
                try session.command("UID EXPUNGE \(set)", doing: "removing \(which) from \(settings.folder)")
                    .require(doing: "removing \(which) from \(settings.folder)", server: settings.server)
            } else {
                throw MailboxError.protocolError("\(settings.server) offers neither MOVE nor UIDPLUS: muster cannot move one message without expunging other deleted mail, so it moves nothing")
            }
        }
    }

    /// Runs `body` on a connected session with the folder selected, connecting first when
    /// needed. A lost connection is dropped so that the next call starts afresh.
    private func withSession<T>(reselect: Bool = false, _ body: (IMAPSession) throws -> T) throws -> T {
        lock.lock(); defer { lock.unlock() }
        do {
            let current: IMAPSession
            if let session, !session.broken {
                current = session
                if reselect { try current.select(settings.folder) }
            } else {
                session?.close()
                session = nil
                current = try IMAPSession.open(settings)
                session = current
                try current.select(settings.folder)
                if let validity, !reselect, current.validity != validity {
                    throw MailboxError.protocolError("the UIDVALIDITY of \(settings.folder) on \(settings.server) changed from \(validity) to \(current.validity) while muster was reading it; run muster inbox again")
                }
            }
            return try body(current)
        } catch let error as MailboxError {
            if case .connection = error {
                session?.close()
                session = nil
            }
            throw error
        }
    }
}

// MARK: - UID sets

/// IMAP UID sets (RFC 3501 `sequence-set`) for moving many messages in one command.
enum IMAPUIDSet {
    /// The UIDs as a set, runs of consecutive UIDs as ranges: `[1, 2, 3, 5, 7, 8]` →
    /// `1:3,5,7:8`. Sorted and without duplicates first; UID 0 does not exist and is
    /// dropped. Empty for no UIDs.
    static func compress(_ uids: [UInt64]) -> String {
        let sorted = Array(Set(uids.filter { $0 > 0 })).sorted()
        var parts: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index]):\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    /// The UIDs, sorted, without duplicates or 0, in pieces of at most `size`.
    static func chunks(_ uids: [UInt64], size: Int) -> [[UInt64]] {
        let sorted = Array(Set(uids.filter { $0 > 0 })).sorted()
        let size = max(1, size)
        return stride(from: 0, to: sorted.count, by: size).map { Array(sorted[$0..<min($0 + size, sorted.count)]) }
    }
}

// MARK: - The session

/// One logged-in IMAP connection: libcurl's easy handle in connect-only mode, and the
/// IMAP dialogue over it. Not thread-safe (`IMAPMailbox` serialises).
final class IMAPSession {
    let settings: IMAPSettings
    private let handle: UnsafeMutableRawPointer
    private let socket: curl_socket_t
    private(set) var capabilities: Set<String> = []
    /// The hierarchy separator (`LIST "" ""`), nil for a flat namespace.
    private(set) var delimiter: String?
    private(set) var validity: UInt64 = 0
    private(set) var exists = 0
    private(set) var broken = false
    private var created: Set<String> = []
    private var tag = 0
    private var buffer: [UInt8] = []
    private var head = 0
    private var scratch = [UInt8](repeating: 0, count: 1 << 16)
    private var closed = false

    /// The longest reply line accepted (a `* SEARCH` of a million UIDs is ~8 MB).
    static let maxLine = 32 << 20
    /// The largest literal kept outside a message body (folder names and the like).
    static let maxSmallLiteral = 1 << 20

    private init(settings: IMAPSettings, handle: UnsafeMutableRawPointer, socket: curl_socket_t) {
        self.settings = settings
        self.handle = handle
        self.socket = socket
    }

    /// Connects, does TLS and logs in through libcurl, then asks for the capabilities
    /// and the hierarchy separator.
    static func open(_ settings: IMAPSettings) throws(MailboxError) -> IMAPSession {
        _ = Curl.globalInit
        guard let handle = curl_easy_init() else { throw .connection("libcurl could not be set up (curl_easy_init)") }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        func set(_ code: CURLcode, _ option: String) throws(MailboxError) {
            guard code == CURLE_OK else {
                curl_easy_cleanup(handle)
                throw .protocolError("libcurl refused \(option): \(String(cString: curl_easy_strerror(code)))")
            }
        }
        // STARTTLS for imap://, and no login unless TLS is up: there is no clear-text mode.
        try Curl.setSession(handle, errorBuffer: errorBuffer, url: settings.curlURL, protocols: "imap,imaps",
                            connectTimeout: settings.connectTimeout, responseTimeout: settings.responseTimeout,
                            useSSL: CURLUSESSL_ALL, caFile: settings.caFile, username: settings.username,
                            password: settings.password, set)
        try set(muster_curl_setopt_write_callback(handle, CURLOPT_HEADERFUNCTION, imapDiscard), "CURLOPT_HEADERFUNCTION")
        try set(muster_curl_setopt_write_callback(handle, CURLOPT_WRITEFUNCTION, imapDiscard), "CURLOPT_WRITEFUNCTION")
        // For IMAP the connect phase is greeting, CAPABILITY, STARTTLS, login; then stop.
        try set(muster_curl_setopt_long(handle, CURLOPT_CONNECT_ONLY, 1), "CURLOPT_CONNECT_ONLY")

        let result = curl_easy_perform(handle)
        guard result == CURLE_OK else {
            var detail = String(cString: errorBuffer)
            if detail.isEmpty { detail = String(cString: curl_easy_strerror(result)) }
            curl_easy_cleanup(handle)
            throw classify(result, detail: detail, settings: settings)
        }
        var socket: curl_socket_t = -1
        guard muster_curl_getinfo_socket(handle, &socket) == CURLE_OK, socket >= 0 else {
            curl_easy_cleanup(handle)
            throw .connection("\(settings.server): libcurl gave no socket after logging in")
        }
        let session = IMAPSession(settings: settings, handle: handle, socket: socket)
        do {
            try session.command("CAPABILITY", doing: "asking for the capabilities") { response in
                guard response.words.first?.uppercased() == "CAPABILITY" else { return }
                session.capabilities = Set(response.words.dropFirst().map { $0.uppercased() })
            }.require(doing: "asking for the capabilities", server: settings.server)
            try session.command("LIST \"\" \"\"", doing: "asking for the hierarchy separator") { response in
                guard response.words.first?.uppercased() == "LIST", response.values.count >= 3 else { return }
                if case .string(let bytes?, _) = response.values[2], let text = String(bytes: bytes, encoding: .utf8), !text.isEmpty {
                    session.delimiter = text
                }
            }.require(doing: "asking for the hierarchy separator", server: settings.server)
        } catch let error as MailboxError {
            session.close()
            throw error
        } catch {
            session.close()
            throw .protocolError("\(settings.server): \(error)")
        }
        return session
    }

    private static func classify(_ result: CURLcode, detail: String, settings: IMAPSettings) -> MailboxError {
        switch result {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT:
            return .connection("cannot reach the IMAP server \(settings.server): \(detail)")
        case CURLE_OPERATION_TIMEDOUT:
            return .connection("the IMAP server \(settings.server) did not answer in time: \(detail)")
        case CURLE_LOGIN_DENIED, CURLE_AUTH_ERROR, CURLE_REMOTE_ACCESS_DENIED:
            let who = settings.username.map { "user \($0)" } ?? "no user name"
            return .authentication("the IMAP server \(settings.server) refused the login (\(who)): check inbox.username and MUSTER_IMAP_PASSWORD")
        case CURLE_USE_SSL_FAILED:
            return .protocolError("the IMAP server \(settings.server) does not offer STARTTLS, and muster logs in over TLS only: use imaps:// or turn STARTTLS on")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE:
            return .protocolError("TLS with the IMAP server \(settings.server) failed: \(detail) (a server with its own CA needs inbox.ca_file)")
        case CURLE_WEIRD_SERVER_REPLY:
            return .protocolError("the IMAP server \(settings.server) answered something unexpected: \(detail)")
        default:
            return .connection("the connection to the IMAP server \(settings.server) failed: \(detail)")
        }
    }

    /// Logs out (when the connection still works) and frees the handle.
    func close() {
        guard !closed else { return }
        closed = true
        if !broken {
            _ = try? command("LOGOUT", doing: "logging out") { _ in }
        }
        // libcurl would send its own LOGOUT on cleanup and wait for the answer; with the
        // socket shut down that fails at once instead.
        shutdown(socket, Int32(SHUT_RDWR))
        curl_easy_cleanup(handle)
    }

    deinit { close() }

    /// SELECT the folder (read-write: MOVE needs it; SELECT itself sets no flag).
    func select(_ folder: String) throws {
        var validity: UInt64?
        var exists = 0
        let name = mailboxName(folder)
        let status = try command("SELECT \(Self.quoted(name))", doing: "opening the folder \(folder)") { response in
            let words = response.words
            if words.count >= 2, words[1].uppercased() == "EXISTS", let count = Int(words[0]) { exists = count }
            if words.first?.uppercased() == "OK", words.count >= 2, words[1].uppercased().hasPrefix("[UIDVALIDITY ") {
                validity = UInt64(words[1].dropFirst("[UIDVALIDITY ".count).prefix { $0 != "]" })
            }
        }
        guard status.ok else {
            throw MailboxError.protocolError("the IMAP server \(settings.server) cannot open the folder \(folder): \(status.text) (set inbox.folder in muster.yaml)")
        }
        guard let validity else {
            throw MailboxError.protocolError("the IMAP server \(settings.server) gave no UIDVALIDITY for \(folder)")
        }
        self.validity = validity
        self.exists = exists
    }

    /// The server's name for `folder`: `/` becomes the hierarchy separator, each level
    /// in modified UTF-7 (RFC 3501 5.1.3).
    func mailboxName(_ folder: String) -> String {
        if folder.uppercased() == "INBOX" { return "INBOX" }
        return folder.split(separator: "/", omittingEmptySubsequences: false)
            .map { IMAPSession.modifiedUTF7(String($0)) }
            .joined(separator: delimiter ?? "/")
    }

    /// Runs `attempt`; when the server says the folder is missing (NO, usually
    /// `[TRYCREATE]`), creates and subscribes it, then tries once more.
    func creatingFolder(_ name: String, shown: String, _ attempt: () throws -> IMAPStatus) throws {
        let first = try attempt()
        if first.ok { return }
        guard first.status == "NO", !created.contains(name) else {
            throw MailboxError.protocolError("the IMAP server \(settings.server) refused to put the message in \(shown): \(first.text)")
        }
        let create = try command("CREATE \(Self.quoted(name))", doing: "creating the folder \(shown)")
        if !create.ok, create.code?.uppercased() != "ALREADYEXISTS" {
            throw MailboxError.protocolError("the IMAP server \(settings.server) cannot create the folder \(shown): \(create.text)")
        }
        _ = try command("SUBSCRIBE \(Self.quoted(name))", doing: "subscribing to the folder \(shown)")
        created.insert(name)
        try attempt().require(doing: "putting the message in \(shown)", server: settings.server)
    }

    // MARK: Commands and replies

    /// Sends one command and reads every reply up to its tagged status. Untagged replies
    /// go to `untagged`; literals longer than `literalLimit` are read and dropped (their
    /// value arrives as nil with the announced size).
    @discardableResult
    func command(_ text: String, doing what: String, literalLimit: Int = IMAPSession.maxSmallLiteral,
                 untagged: (IMAPResponse) throws -> Void = { _ in }) throws -> IMAPStatus {
        guard !broken else { throw MailboxError.connection("the connection to \(settings.server) was lost earlier") }
        tag += 1
        let tagText = "m\(tag)"
        do {
            try send(Array("\(tagText) \(text)\r\n".utf8), doing: what)
            while true {
                let response = try readResponse(literalLimit: literalLimit, doing: what)
                if response.tag == "*" {
                    if response.words.first?.uppercased() == "BYE" {
                        broken = true
                        throw MailboxError.connection("the IMAP server \(settings.server) closed the session while \(what): \(response.statusText)")
                    }
                    try untagged(response)
                } else if response.tag == "+" {
                    broken = true
                    throw MailboxError.protocolError("the IMAP server \(settings.server) asked for more input while \(what)")
                } else if response.tag == tagText {
                    return IMAPStatus(response: response)
                } else {
                    broken = true
                    throw MailboxError.protocolError("the IMAP server \(settings.server) answered another command while \(what)")
                }
            }
        } catch let error as MailboxError {
            if case .protocolError = error { broken = true }
            throw error
        }
    }

    private func lost(_ what: String, _ detail: String) -> MailboxError {
        broken = true
        return .connection("the connection to the IMAP server \(settings.server) was lost while \(what) (\(detail)); run muster inbox again to carry on")
    }

    private func wait(for events: Int16, doing what: String) throws(MailboxError) {
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        while true {
            let ready = poll(&descriptor, 1, Int32(clamping: settings.responseTimeout * 1000))
            if ready > 0 { return }
            if ready == 0 { throw lost(what, "no answer for \(settings.responseTimeout) s") }
            if errno != EINTR { throw lost(what, String(cString: strerror(errno))) }
        }
    }

    private func send(_ bytes: [UInt8], doing what: String) throws(MailboxError) {
        var offset = 0
        while offset < bytes.count {
            var sent = 0
            let code = bytes.withUnsafeBytes { raw in
                curl_easy_send(handle, raw.baseAddress! + offset, raw.count - offset, &sent)
            }
            if code == CURLE_AGAIN {
                try wait(for: Int16(POLLOUT), doing: what)
                continue
            }
            guard code == CURLE_OK else { throw lost(what, String(cString: curl_easy_strerror(code))) }
            offset += sent
        }
    }

    /// Reads more bytes into the buffer (at least one).
    private func fill(doing what: String) throws(MailboxError) {
        if head > 1 << 16, head * 2 > buffer.count {
            buffer.removeSubrange(0..<head)
            head = 0
        }
        while true {
            var received = 0
            let code = scratch.withUnsafeMutableBytes { raw in
                curl_easy_recv(handle, raw.baseAddress, raw.count, &received)
            }
            if code == CURLE_AGAIN {
                try wait(for: Int16(POLLIN), doing: what)
                continue
            }
            guard code == CURLE_OK else { throw lost(what, String(cString: curl_easy_strerror(code))) }
            guard received > 0 else { throw lost(what, "the server closed the connection") }
            buffer.append(contentsOf: scratch[0..<received])
            return
        }
    }

    /// One line without its CRLF.
    private func readLine(doing what: String) throws(MailboxError) -> [UInt8] {
        // Where to look next, counted from `head`: `fill` may move the unread bytes to
        // the front of the buffer.
        var scanned = 0
        while true {
            if let newline = buffer[(head + scanned)...].firstIndex(of: 0x0A) {
                var end = newline
                if end > head, buffer[end - 1] == 0x0D { end -= 1 }
                let line = Array(buffer[head..<end])
                head = newline + 1
                return line
            }
            scanned = buffer.count - head
            if scanned > Self.maxLine {
                broken = true
                throw .protocolError("the IMAP server \(settings.server) sent a reply line over \(Self.maxLine) bytes while \(what)")
            }
            try fill(doing: what)
        }
    }

    /// Exactly `count` bytes; kept only when `count <= limit`, otherwise read and dropped
    /// a piece at a time (the connection stays usable, memory stays bounded).
    private func readLiteral(_ count: Int, limit: Int, doing what: String) throws(MailboxError) -> [UInt8]? {
        let keep = count <= limit
        var kept: [UInt8] = []
        if keep { kept.reserveCapacity(count) }
        var remaining = count
        while remaining > 0 {
            if head == buffer.count { try fill(doing: what) }
            let take = min(remaining, buffer.count - head)
            if keep { kept.append(contentsOf: buffer[head..<(head + take)]) }
            head += take
            remaining -= take
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            }
        }
        return keep ? kept : nil
    }

    /// One reply: a line, and when it ends with a literal `{n}`, the literal and the rest
    /// of the reply, as often as they come.
    private func readResponse(literalLimit: Int, doing what: String) throws(MailboxError) -> IMAPResponse {
        var pieces: [IMAPResponse.Piece] = []
        var line = try readLine(doing: what)
        while let (prefix, size) = Self.literalMarker(line) {
            guard size <= Int.max / 2 else {
                broken = true
                throw .protocolError("the IMAP server \(settings.server) announced a literal of \(size) bytes")
            }
            pieces.append(.text(prefix))
            pieces.append(.literal(try readLiteral(size, limit: literalLimit, doing: what), size))
            line = try readLine(doing: what)
        }
        pieces.append(.text(line))
        return IMAPResponse(pieces: pieces)
    }

    /// `… {123}` at the end of a line: the text before it and the literal's size.
    static func literalMarker(_ line: [UInt8]) -> ([UInt8], Int)? {
        guard line.last == UInt8(ascii: "}"), let open = line.lastIndex(of: UInt8(ascii: "{")) else { return nil }
        var digits = line[(open + 1)..<(line.count - 1)]
        if digits.last == UInt8(ascii: "+") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let size = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return (Array(line[..<open]), size)
    }

    /// An IMAP quoted string (the name is ASCII after modified UTF-7; CR, LF and NUL are
    /// refused by the settings and never get here).
    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// RFC 3501 5.1.3: printable ASCII stays, `&` becomes `&-`, anything else is
    /// UTF-16 in modified base64 between `&` and `-`.
    static func modifiedUTF7(_ text: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)
        var out = ""
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            var bytes: [UInt8] = []
            for unit in pending { bytes.append(UInt8(unit >> 8)); bytes.append(UInt8(unit & 0xFF)) }
            var encoded: [UInt8] = []
            var index = 0
            while index < bytes.count {
                let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
                let value = (UInt32(chunk[0]) << 16) | (UInt32(chunk.count > 1 ? chunk[1] : 0) << 8) | UInt32(chunk.count > 2 ? chunk[2] : 0)
                let characters = chunk.count + 1
                for position in 0..<characters { encoded.append(alphabet[Int((value >> (18 - 6 * UInt32(position))) & 0x3F)]) }
                index += 3
            }
            out += "&" + String(decoding: encoded, as: UTF8.self) + "-"
            pending.removeAll()
        }
        for scalar in text.unicodeScalars {
            if scalar.value >= 0x20, scalar.value <= 0x7E {
                flush()
                out += scalar == "&" ? "&-" : String(scalar)
            } else {
                pending.append(contentsOf: Array(String(scalar).utf16))
            }
        }
        flush()
        return out
    }
}

private let imapDiscard: muster_curl_data_callback = { _, size, count, _ in size * count }

// MARK: - Replies

/// A tagged status: `OK`, `NO` or `BAD`, its response code and text.
struct IMAPStatus {
    var status: String
    var code: String?
    var text: String
    var ok: Bool { status == "OK" }

    init(response: IMAPResponse) {
        let words = response.words
        status = words.first?.uppercased() ?? ""
        code = words.count > 1 && words[1].hasPrefix("[") ? String(words[1].dropFirst().prefix { $0 != "]" && $0 != " " }) : nil
        text = response.statusText
    }

    func require(doing what: String, server: String) throws {
        guard ok else { throw MailboxError.protocolError("the IMAP server \(server) refused \(what): \(text)") }
    }
}

/// One server reply, read up to its end: the tag (`*`, `+` or a command's), and its
/// values (atoms, strings and literals, parenthesised lists).
struct IMAPResponse {
    enum Piece {
        case text([UInt8])
        case literal([UInt8]?, Int)
    }

    indirect enum Value {
        case atom(String)
        /// A quoted string or a literal: the bytes (nil when dropped for size) and size.
        case string([UInt8]?, Int)
        case list([Value])
    }

    let tag: String
    /// The values after the tag.
    let values: [Value]
    /// The text of the first line after the tag, for status replies.
    let rawText: String

    init(pieces: [Piece]) {
        var tokens = IMAPResponse.tokens(pieces)
        tag = tokens.first.flatMap { if case .atom(let word) = $0 { return word } else { return nil } } ?? ""
        if !tokens.isEmpty { tokens.removeFirst() }
        var index = 0
        values = IMAPResponse.parse(tokens, &index)
        if case .text(let first)? = pieces.first {
            let text = String(decoding: first, as: UTF8.self)
            rawText = text.split(separator: " ", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        } else {
            rawText = ""
        }
    }

    /// Top-level atoms as words (`[UIDVALIDITY 5]` stays one word).
    var words: [String] {
        values.map { value in
            switch value {
            case .atom(let word): return word
            case .string(let bytes, _): return bytes.map { String(decoding: $0, as: UTF8.self) } ?? ""
            case .list: return "()"
            }
        }
    }

    /// `OK [CODE] text` → `text`, printable and short (server text may hold anything).
    var statusText: String {
        var text = Substring(rawText)
        text = text.drop { $0 != " " }.dropFirst()  // the status word
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") { text = text[text.index(after: close)...] }
        let clean = String(text.trimmingCharacters(in: .whitespaces).unicodeScalars
            .map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) }.prefix(200))
        return clean.isEmpty ? "no reason given" : clean
    }

    /// `* n FETCH (…)`: its items, or nil for any other reply.
    var fetchItems: FetchItems? {
        guard values.count >= 3, case .atom(let word) = values[1], word.uppercased() == "FETCH",
              case .list(let items) = values[2] else { return nil }
        var pairs: [(String, Value)] = []
        var index = 0
        while index + 1 < items.count {
            if case .atom(let key) = items[index] { pairs.append((key.uppercased(), items[index + 1])) }
            index += 2
        }
        return FetchItems(pairs: pairs)
    }

    struct FetchItems {
        let pairs: [(String, Value)]
        func number(_ key: String) -> Int? {
            for (name, value) in pairs where name == key { if case .atom(let text) = value { return Int(text) } }
            return nil
        }
        var uid: UInt64? {
            for (name, value) in pairs where name == "UID" { if case .atom(let text) = value { return UInt64(text) } }
            return nil
        }
    }

    private static func tokens(_ pieces: [Piece]) -> [Value] {
        // Flattened as values with list markers, then nested by `parse`.
        var out: [Value] = []
        for piece in pieces {
            switch piece {
            case .literal(let bytes, let size):
                out.append(.string(bytes, size))
            case .text(let bytes):
                var index = 0
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == 0x20 { index += 1; continue }
                    if byte == UInt8(ascii: "(") { out.append(.atom("(")); index += 1; continue }
                    if byte == UInt8(ascii: ")") { out.append(.atom(")")); index += 1; continue }
                    if byte == UInt8(ascii: "\"") {
                        var value: [UInt8] = []
                        index += 1
                        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                            if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { index += 1 }
                            value.append(bytes[index])
                            index += 1
                        }
                        index += 1
                        out.append(.string(value, value.count))
                        continue
                    }
                    var depth = 0
                    let start = index
                    while index < bytes.count {
                        let c = bytes[index]
                        if c == UInt8(ascii: "[") { depth += 1 } else if c == UInt8(ascii: "]") { depth = max(0, depth - 1) }
                        else if depth == 0, c == 0x20 || c == UInt8(ascii: "(") || c == UInt8(ascii: ")") { break }
                        index += 1
                    }
                    out.append(.atom(String(decoding: bytes[start..<index], as: UTF8.self)))
                }
            }
        }
        return out
    }

    private static func parse(_ tokens: [Value], _ index: inout Int) -> [Value] {
        var out: [Value] = []
        while index < tokens.count {
            let token = tokens[index]
            index += 1
            if case .atom("(") = token {
                out.append(.list(parse(tokens, &index)))
            } else if case .atom(")") = token {
                return out
            } else if case .atom(let word) = token, word.uppercased() == "NIL" {
                out.append(.string(nil, -1))
            } else {
                out.append(token)
            }
        }
        return out
    }
}
