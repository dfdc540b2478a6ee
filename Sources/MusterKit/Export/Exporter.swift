import Foundation

/// The formats `muster export` writes.
public enum ExportFormat: String, Sendable, CaseIterable {
    /// Spreadsheet-safe CSV (formula cells neutralised).
    case csv
    /// JSON Lines with raw values, one signature per line.
    case jsonl
    /// Open Supporter Data Interface people and signatures, one JSON document.
    case osdi
}

/// What `muster export` was asked to do.
public struct ExportRequest: Sendable {
    public var format: ExportFormat
    /// Columns to write (default: all of `ExportRequest.columns(for:)`).
    public var fields: [String]?
    /// Aggregate counts only, no personal data.
    public var publicOnly: Bool

    public init(format: ExportFormat, fields: [String]? = nil, publicOnly: Bool = false) {
        self.format = format
        self.fields = fields
        self.publicOnly = publicOnly
    }

    /// Every column a personal export can hold, in order: these names import back.
    public static func columns(for manifest: Manifest) -> [String] {
        ["signed_at", "name", "email", "comment"] + manifest.fields.map(\.name) + ["consent", "source", "collector"]
    }

    /// Columns available on request beyond the defaults.
    /// `suppressed` is the reason an address is never mailed again after a bounce or a
    /// complaint (`bounce`, `soft_bounce`, `complaint`; empty when it is not).
    public static let extraColumns = ["entry", "forgotten", "unsubscribed", "suppressed"]
}

