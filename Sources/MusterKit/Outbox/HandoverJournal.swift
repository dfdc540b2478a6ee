import Foundation

/// What a blast's event loop has handed to the relay, written down before it happens.
///
/// A blast claims rows a few at a time in durable transactions (`sending`), ahead of the
/// messages that go out, so no message waits for an fsync. Which claimed rows were really
/// handed to libcurl, and which of those the relay accepted, is appended to this journal
/// with one plain `write` (no fsync) just before the hand-over and just after the reply.
/// After a crash of the process the kernel still has those writes, so the next run can
/// tell the rows apart exactly:
///
/// - claimed, never handed over: back to `queued` (nothing went out);
/// - handed over, then accepted (`250`): `sent`;
/// - handed over, then refused for good (5xx to RCPT or DATA): `failed`;
/// - handed over, then refused for now (4xx, a connection lost before the data went
///   out) or not about this recipient (the relay refused the session): `deferred`;
/// - handed over, outcome not written: `unknown` (at most one per connection).
///
/// Only the last event of a key counts: a message deferred and handed over again later
/// is in flight again.
///
/// After a power loss or a reboot the unsynced writes may be gone, so the journal is
/// trusted only on the boot that wrote it (Linux's `boot_id`); otherwise every `sending`
/// row is `unknown`, as it would be without a journal.
///
/// The file holds a header (format, boot, template) and one line per event: `H <key>`
/// (handed over), `S <key>` (accepted), `F <key>` (refused for good) or `D <key>`
/// (not accepted; to be tried again). Keys are the outbox's recipient fingerprints, so
/// the file holds no personal data. Each event loop writes its own file.
final class HandoverJournal: @unchecked Sendable {
    // Used by one event loop's thread only (created and removed by the blast's thread around it).
    static let magic = "muster-mail-journal 1"
    let url: URL
    private var descriptor: Int32
    private let header: [UInt8]
    private(set) var size = 0
    private var buffer: [UInt8] = []

