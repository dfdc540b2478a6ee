import Foundation

/// How `muster inbox` processes the mailbox.
public struct InboxOptions: Sendable {
    /// Classify and report only: nothing is moved and the ledgers are not written.
    public var dryRun = false
    /// Where messages muster acted on (bounces, complaints, unsubscribes, auto-replies to
    /// muster's mail) are moved.
    public var processedFolder = "muster/processed"
    /// Where bounce-shaped messages muster could not tie to one of its own messages are
    /// moved (forged, someone else's, malformed, too large). They suppress nothing.
    public var unrecognisedFolder = "muster/unrecognised"
    /// The largest message fetched; a larger one is moved to `unrecognisedFolder` unread.
    public var maxMessageBytes = 10 * 1024 * 1024
    /// Soft bounces (4.x.x, mailbox full) of one recipient within `softBounceWindowDays`
    /// that suppress the address (`inbox.soft_bounce_limit` in muster.yaml).
    public var softBounceLimit = 3
    /// The window soft bounces are counted in, in days (`inbox.soft_bounce_days`).
    public var softBounceWindowDays = 30
    /// Processed messages are moved in batches: once this many wait, and at the end of
    /// the run (also when it stops on an error). Each batch is one `UID MOVE` per folder.
    public var moveBatchSize = 500
    /// The time the processing runs at (tests set it).
    public var now: @Sendable () -> Date = { Date() }
    public init() {}
}

/// What one message was, and what `muster inbox` did (or, with `--dry-run`, would do)
/// with it. Never an address: the campaign, template and status code only.
public struct InboxAction: Codable, Sendable, Equatable {
    /// The message's UID in the folder read.
    public var uid: UInt64
    /// `hard`, `soft`, `delayed`, `complaint`, `unsubscribe`, `auto_reply`, `unrecognised`,
    /// `already_processed` or `untouched` (mail that is not muster's business).
    public var kind: String
    /// The campaign and template the message was tied to (by muster's own Message-ID or
    /// VERP token), when it was.
    public var campaign: String?
    public var template: String?
    /// The enhanced status code of a bounce (`5.1.1`), when it gives one.
    public var status: String?
    /// Whether this message suppressed (or unsubscribed) its recipient now.
    public var suppressed: Bool
    /// The folder the message is moved to; nil when it stays where it is.
    public var folder: String?
    /// Why, in a few words (no addresses).
    public var reason: String

    public init(uid: UInt64, kind: String, campaign: String? = nil, template: String? = nil, status: String? = nil,
                suppressed: Bool = false, folder: String? = nil, reason: String) {
        self.uid = uid
        self.kind = kind
        self.campaign = campaign
        self.template = template
        self.status = status
        self.suppressed = suppressed
        self.folder = folder
        self.reason = reason
    }
}

/// The counts of one `muster inbox` run, and what it did per message.
public struct InboxSummary: Codable, Sendable, Equatable {
    public var dryRun = false
    /// Messages in the folder looked at.
    public var scanned = 0
    public var hard = 0
    public var soft = 0
    /// Delay notices (`Action: delayed`): the relay is still trying; nothing is counted.
    public var delayed = 0
    public var complaints = 0
    public var unsubscribes = 0
    public var autoReplies = 0
    public var unrecognised = 0
    /// Messages an earlier run processed whose move had not happened (a dropped connection).
    public var alreadyProcessed = 0
    /// Mail that is not muster's: left where it is, unread.
    public var untouched = 0
    /// Addresses suppressed (or unsubscribed) by this run.
    public var suppressedNow = 0
    /// One entry per message looked at, in UID order.
    public var actions: [InboxAction] = []
    /// Where the run's time went: waiting on the IMAP server vs. muster's own work.
    public var timings = InboxTimings()

    public init() {}

    enum CodingKeys: String, CodingKey {
        case dryRun = "dry_run", scanned, hard, soft, delayed, complaints, unsubscribes
        case autoReplies = "auto_replies", unrecognised, alreadyProcessed = "already_processed", untouched
        case suppressedNow = "suppressed_now", actions, timings
    }

    mutating func count(_ action: InboxAction) {
        switch action.kind {
        case InboxKind.hard.rawValue: hard += 1
        case InboxKind.soft.rawValue: soft += 1
        case InboxKind.delayed.rawValue: delayed += 1
        case InboxKind.complaint.rawValue: complaints += 1
        case InboxKind.unsubscribe.rawValue: unsubscribes += 1
        case InboxKind.autoReply.rawValue: autoReplies += 1
        case InboxKind.unrecognised.rawValue: unrecognised += 1
        case InboxKind.alreadyProcessed.rawValue: alreadyProcessed += 1
        default: untouched += 1
        }
        if action.suppressed { suppressedNow += 1 }
        actions.append(action)
    }
}

/// The seconds one `muster inbox` run spent, by a monotonic clock: waiting on the IMAP
/// server (logging in and listing, fetching, moving; each call to the `MailboxAccess`
/// timed whole) and everything else (parsing, classifying, ledger and suppression writes).
/// `total` is the whole run; `processing` is `total` minus the three server parts.
public struct InboxTimings: Codable, Sendable, Equatable {
    public var total: Double = 0
    public var imapList: Double = 0
    public var imapFetch: Double = 0
    public var imapMove: Double = 0
    public var processing: Double = 0

    public init() {}

