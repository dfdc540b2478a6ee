import Foundation
import MusterKit
import Testing

/// `IMAPMailbox` against a real Dovecot on loopback, checked through a second,
/// independent IMAP client (Python's imaplib): what moved, what stayed, what is unread.
@Suite(.enabled(if: TestDovecot.available, "needs Debian's dovecot-imapd (make test installs it)"))
struct IMAPMailboxTests {
    static func message(_ id: String, subject: String, body: String = "Hello.\r\n") -> String {
        "From: Someone <someone@elsewhere.example>\r\nTo: bounces@fairrates.example\r\nSubject: \(subject)\r\n"
            + "Message-ID: <\(id)@elsewhere.example>\r\nDate: Thu, 03 Dec 2026 07:00:00 +0000\r\n\r\n\(body)"
    }

    /// Writes messages into the sandbox; returns their files.
    static func files(_ messages: [String], in box: Sandbox) throws -> [URL] {
        try messages.enumerated().map { index, text in
            try box.write("corpus/\(index).eml", text)
            return box.path("corpus/\(index).eml")
        }
    }

    static func mailbox(_ server: TestDovecot, url: String? = nil, password: String? = nil, caFile: String?? = nil,
                        folder: String = "INBOX") throws -> IMAPMailbox {
        let settings = try IMAPSettings(url: url ?? server.starttlsURL, username: server.user, password: password ?? server.password,
                                        folder: folder, caFile: caFile ?? server.ca)
        return IMAPMailbox(settings: settings)
    }

    @Test func listsFetchesWithoutMarkingReadAndMovesOnlyWhatItIsTold() throws {
        let box = try Sandbox()
        let texts = [Self.message("bounce-1", subject: "Undelivered Mail Returned to Sender"),
                     Self.message("unrelated", subject: "Lunch on Friday?"),
                     Self.message("bounce-2", subject: "Delivery Status Notification (Failure)")]
        let server = try TestDovecot(in: box)
        try server.append(try Self.files(texts, in: box))
        try server.append(try Self.files([Self.message("seen-bounce", subject: "Returned mail")], in: box), flags: "(\\Seen \\Flagged)")
        let mailbox = try Self.mailbox(server)

        let (validity, uids) = try mailbox.listUIDs()
        #expect(validity > 0)
        #expect(uids == [1, 2, 3, 4])
        for (uid, text) in zip(uids, texts) {
            #expect(try mailbox.fetch(uid: uid, limit: 1 << 20) == Array(text.utf8), "byte for byte, UID \(uid)")
        }
        var state = try server.state()
        #expect(state["INBOX"]?.allSatisfy { $0.uid == 4 || $0.flags.isEmpty } == true, "fetching set no flag: \(state)")

        try mailbox.move(uid: 1, to: "muster/processed")
        try mailbox.move(uid: 4, to: "muster/processed")
        try mailbox.move(uid: 3, to: "muster/unrecognised")
        mailbox.close()
        state = try server.state()
        #expect(state["INBOX"]?.map(\.messageID) == ["<unrelated@elsewhere.example>"])
        #expect(state["INBOX"]?.first?.flags == [], "the unrelated message is untouched and unread")
        let processed = state["muster/processed"] ?? []
        #expect(processed.map(\.messageID) == ["<bounce-1@elsewhere.example>", "<seen-bounce@elsewhere.example>"])
        #expect(processed.first?.flags == [], "moving kept the message unread")
        #expect(Set(processed.last?.flags ?? []) == ["\\Seen", "\\Flagged"], "and kept the flags it had")
        #expect(state["muster/unrecognised"]?.map(\.messageID) == ["<bounce-2@elsewhere.example>"])

        // A second run on a new connection sees what is left, under the same UIDVALIDITY.
        let again = try Self.mailbox(server).listUIDs()
        #expect(again.validity == validity)
        #expect(again.uids == [2])
    }

