import Foundation

/// Signatures counted in one pass over the ledger, for reports.
struct SignatureTally {
    /// Signatures that count (withdrawn ones left out).
    var count: Int64 = 0
    /// Signatures withdrawn as duplicates (`muster dedupe --withdraw`).
    var withdrawn: Int64 = 0
    /// Signatures per UTC day, oldest first (days without signatures left out).
    var daily: [(day: String, count: Int64)] = []
    /// How many signatures share each non-personal body (source, collector, fields, consents).
    var bodies: [String: Int64] = [:]
    var head = Ledger.genesis
}

extension Ledger {
    /// Counts signatures made up to `instant` (ISO 8601 text; nil for all), per day and
    /// per distinct body, leaving out those withdrawn by then, and finds the head hash as
    /// it stood then, on one snapshot.
    func tally(upTo instant: String?) throws -> SignatureTally {
        var tally = SignatureTally()
        try snapshot {
            try withStorage(path: url.path) {
                let statement = try database.prepare("""
                    SELECT e.at, e.body FROM entries e WHERE e.kind = 'signature' AND \(Self.chained("e"))\(instant == nil ? "" : " AND e.at <= ?1")
                      AND e.seq NOT IN (\(Self.withdrawnSeqs(upTo: instant == nil ? nil : "?1"))) ORDER BY e.at
                    """)
                if let instant { try statement.bind([.text(instant)]) }
                var currentDay: [UInt8] = []
                var currentCount: Int64 = 0
                while try statement.step() {
                    let at = statement.rawBytes(0)
                    let day = UnsafeRawBufferPointer(rebasing: at.prefix(10))
                    if !currentDay.elementsEqual(day) {
                        if currentCount > 0 { tally.daily.append((String(decoding: currentDay, as: UTF8.self), currentCount)) }
                        currentDay = Array(day)
                        currentCount = 0
                    }
                    currentCount += 1
                    tally.count += 1
                    tally.bodies[statement.text(1) ?? "{}", default: 0] += 1
                }
                if currentCount > 0 { tally.daily.append((String(decoding: currentDay, as: UTF8.self), currentCount)) }
                let withdrawn = try database.prepare("""
                    SELECT count(*) FROM entries s WHERE s.seq IN (\(Self.withdrawnSeqs(upTo: instant == nil ? nil : "?1")))
                      AND s.kind = 'signature' AND \(Self.chained("s"))\(instant == nil ? "" : " AND s.at <= ?1")
                    """)
                if let instant { try withdrawn.bind([.text(instant)]) }
                if try withdrawn.step() { tally.withdrawn = withdrawn.int64(0) }
                withdrawn.reset()
                if let instant {
                    tally.head = try database.scalarText("SELECT e.hash FROM entries e WHERE e.at <= ? AND \(Self.chained("e")) ORDER BY e.seq DESC LIMIT 1", .text(instant)) ?? Ledger.genesis
                } else {
                    tally.head = try metaText("head_hash")
                }
            }
        }
        return tally
    }
}
