import Foundation

/// The public audit log (`muster export --log`): one JSON object per line, per entry of
/// the chain in order, without personal data (docs/transparency.md, "The public log").
///
/// A line holds the entry's stored columns except personal data — `seq`, `kind`, `at`,
/// `fingerprint` (keyed), `body` (the non-personal fields), `personal_hash` (salted),
/// `prev` and `hash` — so a reader can recompute every entry hash, the chain, every
/// leaf, the root of any checkpoint, and count. An entry whose body holds a field the
/// campaign leaves out (`omitting`) is published as `seq`, `kind` and
/// its `leaf_hash` alone (no `hash`): the tree still adds up, but its kind is the collective's word.
public enum PublicLog {
    public struct Summary: Sendable, Equatable {
        public var entries: Int64 = 0
        public var withheld: Int64 = 0
    }

    public static func write(ledger: Ledger, omitting omitted: Set<String>, to descriptor: Int32) throws -> Summary {
        var summary = Summary()
        try ledger.snapshot {
            let size = try ledger.signatureCountAndHead().head
            var buffer: [UInt8] = []
            buffer.reserveCapacity(1 << 16)
            try ledger.forEachPublicEntry(through: size) { entry in
                summary.entries += 1
                if !omitted.isEmpty, holdsField(entry.body, of: omitted) {
                    summary.withheld += 1
                    let object: [String: Any] = ["seq": entry.seq, "kind": entry.kind,
                                                 "leaf_hash": Hex.encode(Merkle.leafHash(entry.leafData))]
                    buffer.append(contentsOf: CanonicalJSON.encode(object).utf8)
                } else {
                    buffer.append(contentsOf: entry.json.utf8)
                }
                buffer.append(0x0A)
                if buffer.count >= 1 << 16 {
                    try FileOutput.writeAll(descriptor, buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try FileOutput.writeAll(descriptor, buffer)
        }
        return summary
    }

    /// Whether the body's `fields` object has a member named in `names`.
    static func holdsField(_ body: String, of names: Set<String>) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let fields = object["fields"] as? [String: Any] else { return false }
        return fields.keys.contains { names.contains($0) }
    }
}

extension Ledger {
    /// Inside a transaction: `meta.head_seq`.
    func signatureCountAndHead() throws -> (signatures: Int64, head: Int64) {
        (try metaInt("signature_count"), try metaInt("head_seq"))
    }
}