    @Test func withoutMOVEItCopiesAndExpungesThatOneUIDAndNoOtherDeletedMail() throws {
        let box = try Sandbox()
        let server = try TestDovecot(["--hide-move"], in: box)
        try server.append(try Self.files([Self.message("bounce", subject: "Bounce"), Self.message("deleted-by-owner", subject: "Old"),
                                          Self.message("bounce-3", subject: "Bounce"), Self.message("bounce-4", subject: "Bounce")], in: box))
        try server.flag(uid: 2, "\\Deleted")
        let mailbox = try Self.mailbox(server)
        #expect(try mailbox.listUIDs().uids == [1, 2, 3, 4])
        try mailbox.move(uid: 1, to: "muster/processed")
        // A set around the owner's deleted message (UID COPY/STORE/EXPUNGE 3:4).
        try mailbox.move(uids: [4, 3], to: "muster/processed")
        mailbox.close()
        let state = try server.state()
        #expect(state["muster/processed"]?.map(\.messageID) == ["<bounce@elsewhere.example>", "<bounce-3@elsewhere.example>", "<bounce-4@elsewhere.example>"])
        #expect(state["muster/processed"]?.allSatisfy { $0.flags.isEmpty } == true, "the copies do not carry \\Deleted")
        #expect(state["INBOX"]?.map(\.messageID) == ["<deleted-by-owner@elsewhere.example>"], "a plain EXPUNGE would have removed it")
    }

    /// One call with more UIDs than one command takes, none of them adjacent to the next
    /// run: every named message moves, every other one stays (unread), and naming them
    /// again (already gone) is no error.
    @Test(arguments: [[String](), ["--hide-move"]])
    func aSetOfManyUIDsMovesInBoundedCommandsAndOnlyThoseUIDs(options: [String]) throws {
        let box = try Sandbox()
        var files: [URL] = []
        for index in 1...1_200 {
            try box.write("many/\(index).eml", Self.message("m\(index)", subject: "Bounce \(index)"))
            files.append(box.path("many/\(index).eml"))
        }
        let server = try TestDovecot(options, load: files, in: box)
        let mailbox = try Self.mailbox(server)
        let uids = try mailbox.listUIDs().uids
        #expect(uids == Array(1...1_200))
        let kept = Set(uids.filter { $0 % 7 == 0 || $0 == 500 || $0 == 501 })
        let moving = uids.filter { !kept.contains($0) }
        #expect(moving.count > IMAPMailbox.maxUIDsPerCommand * 2)
        try mailbox.move(uids: moving.reversed(), to: "muster/processed")
        try mailbox.move(uids: Array(moving.prefix(10)), to: "muster/processed")  // already moved
        mailbox.close()
        let state = try server.state()
        #expect(state["INBOX"]?.map(\.messageID) == kept.sorted().map { "<m\($0)@elsewhere.example>" })
        #expect(state["INBOX"]?.allSatisfy { $0.flags.isEmpty } == true, "the others are untouched and unread")
        #expect(Set(state["muster/processed"]?.map(\.messageID) ?? []) == Set(moving.map { "<m\($0)@elsewhere.example>" }))
        #expect(state["muster/processed"]?.count == moving.count, "each moved once")
    }

    @Test func withNeitherMOVENorUIDPLUSItMovesNothing() throws {
        let box = try Sandbox()
        let server = try TestDovecot(["--hide-uidplus"], in: box)
        try server.append(try Self.files([Self.message("bounce", subject: "Bounce")], in: box))
        let mailbox = try Self.mailbox(server)
        _ = try mailbox.listUIDs()
        #expect(throws: MailboxError.self) { try mailbox.move(uid: 1, to: "muster/processed") }
        mailbox.close()
        let state = try server.state()
        #expect(state["INBOX"]?.map(\.flags) == [[]])
        #expect(state.keys.sorted() == ["INBOX"])
    }