    /// The journal files of the campaign folder `folder` (one per event loop), and the
    /// half-written rewrites a crash left beside them (never read: the file each was to
    /// replace is whole).
    static func files(in folder: URL) -> (journals: [URL], rewrites: [URL]) {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasPrefix(".mail.journal.") }.sorted()
        let urls = { (names: [String]) in names.map { folder.appendingPathComponent($0) } }
        return (urls(names.filter { !$0.hasSuffix(".tmp") }), urls(names.filter { $0.hasSuffix(".tmp") }))
    }

    /// This boot of the machine, or nil where the kernel does not say (then no journal is trusted).
    static let bootID: String? = {
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else { return nil }
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? nil : id
    }()

    /// Creates (replacing) the journal file `url` for a run of `template`.
    init(url: URL, template: String) throws {
        self.url = url
        header = Array("\(Self.magic)\nboot \(Self.bootID ?? "-")\ntemplate \(Self.escape(template))\n".utf8)
        descriptor = -1
        descriptor = try Self.create(url, contents: header)
        size = header.count
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// One line of the journal.
    enum Event: UInt8, Sendable {
        /// Handed to libcurl: the relay may get it from now on.
        case handed = 0x48      // H
        /// The relay accepted it (250 to the end of DATA).
        case accepted = 0x53    // S
        /// The relay refused it for good.
        case failed = 0x46      // F
        /// Not accepted, to be tried again (4xx, or the session was refused).
        case deferred = 0x44    // D
    }

    /// Queues "handed over" for `key`; `flush` writes it.
    func handed(_ key: String) { append(Event.handed.rawValue, key) }

    /// Queues "accepted by the relay" for `key`; `flush` writes it.
    func accepted(_ key: String) { append(Event.accepted.rawValue, key) }

    /// Queues `event` for `key`; `flush` writes it.
    func record(_ event: Event, _ key: String) { append(event.rawValue, key) }

    private func append(_ kind: UInt8, _ key: String) {
        buffer.append(kind)
        buffer.append(UInt8(ascii: " "))
        buffer.append(contentsOf: key.utf8)
        buffer.append(UInt8(ascii: "\n"))
    }

    /// Writes the queued events in one `write` (no fsync: see the type's comment).
    func flush() throws {
        guard !buffer.isEmpty else { return }
        try Self.writeAll(descriptor, buffer, url: url)
        size += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    /// Replaces the file with one holding only `events` (what is still unresolved, in
    /// order), so the journal of a long blast stays small. Atomic: a crash leaves the old
    /// file or the new one.
    func rewrite(_ events: [(Event, String)]) throws {
        try flush()
        var contents = header
        for (event, key) in events {
            contents.append(event.rawValue)
            contents.append(UInt8(ascii: " "))
            contents += Array(key.utf8)
            contents.append(UInt8(ascii: "\n"))
        }
        let temporary = url.appendingPathExtension("tmp")
        let fresh = try Self.create(temporary, contents: contents)
        do {
            try AtomicFile.rename(temporary.path, over: url)
        } catch {
            close(fresh)
            throw error
        }
        close(descriptor)
        descriptor = fresh
        size = contents.count
    }

    /// Closes and deletes the file (the run's outcomes are all in the ledger).
    func remove() {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
        unlink(url.path)
    }

    private static func create(_ url: URL, contents: [UInt8]) throws -> Int32 {
        let descriptor = open(url.path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw MusterError.failure("cannot create \(url.path): \(String(cString: strerror(errno)))")
        }
        do {
            try writeAll(descriptor, contents, url: url)
        } catch {
            close(descriptor)
            throw error
        }
        return descriptor
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], url: URL) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                let code = errno
                let reason = MusterError.writeFailureReason(errno: code) ?? String(cString: strerror(code))
                throw MusterError(.temporary, "\(reason) while writing \(url.path); the blast stopped, fix that and run it again")
            }
            offset += written
        }
    }

    static func escape(_ template: String) -> String {
        template.unicodeScalars.map { $0.value < 0x21 || $0 == "%" || $0.value == 0x7F ? String(format: "%%%02X", $0.value) : String($0) }.joined()
    }

    /// What the journals left by an interrupted run say.
    struct Recovery: Equatable {
        /// The template of the run, when every journal agrees and was written on this boot.
        var template: String?
        /// The last event of each key handed over.
        var last: [String: Event] = [:]

        /// The keys handed over (whatever happened next).
        var handed: Set<String> { Set(last.keys) }
        /// The keys whose last event is the relay's acceptance.
        var accepted: Set<String> { Set(last.filter { $0.value == .accepted }.keys) }

        /// Whether the journals can be trusted for rows of `template`.
        func covers(_ template: String) -> Bool { self.template == HandoverJournal.escape(template) }
    }

    /// Reads the journals in `files`. Any doubt (another boot, a damaged header, a line
    /// that is not an event) makes the result trust nothing, so every `sending` row
    /// becomes `unknown`. A last line without its newline is a write cut short, which
    /// happened before the hand-over it announced: it is ignored.
    static func recover(_ files: [URL], bootID: String? = HandoverJournal.bootID) -> Recovery {
        var recovery = Recovery()
        guard !files.isEmpty, let bootID else { return recovery }
        var template: String?
        for file in files {
            guard let data = FileManager.default.contents(atPath: file.path) else { return Recovery() }
            var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            if lines.last?.isEmpty == true { lines.removeLast() } else if lines.count > 3 { lines.removeLast() }
            guard lines.count >= 3,
                  String(decoding: lines[0], as: UTF8.self) == magic,
                  String(decoding: lines[1], as: UTF8.self) == "boot \(bootID)" else { return Recovery() }
            let named = String(decoding: lines[2], as: UTF8.self)
            guard named.hasPrefix("template "), template == nil || template == String(named.dropFirst(9)) else { return Recovery() }
            template = String(named.dropFirst(9))
            for line in lines.dropFirst(3) {
                guard line.count > 2, line[line.startIndex + 1] == UInt8(ascii: " "),
                      line.dropFirst(2).allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return Recovery() }
                let key = String(decoding: line.dropFirst(2), as: UTF8.self)
                guard let event = Event(rawValue: line[line.startIndex]) else { return Recovery() }
                // Each key is in one loop's journal at a time, so file order is event order.
                recovery.last[key] = event
            }
        }
        recovery.template = template  // escaped, as in the header (see `covers`)
        return recovery
    }
}
