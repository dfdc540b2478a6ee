import Crypto
import Foundation

/// What `muster verify` found.
public struct VerifyReport: Sendable, Codable, Equatable {
    /// One problem, located at an entry.
    public struct Problem: Sendable, Codable, Equatable {
        /// The entry's sequence number (1 is the first entry).
        public let entry: Int64
        public let reason: String
    }

    /// True when every entry and every piece of personal data checks out.
    public let ok: Bool
    /// Signatures in the ledger (forgotten ones included).
    public let count: Int64
    /// All entries: signatures, redactions and opt-outs.
    public let entries: Int64
    /// Signatures whose personal data was erased by `forget`.
    public let redacted: Int64
    /// The hash of the newest entry; a published report quotes it.
    public let head: String
    /// The earliest problem, when not ok.
    public let firstBad: Problem?
    /// How many problems were found in all.
    public let problems: Int

    /// The report for a campaign that has no ledger yet.
    public static let empty = VerifyReport(ok: true, count: 0, entries: 0, redacted: 0, head: Ledger.genesis, firstBad: nil, problems: 0)

    enum CodingKeys: String, CodingKey {
        case ok, count, entries, redacted, head
        case firstBad = "first_bad"
        case problems
    }
}

extension Ledger {
    /// Recomputes the whole chain and every personal-data hash, and cross-checks the
    /// ledger's own records of its head and count.
    public func verify() throws -> VerifyReport {
        do {
            return try snapshot { try verifyChain() }
        } catch let error as SQLiteError {
            throw MusterError.storage(error, path: url.path)
        }
    }

    private func verifyChain() throws -> VerifyReport {
        var problems: [VerifyReport.Problem] = []
        func problem(_ entry: Int64, _ reason: String) {
            problems.append(.init(entry: entry, reason: reason))
        }

        let statement = try database.prepare("""
            SELECT e.seq, e.kind, e.at, e.fingerprint, e.body, e.personal_hash, e.prev, e.hash, p.salt, p.data
            FROM entries e LEFT JOIN personal p ON p.seq = e.seq ORDER BY e.seq
            """)
        var expectedSeq: Int64 = 1
        var previousHash = [UInt8](Ledger.genesis.utf8)
        var signatures: Int64 = 0
        var entries: Int64 = 0
        var isSignature: [Bool] = [false] // indexed by seq
        var withoutPersonal = Set<Int64>()
        var redacted = Set<Int64>()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1024)
        var hex = [UInt8](repeating: 0, count: 64)
        let prefix = Array("muster-ledger-v1\0".utf8)

        while try statement.step() {
            entries += 1
            let seq = statement.int64(0)
            if seq != expectedSeq {
                if seq > expectedSeq {
                    problem(expectedSeq, expectedSeq == seq - 1
                        ? "entry \(expectedSeq) is missing (deleted?); entry \(seq) follows entry \(expectedSeq - 1)"
                        : "entries \(expectedSeq)–\(seq - 1) are missing (deleted?); entry \(seq) follows entry \(expectedSeq - 1)")
                } else {
                    problem(seq, "entry \(seq) appears out of order")
                }
                expectedSeq = seq
            }
            while isSignature.count <= Int(seq) { isSignature.append(false) }

            let linked = statement.withBytes(6) { stored in
                stored.count == previousHash.count && previousHash.withUnsafeBytes { memcmp(stored.baseAddress!, $0.baseAddress!, stored.count) == 0 }
            }
            if !linked && problems.last?.entry != seq {
                problem(seq, "entry \(seq) does not follow entry \(seq - 1): its previous-hash does not match (an entry was changed, removed or reordered)")
            }

            // Recompute this entry's hash from its stored fields (see LedgerHash.entry).
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: prefix)
            Self.appendDecimal(seq, to: &buffer)
            for column: Int32 in 1...6 {
                buffer.append(0)
                statement.withBytes(column) { buffer.append(contentsOf: $0) }
            }
            Self.hexInto(&hex, SHA256.hash(data: buffer))
            let hashMatches = statement.withBytes(7) { stored in
                stored.count == 64 && memcmp(stored.baseAddress!, hex, 64) == 0
            }
            if !hashMatches {
                problem(seq, "entry \(seq) was altered: its contents no longer match its hash")
            }