    @Test func foldersFollowTheServersSeparatorAndModifiedUTF7() throws {
        let box = try Sandbox()
        let server = try TestDovecot(["--separator", "."], in: box)
        try server.append(try Self.files([Self.message("a", subject: "A"), Self.message("b", subject: "B")], in: box))
        let mailbox = try Self.mailbox(server)
        _ = try mailbox.listUIDs()
        try mailbox.move(uid: 1, to: "muster/processed")
        try mailbox.move(uid: 2, to: "muster/traité & co")
        mailbox.close()
        let state = try server.state()
        #expect(state["muster.processed"]?.count == 1, "\(state.keys.sorted())")
        #expect(state["muster.trait&AOk- &- co"]?.count == 1, "\(state.keys.sorted())")
        // And the configured folder is read by the same rules.
        let nested = try Self.mailbox(server, folder: "muster/processed")
        #expect(try nested.listUIDs().uids.count == 1)
    }

    @Test func aMessageThatLooksLikeIMAPRepliesComesBackByteForByte() throws {
        let box = try Sandbox()
        let server = try TestDovecot(in: box)
        // Lines a line-based client would take for the end of the reply, and no final CRLF.
        let body = "m1 OK done\r\nm5 OK FETCH completed\r\n* BYE going away\r\n{12}\r\n) UID 9)\r\n" + String(repeating: "x", count: 70_000) + "\r\nend"
        let text = Self.message("tricky", subject: "Tricky", body: body)
        try server.append(try Self.files([text], in: box))
        let mailbox = try Self.mailbox(server, url: server.imapsURL)
        let uids = try mailbox.listUIDs().uids
        #expect(try mailbox.fetch(uid: uids[0], limit: 1 << 20) == Array(text.utf8))
        try mailbox.move(uid: uids[0], to: "muster/processed")
        mailbox.close()
        #expect(try server.state()["muster/processed"]?.count == 1)
    }

    @Test func aMessageOverTheLimitIsRefusedAndNotFetchedWhole() throws {
        let box = try Sandbox()
        let server = try TestDovecot(in: box)
        let big = Self.message("big", subject: "Big", body: String(repeating: "0123456789abcdef\r\n", count: 4000))
        try server.append(try Self.files([big, Self.message("small", subject: "Small")], in: box))
        let size = big.utf8.count
        let mailbox = try Self.mailbox(server)
        #expect(try mailbox.listUIDs().uids == [1, 2])
        #expect(throws: MailboxError.tooLarge(uid: 1)) { try mailbox.fetch(uid: 1, limit: size - 1) }
        #expect(try mailbox.fetch(uid: 1, limit: size).count == size, "exactly at the limit is fine")
        #expect(try mailbox.fetch(uid: 2, limit: 1000).count > 0, "the connection is still usable")
        // Without the listed sizes the limit is enforced on the data itself (a partial fetch).
        let fresh = try Self.mailbox(server)
        #expect(throws: MailboxError.tooLarge(uid: 1)) { try fresh.fetch(uid: 1, limit: 1000) }
        #expect(try fresh.fetch(uid: 2, limit: 1000).count > 0)
        fresh.close()
        mailbox.close()
        #expect(try server.state()["INBOX"]?.map(\.flags) == [[], []])
    }