    /// The server's part: list + fetch + move.
    public var imap: Double { imapList + imapFetch + imapMove }

    enum CodingKeys: String, CodingKey {
        case total = "total_seconds", imapList = "imap_list_seconds", imapFetch = "imap_fetch_seconds"
        case imapMove = "imap_move_seconds", processing = "processing_seconds"
    }
}

/// Adds the time `body` takes to `seconds` (also when it throws).
private func timed<T>(_ seconds: inout Double, _ body: () throws -> T) rethrows -> T {
    let clock = ContinuousClock()
    let start = clock.now
    defer { seconds += (clock.now - start).seconds }
    return try body()
}

private extension Duration {
    var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }
}

/// The kinds of `InboxAction.kind`.
enum InboxKind: String, Sendable {
    case hard, soft, delayed, complaint, unsubscribe
    case autoReply = "auto_reply"
    case unrecognised
    case alreadyProcessed = "already_processed"
    case untouched
}

/// `muster inbox`: reads the bounce mailbox through a `MailboxAccess`, ties each bounce,
/// complaint and unsubscribe request to the exact (campaign, template, recipient) by
/// muster's own authenticated Message-ID or VERP token (never by an address in prose),
/// suppresses or unsubscribes, records what it processed in the campaign's ledger (so a
/// rerun after a dropped connection counts nothing twice), and moves the message.
public enum InboxProcessor {
    public static func run(workspace: Workspace, mailbox: any MailboxAccess, options: InboxOptions,
                           progress: (@Sendable (Int, Int) -> Void)? = nil) throws -> InboxSummary {
        let clock = ContinuousClock()
        let start = clock.now
        var summary = InboxSummary()
        summary.dryRun = options.dryRun
        var timings = InboxTimings()
        if !options.dryRun { try InboxCampaigns.ensureSealKeys(workspace: workspace) }
        let listing = try timed(&timings.imapList) { try mailbox.listUIDs() }
        let campaigns = try InboxCampaigns(workspace: workspace)
        var pending = PendingMoves()
        do {
            for (index, uid) in listing.uids.enumerated() {
                let action = try process(uid: uid, validity: listing.validity, mailbox: mailbox, campaigns: campaigns,
                                         options: options, timings: &timings)
                summary.scanned += 1
                summary.count(action)
                if !options.dryRun, let folder = action.folder {
                    pending.add(uid, to: folder)
                    if pending.count >= max(1, options.moveBatchSize) { try pending.flush(mailbox, timings: &timings) }
                }
                progress?(index + 1, listing.uids.count)
            }
            try pending.flush(mailbox, timings: &timings)
        } catch {
            // Whatever stopped the run (a dropped connection mid-fetch, a ledger error, a
            // refused move), move what was processed so far while the server still answers
            // (the mailbox connects again once after a drop). Every one of these is already
            // recorded in the ledger, so when this fails too the rerun recognises them and
            // only moves them. The first error is the one reported.
            try? pending.flush(mailbox, timings: &timings)
            throw error
        }
        timings.total = (clock.now - start).seconds
        timings.processing = max(0, timings.total - timings.imap)
        summary.timings = timings
        return summary
    }

    /// One message: fetch, classify, apply (unless a dry run); the action names the folder
    /// it goes to, and `run` moves it with its batch. A connection error propagates: what
    /// was applied is recorded, so the rerun moves it without counting it again.
    static func process(uid: UInt64, validity: UInt64, mailbox: any MailboxAccess, campaigns: InboxCampaigns,
                        options: InboxOptions, timings: inout InboxTimings) throws -> InboxAction {
        let bytes: [UInt8]
        do {
            bytes = try timed(&timings.imapFetch) { try mailbox.fetch(uid: uid, limit: options.maxMessageBytes) }
        } catch MailboxError.tooLarge {
            return InboxAction(uid: uid, kind: InboxKind.unrecognised.rawValue, folder: options.unrecognisedFolder,
                               reason: "larger than \(options.maxMessageBytes) bytes; not read")
        }
        let message = InboxMessage(bytes: bytes)
        let verdict = BounceClassifier.classify(message)
        var action = try campaigns.apply(verdict, message: message, uid: uid, validity: validity, options: options)
        if action.folder == nil && action.kind != InboxKind.untouched.rawValue {
            action.folder = action.kind == InboxKind.unrecognised.rawValue ? options.unrecognisedFolder : options.processedFolder
        }
        return action
    }
}

/// Processed UIDs waiting to be moved, per destination folder (in the order the folders
/// first came up).
struct PendingMoves {
    private var folders: [String] = []
    private var uids: [String: [UInt64]] = [:]
    private(set) var count = 0

    mutating func add(_ uid: UInt64, to folder: String) {
        if uids[folder] == nil { folders.append(folder) }
        uids[folder, default: []].append(uid)
        count += 1
    }

    /// Moves every folder's UIDs (one `move(uids:to:)` each); a folder leaves the queue
    /// once its move succeeded, so a second flush after an error retries only the rest.
    mutating func flush(_ mailbox: any MailboxAccess, timings: inout InboxTimings) throws {
        while let folder = folders.first {
            let batch = uids[folder] ?? []
            try timed(&timings.imapMove) { try mailbox.move(uids: batch, to: folder) }
            folders.removeFirst()
            uids[folder] = nil
            count -= batch.count
        }
    }
}
