import Foundation

/// What `muster merge` did (or, in a dry run, would do).
public struct MergeSummary: Sendable, Codable, Equatable {
    /// Signatures in the other ledger.
    public var otherCount: Int64
    /// The other ledger's head hash, as verified.
    public var otherHead: String
    public var added: Int
    /// Signers already in this ledger (or earlier in the other one).
    public var duplicates: Int
    /// Signatures whose personal data was forgotten in the other ledger: they cannot be
    /// matched by address, so they are not merged.
    public var forgottenSkipped: Int
    /// Signatures this campaign's manifest refuses.
    public var rejected: Int
    /// The first 100 of them: entry number and reason (values left out).
    public var rejectedEntries: [String]
    /// Unsubscribed signers of the other ledger, unsubscribed here too.
    public var unsubscribed: Int
    /// Signatures in this ledger afterwards.
    public var count: Int64
    public var dryRun: Bool

    enum CodingKeys: String, CodingKey {
        case otherCount = "other_count"
        case otherHead = "other_head"
        case added, duplicates
        case forgottenSkipped = "forgotten_skipped"
        case rejected
        case rejectedEntries = "rejected_entries"
        case unsubscribed, count
        case dryRun = "dry_run"
    }
}

/// Folds a ledger collected on another machine into a campaign's ledger.
///
/// The other ledger's chain is verified first (a tampered one is refused). Its
/// signatures are appended in their original `signed_at` order, each validated against
/// this campaign's manifest, keeping their time, source and collector; an address that
/// already signed here is a duplicate (the ledger is append-only: the signature here
/// stays, even when the other one is earlier). Merging the same ledger twice changes nothing.
public enum Merger {
    public static func run(other url: URL, campaign: Campaign, manifest: Manifest, collector: String?, dryRun: Bool,
                           clock: Clock) throws -> MergeSummary {
        let ours = campaign.ledgerURL.resolvingSymlinksInPath().standardizedFileURL
        if url.resolvingSymlinksInPath().standardizedFileURL == ours {
            throw MusterError.usage("\(url.path) is this campaign's own ledger; merge a ledger from another machine")
        }
        let other = try Ledger.openExisting(url)
        let report = try other.verifySequentially()
        if !report.ok, let bad = report.firstBad {
            throw MusterError.badInput("\(url.path) does not verify: \(bad.entry.map { "entry \($0): " } ?? "")\(bad.reason); nothing was merged")
        }

        let rules = try campaign.workspace.mailboxRules()
        let (ledger, scratch) = try Ledger.openForRun(campaign.ledgerURL, dryRun: dryRun)
        // The other ledger's signers are keyed again, from their personal data, under this
        // workspace's rules: one person who signed on both machines counts once.
        ledger.mailboxRules = rules

        var summary = MergeSummary(otherCount: report.count, otherHead: report.head, added: 0, duplicates: 0, forgottenSkipped: 0,
                                   rejected: 0, rejectedEntries: [], unsubscribed: 0, count: 0, dryRun: dryRun)
        var optOuts: [String] = []
        try ledger.appendBatch(commit: !dryRun) { append in
            try other.forEachSignature(byTime: true) { stored in
                guard let personal = stored.personal else {
                    summary.forgottenSkipped += 1
                    return
                }
                let input = SignatureInput(name: personal.name, email: personal.email, comment: personal.comment,
                                           fields: stored.publicFields.merging(personal.fields) { $1 },
                                           consents: stored.consents, source: stored.source, collector: stored.collector ?? collector)
                let signature: ValidSignature
                do {
                    signature = try input.validated(against: manifest)
                } catch let error as MusterError {
                    summary.rejected += 1
                    if summary.rejectedEntries.count < 100 { summary.rejectedEntries.append("entry \(stored.seq): \(Importer.redacted(error.message))") }
                    return
                }
                guard let date = Timestamp.parse(stored.signedAt) else {
                    summary.rejected += 1
                    if summary.rejectedEntries.count < 100 { summary.rejectedEntries.append("entry \(stored.seq): its time is not a timestamp") }
                    return
                }
                if try append(signature, date) { summary.added += 1 } else { summary.duplicates += 1 }
                if stored.unsubscribed { optOuts.append(signature.canonicalEmail) }
            }
        }
        if !dryRun {
            for email in optOuts {
                if case .unsubscribed = try ledger.unsubscribe(canonicalEmail: email, at: clock.now()) { summary.unsubscribed += 1 }
            }
        }
        summary.count = !scratch ? try ledger.signatureCount() : 0
        if dryRun { summary.count += Int64(summary.added) }
        return summary
    }
}