    @Test func aDroppedConnectionFailsClearlyAndTheNextCallCarriesOn() throws {
        let box = try Sandbox()
        let server = try TestDovecot(in: box)
        let big = Self.message("big", subject: "Big", body: String(repeating: "a long bounce line of text\r\n", count: 8000))
        try server.append(try Self.files([big, Self.message("after", subject: "After")], in: box))
        let proxy = try DropProxy(target: try #require(server.tls), cutAfter: 40_000)
        let mailbox = try Self.mailbox(server, url: "imaps://127.0.0.1:\(proxy.port)")
        let uids = try mailbox.listUIDs().uids
        do {
            _ = try mailbox.fetch(uid: uids[0], limit: 1 << 20)
            Issue.record("the cut connection went unnoticed")
        } catch let error as MailboxError {
            guard case .connection(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("imaps://127.0.0.1:\(proxy.port)"), "names the server: \(message)")
            #expect(message.contains("lost"), "\(message)")
            #expect(!message.contains(server.password))
        }
        // The next call connects again (the proxy lets it through) and gets the whole message.
        #expect(try mailbox.fetch(uid: uids[0], limit: 1 << 20) == Array(big.utf8))
        try mailbox.move(uid: uids[1], to: "muster/processed")
        mailbox.close()
        let state = try server.state()
        #expect(state["INBOX"]?.map(\.messageID) == ["<big@elsewhere.example>"])
        #expect(state["INBOX"]?.first?.flags == [])
    }

    @Test func tlsIsRequiredTheCertificateCheckedAndThePasswordNeverShown() throws {
        let box = try Sandbox()
        let clear = try TestDovecot(["--no-tls"], in: box)
        do {
            _ = try Self.mailbox(clear, caFile: .some(nil)).listUIDs()
            Issue.record("logged in without TLS")
        } catch let error as MailboxError {
            #expect(error == .protocolError("the IMAP server imap://127.0.0.1:\(clear.plain) does not offer STARTTLS, and muster logs in over TLS only: use imaps:// or turn STARTTLS on"))
        }
        let log = try String(contentsOf: clear.directory.appendingPathComponent("dovecot.log"), encoding: .utf8)
        #expect(!log.contains("Login: user=<"), "no login was tried in clear text")

        let server = try TestDovecot(in: box)
        for url in [server.starttlsURL, server.imapsURL] {
            do {
                _ = try Self.mailbox(server, url: url, caFile: .some(nil)).listUIDs()
                Issue.record("trusted a self-signed certificate")
            } catch let error as MailboxError {
                guard case .protocolError(let message) = error else { Issue.record("\(error)"); continue }
                #expect(message.contains("TLS with the IMAP server \(url)"), "\(message)")
                #expect(message.contains("inbox.ca_file"), "\(message)")
            }
            let wrong = "wrong-\(UUID().uuidString)"
            do {
                _ = try Self.mailbox(server, url: url, password: wrong).listUIDs()
                Issue.record("a wrong password was accepted")
            } catch let error as MailboxError {
                guard case .authentication(let message) = error else { Issue.record("\(error)"); continue }
                #expect(message.contains(url) && message.contains("user \(server.user)"), "\(message)")
                #expect(!message.contains(wrong) && !message.contains(server.password))
            }
        }
        let settings = try IMAPSettings(url: server.imapsURL, username: "u", password: "s3cret-value")
        #expect(!"\(settings)".contains("s3cret") && !String(reflecting: settings).contains("s3cret"))
        var dumped = ""
        dump(settings, to: &dumped)
        #expect(!dumped.contains("s3cret"))
    }

    /// A listing far longer than one read (3,000 messages, ~100 kB of FETCH lines): the
    /// buffer is compacted between reads and no line may be lost or merged.
    @Test func aLongListingLosesNoUID() throws {
        let box = try Sandbox()
        var files: [URL] = []
        for index in 0..<3000 {
            try box.write("many/\(index).eml", "Subject: \(index)\r\nMessage-ID: <m\(index)@example.net>\r\n\r\nx\r\n")
            files.append(box.path("many/\(index).eml"))
        }
        let server = try TestDovecot(load: files, in: box)
        let mailbox = try Self.mailbox(server)
        let uids = try mailbox.listUIDs().uids
        #expect(uids == Array(1...3000))
        #expect(try mailbox.fetch(uid: 3000, limit: 1000).count > 0)
        mailbox.close()
    }

    @Test func anEmptyFolderAndAMissingOne() throws {
        let box = try Sandbox()
        let server = try TestDovecot(in: box)
        let (validity, uids) = try Self.mailbox(server).listUIDs()
        #expect(validity > 0 && uids.isEmpty)
        do {
            _ = try Self.mailbox(server, folder: "Bounces").listUIDs()
            Issue.record("a missing folder was read")
        } catch let error as MailboxError {
            guard case .protocolError(let message) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("cannot open the folder Bounces"), "\(message)")
        }
    }
}
