import Foundation

/// What one CSV column feeds in a signature.
public enum ImportTarget: Sendable, Equatable, CustomStringConvertible {
    case name
    case firstName
    case lastName
    case email
    case comment
    case signedAt
    case source
    case collector
    /// A list of consent keys (separated by `;`, `,` or `|`).
    case consents
    /// One consent: a yes/no column.
    case consent(String)
    /// A manifest field.
    case field(String)
    /// Read but not used.
    case ignored

    public var description: String {
        switch self {
        case .name: return "name"
        case .firstName: return "first_name"
        case .lastName: return "last_name"
        case .email: return "email"
        case .comment: return "comment"
        case .signedAt: return "signed_at"
        case .source: return "source"
        case .collector: return "collector"
        case .consents: return "consent"
        case .consent(let key): return "consent:\(key)"
        case .field(let name): return name
        case .ignored: return "ignore"
        }
    }
}

/// How the columns of an import file map to signature parts: from the header,
/// recognising the common exports, then `--map COLUMN=FIELD` overrides.
public struct ColumnMapping: Sendable, Equatable {
    /// One target per column, in column order.
    public var targets: [ImportTarget]
    /// Header names of the columns that feed nothing.
    public var ignoredColumns: [String]

    /// Header names recognised for the built-in parts, after normalising (lower case,
    /// every run of other characters as `_`). Covers a plain `name,email,…` sheet,
    /// muster's own export, Action Network (`first_name`, `last_name`, `email`,
    /// `zip_code`, `created_date`…), Change.org (`Name`, `Email`, `Signed On`,
    /// `Comment`…) and Google Forms (`Timestamp`, `Email Address`, question texts).
    public static let aliases: [(target: ImportTarget, headers: [String])] = [
        (.name, ["name", "full_name", "fullname", "your_name", "signer", "signer_name", "signatory", "display_name", "what_is_your_name", "your_full_name", "nom", "nombre"]),
        (.firstName, ["first_name", "firstname", "first", "given_name", "forename", "your_first_name", "prenom"]),
        (.lastName, ["last_name", "lastname", "last", "surname", "family_name", "your_last_name"]),
        (.email, ["email", "e_mail", "email_address", "e_mail_address", "your_email", "your_email_address", "mail", "emailaddress", "courriel"]),
        (.comment, ["comment", "comments", "reason", "reason_for_signing", "why_are_you_signing", "message"]),
        (.signedAt, ["signed_at", "signed_on", "signed", "timestamp", "created_at", "created_date", "date", "signature_date", "date_signed", "submitted_at", "submission_date", "time"]),
        (.source, ["source", "collection_source", "channel"]),
        (.collector, ["collector", "collected_by", "volunteer", "by", "canvasser"]),
        (.consents, ["consent", "consents"]),
    ]

    /// Normalises a header for matching: lower case, diacritics and every run of
    /// other characters folded, e.g. `Email Address` → `email_address`, `Prénom` → `prenom`.
    public static func normalise(_ header: String) -> String {
        let folded = header.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil).lowercased()
        var out = ""
        var pendingUnderscore = false
        for scalar in folded.unicodeScalars {
            if (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") {
                if pendingUnderscore && !out.isEmpty { out.append("_") }
                pendingUnderscore = false
                out.unicodeScalars.append(scalar)
            } else {
                pendingUnderscore = true
            }
        }
        return out
    }

    /// Parses one `--map COLUMN=FIELD` target name.
    public static func target(named raw: String, manifest: Manifest) throws -> ImportTarget {
        let name = raw.trimmingCharacters(in: .whitespaces)
        switch name {
        case "name": return .name
        case "first_name": return .firstName
        case "last_name": return .lastName
        case "email": return .email
        case "comment": return .comment
        case "signed_at": return .signedAt
        case "source": return .source
        case "collector": return .collector
        case "consent": return .consents
        case "ignore", "-", "": return .ignored
        default:
            if name.hasPrefix("consent:") {
                let key = String(name.dropFirst("consent:".count))
                guard manifest.consents.contains(where: { $0.key == key }) else {
                    let known = manifest.consents.map(\.key)
                    throw MusterError.usage("--map: unknown consent '\(key)'; this campaign asks for \(known.isEmpty ? "no consent" : known.joined(separator: ", "))")
                }
                return .consent(key)
            }
            if manifest.field(named: name) != nil { return .field(name) }
            let known = ["name", "first_name", "last_name", "email", "comment", "signed_at", "source", "collector", "consent", "consent:KEY", "ignore"] + manifest.fields.map(\.name)
            throw MusterError.usage("--map: unknown field '\(name)'; use one of \(known.joined(separator: ", "))")
        }
    }

    /// Maps `header` for `manifest`, with `overrides` (column header → target) winning.
    ///
    /// Throws a usage error for an override naming no column, and a bad-input error
    /// when no column gives an email or a name.
    public static func make(header: [String], manifest: Manifest, overrides: [(column: String, target: ImportTarget)]) throws -> ColumnMapping {
        let normalised = header.map(normalise)
        var targets = [ImportTarget](repeating: .ignored, count: header.count)
        var taken = Set<String>()

        func claim(_ target: ImportTarget, column: Int) {
            let key = target.description
            guard !taken.contains(key) else { return }
            taken.insert(key)
            targets[column] = target
        }

        var overridden = Set<Int>()
        for (column, target) in overrides {
            let wanted = normalise(column)
            guard let index = header.firstIndex(of: column) ?? normalised.firstIndex(of: wanted) else {
                throw MusterError.usage("--map \(column)=…: the file has no column '\(column)'; its columns are \(header.joined(separator: ", "))")
            }
            overridden.insert(index)
            targets[index] = target
            if target != .ignored { taken.insert(target.description) }
        }

        // Manifest fields and consents by name or label, then the built-in aliases.
        for (index, key) in normalised.enumerated() where !overridden.contains(index) {
            if let field = manifest.fields.first(where: { $0.name == key || ($0.label.map(normalise) == key) }) {
                claim(.field(field.name), column: index)
            } else if let consent = manifest.consents.first(where: { $0.key == key || normalise($0.text) == key }) {
                claim(.consent(consent.key), column: index)
            }
        }
        for (index, key) in normalised.enumerated() where !overridden.contains(index) && targets[index] == .ignored {
            if let alias = aliases.first(where: { $0.headers.contains(key) }) { claim(alias.target, column: index) }
        }
        // Google Forms questions such as "Your email (required)" or "Full name, please",
        // only when no column matched exactly.
        for target in [ImportTarget.email, .name] where !taken.contains(target.description) {
            if target == .name && (taken.contains("first_name") || taken.contains("last_name")) { continue }
            let headers = aliases.first { $0.target == target }!.headers
            if let index = normalised.indices.first(where: { index in
                targets[index] == .ignored && !overridden.contains(index)
                    && headers.contains { normalised[index].hasPrefix($0 + "_") || normalised[index].hasSuffix("_" + $0) }
            }) {
                claim(target, column: index)
            }
        }

        let mapping = ColumnMapping(targets: targets, ignoredColumns: zip(header, targets).filter { $0.1 == .ignored }.map(\.0))
        if !targets.contains(.email) {
            throw MusterError.badInput("no email column: the header is \(header.joined(separator: ", ")); name it with --map COLUMN=email")
        }
        if !targets.contains(.name) && !targets.contains(.firstName) && !targets.contains(.lastName) {
            throw MusterError.badInput("no name column: the header is \(header.joined(separator: ", ")); name it with --map COLUMN=name (or first_name and last_name)")
        }
        return mapping
    }
}
