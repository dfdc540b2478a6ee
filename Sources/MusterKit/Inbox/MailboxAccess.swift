/// The seam between `muster inbox` and the mailbox it reads: the real one is IMAP through
/// libcurl (`IMAPMailbox`); tests of the processing use a scripted one.
///
/// Every method works by IMAP UID within one folder (the configured `inbox.folder`,
/// INBOX by default). Nothing here may mark a message as read (`BODY.PEEK[]`), delete
/// it, or touch a message it was not asked about.
public protocol MailboxAccess: Sendable {
    /// The folder's UIDVALIDITY and the UIDs of every message in it, in ascending order.
    func listUIDs() throws -> (validity: UInt64, uids: [UInt64])
    /// The whole message, as the server stores it, without setting `\Seen`.
    /// At most `limit` bytes are read; a longer message throws `MailboxError.tooLarge`.
    func fetch(uid: UInt64, limit: Int) throws -> [UInt8]
    /// Moves the messages to `folder` (created when missing), keeping their flags, in as
    /// few commands as the server allows (`UID MOVE` of a UID set, a bounded number of
    /// UIDs per command). A UID no longer in the folder is skipped, not an error.
    func move(uids: [UInt64], to folder: String) throws
}

extension MailboxAccess {
    /// Moves one message (a batch of one).
    public func move(uid: UInt64, to folder: String) throws {
        try move(uids: [uid], to: folder)
    }
}

public enum MailboxError: Error, Sendable, Equatable {
    /// The connection failed or dropped; the message says what and where (no password).
    case connection(String)
    /// The server refused the login (wrong user or password).
    case authentication(String)
    /// A message over the size limit (its UID and size when known).
    case tooLarge(uid: UInt64)
    /// The server answered something muster did not expect.
    case protocolError(String)
}
