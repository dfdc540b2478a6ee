import Foundation

/// The workspace's campaigns as `muster inbox` sees them: each ledger with its token key
/// and templates, opened once per run. Ties a verdict to an outbox row through a token
/// and applies it.
final class InboxCampaigns {
    struct Entry {
        let slug: String
        let ledger: Ledger
        let key: MailTokenKey
        let templates: [String]
    }

    let entries: [Entry]

    init(workspace: Workspace) throws {
        var entries: [Entry] = []
        for slug in workspace.campaignSlugs() {
            let campaign = Campaign(workspace: workspace, slug: slug)
            guard FileManager.default.fileExists(atPath: campaign.ledgerURL.path),
                  let ledger = try Ledger.open(campaign.ledgerURL, create: false) else { continue }
            entries.append(Entry(slug: slug, ledger: ledger, key: try ledger.mailTokenKey(), templates: try ledger.outboxTemplates()))
        }
        self.entries = entries
    }

    /// Before the mailbox is read: refuses (exit 1, nothing read, moved or written) when
    /// a campaign's ledger has lost its seal key. Its bounces would be written unsealed (or
    /// sealed under a replaced key that the backup to restore does not have) while their
    /// messages moved to muster/processed: recorded nowhere that counts.
    static func ensureSealKeys(workspace: Workspace) throws {
        for slug in workspace.campaignSlugs() {
            let campaign = Campaign(workspace: workspace, slug: slug)
            guard FileManager.default.fileExists(atPath: campaign.ledgerURL.path),
                  let ledger = try Ledger.open(campaign.ledgerURL, create: false) else { continue }
            try ledger.ensureSealKeyForWriting("nothing was read from the mailbox, moved or written")
        }
    }

    /// The outbox row the first token that checks names: VERP tokens before Message-IDs.
    func bind(_ verdict: BounceVerdict) throws -> (entry: Entry, template: String, recipient: String)? {
        for token in verdict.verpTokens + verdict.idTokens {
            for entry in entries {
                if let row = try entry.ledger.resolve(token, campaign: entry.slug, key: entry.key, templates: entry.templates) {
                    return (entry, row.template, row.recipient)
                }
            }
        }
        return nil
    }

    /// Applies one verdict (unless `options.dryRun`) and says what was done.
    func apply(_ verdict: BounceVerdict, message: InboxMessage, uid: UInt64, validity: UInt64, options: InboxOptions) throws -> InboxAction {
        let now = options.now()
        for entry in entries where try entry.ledger.wasProcessed(messageHash: verdict.messageHash) {
            return InboxAction(uid: uid, kind: InboxKind.alreadyProcessed.rawValue, campaign: entry.slug, folder: options.processedFolder,
                               reason: "processed by an earlier run (recorded in the ledger); moved only")
        }
        let processed = (hash: verdict.messageHash, validity: validity, uid: uid)
        switch verdict.kind {
        case .unrelated:
            return InboxAction(uid: uid, kind: InboxKind.untouched.rawValue, reason: verdict.reason)
        case .unrecognised:
            return InboxAction(uid: uid, kind: InboxKind.unrecognised.rawValue, status: verdict.status, folder: options.unrecognisedFolder,
                               reason: verdict.reason)
        case .autoReply, .delayed:
            guard let bound = try bind(verdict) else {
                // An auto-reply to someone else's mail is not muster's business; a delay notice
                // without muster's token is not either.
                return InboxAction(uid: uid, kind: InboxKind.untouched.rawValue, reason: verdict.reason + "; not about a message muster sent")
            }
            let kind: InboxKind = verdict.kind == .autoReply ? .autoReply : .delayed
            return InboxAction(uid: uid, kind: kind.rawValue, campaign: bound.entry.slug, template: bound.template, status: verdict.status,
                               folder: options.processedFolder, reason: verdict.reason + "; ignored")
        case .hard, .soft, .complaint:
            guard let bound = try bind(verdict) else {
                return InboxAction(uid: uid, kind: InboxKind.unrecognised.rawValue, status: verdict.status, folder: options.unrecognisedFolder,
                                   reason: verdict.reason + "; no Message-ID or VERP token of this workspace's mail: suppresses nothing")
            }
            let kind: BounceKind = verdict.kind == .hard ? .hard : verdict.kind == .soft ? .soft : .complaint
            let outcome = try bound.entry.ledger.recordBounce(
                recipient: bound.recipient, template: bound.template, kind: kind, status: verdict.status, source: "inbox",
                softLimit: options.softBounceLimit, softWindowDays: options.softBounceWindowDays, processed: processed,
                dryRun: options.dryRun, at: now)
            var reason = verdict.reason
            if kind == .soft { reason += "; soft bounce \(outcome.softCount) of \(options.softBounceLimit) in \(options.softBounceWindowDays) days" }
            let inboxKind: InboxKind = kind == .hard ? .hard : kind == .soft ? .soft : .complaint
            return InboxAction(uid: uid, kind: inboxKind.rawValue, campaign: bound.entry.slug, template: bound.template, status: verdict.status,
                               suppressed: outcome.suppressedNow, folder: options.processedFolder, reason: reason)
        case .unsubscribe:
            return try unsubscribe(verdict, uid: uid, processed: processed, options: options, at: now)
        }
    }