            let kind = statement.withBytes(1) { Self.kind(of: $0) }
            switch kind {
            case .signature:
                signatures += 1
                isSignature[Int(seq)] = true
                if statement.isNull(8) {
                    withoutPersonal.insert(seq)
                } else {
                    buffer.removeAll(keepingCapacity: true)
                    statement.withBytes(8) { buffer.append(contentsOf: $0) }
                    statement.withBytes(9) { buffer.append(contentsOf: $0) }
                    Self.hexInto(&hex, SHA256.hash(data: buffer))
                    let personalMatches = statement.withBytes(5) { stored in
                        stored.count == 64 && memcmp(stored.baseAddress!, hex, 64) == 0
                    }
                    if !personalMatches {
                        problem(seq, "the personal data of entry \(seq) was altered: it no longer matches the hash the entry recorded")
                    }
                }
            case .redaction:
                let body = statement.text(4) ?? ""
                if let target = Self.redactedSeq(body) {
                    if target <= 0 || target >= seq || !isSignature[Int(target)] {
                        problem(seq, "entry \(seq) redacts entry \(target), which is not an earlier signature")
                    } else if !withoutPersonal.contains(target) {
                        problem(seq, "entry \(seq) redacts entry \(target), but that signature's personal data is present again")
                    }
                    redacted.insert(target)
                } else {
                    problem(seq, "entry \(seq) is a redaction without a valid target")
                }
            case .optout:
                break
            case nil:
                problem(seq, "entry \(seq) has an unknown kind '\(statement.text(1) ?? "")'")
            }
            statement.withBytes(7) { previousHash = Array($0) }
            expectedSeq = seq + 1
        }

        for seq in withoutPersonal.subtracting(redacted).sorted() {
            problem(seq, "the personal data of entry \(seq) is gone, but no redaction entry records its erasure")
        }
        let lastSeq = expectedSeq - 1
        let recordedHead = (try? metaInt("head_seq")) ?? -1
        let recordedHash = (try? metaText("head_hash")) ?? ""
        let lastHash = String(decoding: previousHash, as: UTF8.self)
        if recordedHead != lastSeq || recordedHash != lastHash {
            if recordedHead > lastSeq {
                problem(lastSeq + 1, "the ledger ends at entry \(lastSeq), but it recorded entry \(recordedHead) as its newest: entries at the end were removed")
            } else {
                problem(max(lastSeq, 1), "the ledger's record of its newest entry (entry \(recordedHead)) does not match its last entry (\(lastSeq))")
            }
        }
        let headIsConsistent = recordedHead == lastSeq && recordedHash == lastHash
        if headIsConsistent, let recordedCount = try? metaInt("signature_count"), recordedCount != signatures {
            problem(max(lastSeq, 1), "the ledger recorded \(recordedCount) signatures but holds \(signatures)")
        }

        let orphans = try database.prepare("SELECT seq FROM personal WHERE seq NOT IN (SELECT seq FROM entries WHERE kind = 'signature') ORDER BY seq")
        while try orphans.step() {
            let seq = orphans.int64(0)
            problem(seq, "personal data is stored for entry \(seq), which is not a signature")
        }


        let first = problems.min { $0.entry < $1.entry }
        return VerifyReport(ok: problems.isEmpty, count: signatures, entries: entries, redacted: Int64(redacted.count),
                            head: String(decoding: previousHash, as: UTF8.self), firstBad: first, problems: problems.count)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func hexInto(_ buffer: inout [UInt8], _ digest: SHA256.Digest) {
        digest.withUnsafeBytes { bytes in
            buffer.withUnsafeMutableBufferPointer { out in
                hexDigits.withUnsafeBufferPointer { digits in
                    for index in 0..<bytes.count {
                        let byte = bytes[index]
                        out[index &* 2] = digits[Int(byte >> 4)]
                        out[index &* 2 &+ 1] = digits[Int(byte & 0x0F)]
                    }
                }
            }
        }
    }

    private static func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
        var digits: [UInt8] = []
        var rest = value.magnitude
        repeat {
            digits.append(UInt8(48 + rest % 10))
            rest /= 10
        } while rest > 0
        if value < 0 { buffer.append(45) }
        buffer.append(contentsOf: digits.reversed())
    }

    private static func kind(of bytes: UnsafeRawBufferPointer) -> EntryKind? {
        switch bytes.count {
        case 9 where memcmp(bytes.baseAddress!, "signature", 9) == 0: return .signature
        case 9 where memcmp(bytes.baseAddress!, "redaction", 9) == 0: return .redaction
        case 6 where memcmp(bytes.baseAddress!, "optout", 6) == 0: return .optout
        default: return nil
        }
    }

    static func redactedSeq(_ body: String) -> Int64? {
        guard let data = body.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let value = object["redacts"] as? NSNumber else { return nil }
        return value.int64Value
    }
}