/// Writes a campaign's signatures out: CSV, JSON Lines, OSDI, or public aggregates.
public enum Exporter {
    /// Writes the export to `descriptor`; returns how many signatures it covers.
    @discardableResult
    public static func run(_ request: ExportRequest, campaign: Campaign, manifest: Manifest, to descriptor: Int32) throws -> Int {
        let ledger = try Ledger.open(campaign.ledgerURL, create: false)
        let available = ExportRequest.columns(for: manifest) + ExportRequest.extraColumns
        let columns = request.fields ?? ExportRequest.columns(for: manifest)
        if !request.publicOnly {
            for column in columns where !available.contains(column) {
                throw MusterError.usage("--fields: unknown column '\(column)'; choose from \(available.joined(separator: ", "))")
            }
        }
        if request.publicOnly { return try writePublic(request, ledger: ledger, manifest: manifest, campaign: campaign, to: descriptor) }
        switch request.format {
        case .csv:
            let writer = CSVWriter(descriptor: descriptor, neutralisesFormulas: true)
            try writer.write(columns)
            var count = 0
            try ledger?.forEachSignature { signature in
                count += 1
                try writer.write(columns.map { value(of: $0, in: signature) })
            }
            try writer.flush()
            return count
        case .jsonl:
            var buffer: [UInt8] = []
            var count = 0
            try ledger?.forEachSignature { signature in
                count += 1
                buffer.append(contentsOf: try jsonLine(signature, columns: columns))
                buffer.append(10)
                if buffer.count > 1 << 16 {
                    try FileOutput.writeAll(descriptor, buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try FileOutput.writeAll(descriptor, buffer)
            return count
        case .osdi:
            return try writeOSDI(campaign: campaign, manifest: manifest, ledger: ledger, to: descriptor)
        }
    }

    /// The text of one column for CSV (lists joined with `;`, booleans as yes/no).
    static func value(of column: String, in signature: StoredSignature) -> String {
        switch column {
        case "entry": return String(signature.seq)
        case "signed_at": return signature.signedAt
        case "name": return signature.personal?.name ?? ""
        case "email": return signature.personal?.email ?? ""
        case "comment": return signature.personal?.comment ?? ""
        case "consent": return signature.consents.joined(separator: ";")
        case "source": return signature.source
        case "collector": return signature.collector ?? ""
        case "forgotten": return signature.personal == nil ? "yes" : "no"
        case "unsubscribed": return signature.unsubscribed ? "yes" : "no"
        case "suppressed": return signature.suppressed ?? ""
        default: return signature.publicFields[column] ?? signature.personal?.fields[column] ?? ""
        }
    }

    static func jsonLine(_ signature: StoredSignature, columns: [String]) throws -> Data {
        var object: [String: Any] = [:]
        for column in columns {
            switch column {
            case "entry": object[column] = signature.seq
            case "consent": object[column] = signature.consents
            case "forgotten": object[column] = signature.personal == nil
            case "unsubscribed": object[column] = signature.unsubscribed
            case "suppressed": object[column] = signature.suppressed ?? NSNull()
            case "name", "email": object[column] = signature.personal.map { column == "name" ? $0.name : $0.email } ?? NSNull()
            case "comment", "collector":
                let text = column == "comment" ? signature.personal?.comment : signature.collector
                object[column] = text ?? NSNull()
            case "signed_at", "source": object[column] = value(of: column, in: signature)
            default:
                object[column] = signature.publicFields[column] ?? signature.personal?.fields[column] ?? NSNull()
            }
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    // MARK: - OSDI

    /// One JSON document with `osdi:people` and `osdi:signatures`, linked by identifier.
    /// A forgotten signer has a signature but no person.
    static func writeOSDI(campaign: Campaign, manifest: Manifest, ledger: Ledger?, to descriptor: Int32) throws -> Int {
        var count = 0
        var out: [UInt8] = []
        func flushIfLarge() throws {
            if out.count > 1 << 16 { try FileOutput.writeAll(descriptor, out); out.removeAll(keepingCapacity: true) }
        }
        func json(_ object: Any) throws -> [UInt8] {
            Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
        }
        let petitionID = "muster:\(campaign.slug)"
        var total: Int64 = 0
        if let ledger { total = try ledger.signatureCount() }
        out += Array("{\"osdi:petition\":".utf8)
        out += try json(["identifiers": [petitionID], "origin_system": "muster", "title": manifest.title, "total_signatures": total] as [String: Any])
        out += Array(",\"osdi:people\":[".utf8)
        var first = true
        try ledger?.forEachSignature { signature in
            guard let personal = signature.personal else { return }
            var words = personal.name.split(separator: " ").map(String.init)
            let family = words.count > 1 ? words.removeLast() : nil
            var person: [String: Any] = [
                "identifiers": ["\(petitionID):person-\(signature.seq)"],
                "origin_system": "muster",
                "created_date": signature.signedAt,
                "given_name": words.joined(separator: " "),
                "email_addresses": [["address": personal.email, "primary": true, "status": signature.unsubscribed ? "unsubscribed" : (signature.consents.isEmpty ? "unsubscribed" : "subscribed")]],
            ]
            if let family { person["family_name"] = family }
            var custom = signature.publicFields.merging(personal.fields) { $1 }
            custom["name"] = personal.name
            person["custom_fields"] = custom
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out += try json(person)
            try flushIfLarge()
        }
        out += Array("],\"osdi:signatures\":[".utf8)
        first = true
        try ledger?.forEachSignature { signature in
            count += 1
            var object: [String: Any] = [
                "identifiers": ["\(petitionID):signature-\(signature.seq)"],
                "origin_system": "muster",
                "created_date": signature.signedAt,
                "referrer_data": ["source": signature.source] as [String: Any],
                "custom_fields": signature.publicFields,
                "_links": ["osdi:petition": ["href": petitionID]],
            ]
            if let collector = signature.collector { object["referrer_data"] = ["source": signature.source, "referrer": collector] }
            if let personal = signature.personal {
                if let comment = personal.comment { object["comments"] = comment }
                object["_links"] = ["osdi:petition": ["href": petitionID], "osdi:person": ["href": "\(petitionID):person-\(signature.seq)"]]
            }
            if !signature.consents.isEmpty { object["consents"] = signature.consents }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out += try json(object)
            try flushIfLarge()
        }
        out += Array("]}\n".utf8)
        try FileOutput.writeAll(descriptor, out)
        return count
    }

    // MARK: - Public aggregates

    /// Counts per day, per source and per non-personal manifest field: nothing about anyone.
    static func writePublic(_ request: ExportRequest, ledger: Ledger?, manifest: Manifest, campaign: Campaign, to descriptor: Int32) throws -> Int {
        guard request.format != .osdi else { throw MusterError.usage("--public writes counts, not people: use --format csv or jsonl") }
        let publicFields = manifest.fields.filter { !$0.personal }.map(\.name)
        var groups: [String: [String: Int]] = [:]
        var total = 0
        try ledger?.forEachSignature { signature in
            total += 1
            groups["day", default: [:]][String(signature.signedAt.prefix(10)), default: 0] += 1
            groups["source", default: [:]][signature.source, default: 0] += 1
            for field in publicFields {
                groups[field, default: [:]][signature.publicFields[field] ?? "", default: 0] += 1
            }
        }
        var rows: [(String, String, Int)] = [("total", "", total)]
        for group in ["day", "source"] + publicFields {
            for (key, count) in (groups[group] ?? [:]).sorted(by: { $0.key < $1.key }) { rows.append((group, key, count)) }
        }
        if request.format == .csv {
            let writer = CSVWriter(descriptor: descriptor, neutralisesFormulas: true)
            try writer.write(["group", "value", "count"])
            for row in rows { try writer.write([row.0, row.1, String(row.2)]) }
            try writer.flush()
        } else {
            var out: [UInt8] = []
            for row in rows {
                out += Array(try JSONSerialization.data(withJSONObject: ["group": row.0, "value": row.1, "count": row.2] as [String: Any], options: [.sortedKeys]))
                out.append(10)
            }
            try FileOutput.writeAll(descriptor, out)
        }
        return total
    }
}