    /// An unsubscribe request: the recipient of the muster message it answers (its
    /// In-Reply-To), or else its sender's address in every campaign that knows it (or the
    /// only campaign), becomes an opt-out, as `muster unsubscribe` records one.
    private func unsubscribe(_ verdict: BounceVerdict, uid: UInt64, processed: (hash: String, validity: UInt64, uid: UInt64),
                             options: InboxOptions, at now: Date) throws -> InboxAction {
        var targets: [(Entry, String)] = []
        var template: String?
        if let bound = try bind(verdict) {
            targets = [(bound.entry, bound.recipient)]
            template = bound.template
        } else if let from = verdict.from, let canonical = try? SignatureInput.validatedEmail(from) {
            for entry in entries {
                let key = try entry.ledger.recipientKey(email: canonical)
                if try entry.ledger.knows(recipient: key) { targets.append((entry, key)) }
            }
            if targets.isEmpty, entries.count == 1 { targets = [(entries[0], try entries[0].ledger.recipientKey(email: canonical))] }
        }
        guard !targets.isEmpty else {
            return InboxAction(uid: uid, kind: InboxKind.unrecognised.rawValue, folder: options.unrecognisedFolder,
                               reason: "an unsubscribe request muster could not tie to a campaign (no valid sender address or token)")
        }
        var changed = false
        for (entry, key) in targets {
            if options.dryRun {
                changed = try !entry.ledger.isOptedOut(fingerprintHex: key) || changed
            } else {
                if case .unsubscribed = try entry.ledger.unsubscribe(fingerprintHex: key, at: now) { changed = true }
                try entry.ledger.recordProcessed(hash: processed.hash, validity: processed.validity, uid: processed.uid,
                                                 outcome: "unsubscribe", at: now)
            }
        }
        return InboxAction(uid: uid, kind: InboxKind.unsubscribe.rawValue, campaign: targets.count == 1 ? targets[0].0.slug : nil,
                           template: template, suppressed: changed, folder: options.processedFolder,
                           reason: verdict.reason + (template == nil ? " (matched by its sender)" : " (matched by the message it answers)"))
    }
}

extension Ledger {
    /// Whether the key signed here or has an outbox row.
    func knows(recipient key: String) throws -> Bool {
        try withStorage(path: url.path) {
            try database.scalarInt("""
                SELECT EXISTS (SELECT 1 FROM entries WHERE fingerprint = ?1 AND kind = 'signature') OR EXISTS (SELECT 1 FROM outbox WHERE recipient = ?1)
                """, .text(key)) == 1
        }
    }
}
