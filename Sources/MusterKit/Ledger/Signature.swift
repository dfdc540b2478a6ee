import Foundation

/// A signature as typed by a signer or a volunteer, before validation.
public struct SignatureInput: Sendable {
    public var name: String
    public var email: String
    public var comment: String?
    /// Manifest fields, by name.
    public var fields: [String: String]
    /// Consent keys the signer gave.
    public var consents: [String]
    public var source: String
    public var collector: String?

    public init(name: String, email: String, comment: String? = nil, fields: [String: String] = [:],
                consents: [String] = [], source: String = "cli", collector: String? = nil) {
        self.name = name
        self.email = email
        self.comment = comment
        self.fields = fields
        self.consents = consents
        self.source = source
        self.collector = collector
    }
}

/// A signature that passed validation against its manifest, split into what the
/// ledger keeps forever and what `forget` can erase.
public struct ValidSignature: Sendable, Equatable {
    /// trimmed, NFC, lower-cased, IDNA domain: the dedupe key.
    public let canonicalEmail: String
    public let name: String
    /// The address as typed (trimmed, NFC), used for mail.
    public let email: String
    public let comment: String?
    /// Fields kept after `forget` (categories such as a region).
    public let publicFields: [String: String]
    /// Fields erased by `forget`.
    public let personalFields: [String: String]
    public let consents: [String]
    public let source: String
    public let collector: String?
}

/// Limits on what a signer may type, so a report or an email stays readable.
public enum SignatureLimits {
    public static let name = 200
    public static let fieldValue = 500
    public static let comment = 2000
    public static let label = 64
}

extension SignatureInput {
    /// Checks this input against `manifest`; throws one `badInput` error naming the
    /// field and value at fault.
    public func validated(against manifest: Manifest) throws -> ValidSignature {
        func bad(_ message: String) -> MusterError { MusterError.badInput(message) }
        func checkText(_ value: String, field: String, limit: Int) throws -> String {
            try Self.checkText(value, field: field, limit: limit)
        }

        let name = try Self.validatedName(self.name)
        let canonical = try Self.validatedEmail(email)
        let typedEmail = TextField.clean(email)

        var comment: String?
        if let raw = self.comment {
            let cleaned = try Self.validatedComment(raw)
            comment = cleaned.isEmpty ? nil : cleaned
        }

        var publicFields: [String: String] = [:]
        var personalFields: [String: String] = [:]
        for key in fields.keys.sorted() where manifest.field(named: key) == nil {
            let known = manifest.fields.map(\.name)
            throw bad("unknown field '\(Self.shown(key))'; this campaign's fields are \(known.isEmpty ? "none" : known.joined(separator: ", "))")
        }
        for field in manifest.fields {
            guard let value = try Self.validatedField(fields[field.name] ?? "", field) else { continue }
            if field.personal { personalFields[field.name] = value } else { publicFields[field.name] = value }
        }

        var consents: [String] = []
        for key in self.consents {
            guard manifest.consents.contains(where: { $0.key == key }) else {
                let known = manifest.consents.map(\.key)
                throw bad("unknown consent '\(Self.shown(key))'; this campaign asks for \(known.isEmpty ? "no consent" : known.joined(separator: ", "))")
            }
            if !consents.contains(key) { consents.append(key) }
        }

        let source = try checkText(self.source, field: "source", limit: SignatureLimits.label)
        guard !source.isEmpty else { throw bad("source must not be empty") }
        var collector: String?
        if let raw = self.collector {
            let cleaned = try checkText(raw, field: "collector (--by)", limit: SignatureLimits.label)
            collector = cleaned.isEmpty ? nil : cleaned
        }

        return ValidSignature(canonicalEmail: canonical, name: name, email: typedEmail, comment: comment,
                              publicFields: publicFields, personalFields: personalFields,
                              consents: consents.sorted(), source: source, collector: collector)
    }

    static func checkText(_ value: String, field: String, limit: Int) throws -> String {
        if let problem = TextField.forbiddenCharacter(in: value) {
            throw MusterError.badInput("\(field) contains \(problem); use a single line of plain text")
        }
        let cleaned = TextField.clean(value)
        // Counting characters walks grapheme clusters; ASCII needs no walk.
        let utf8Count = cleaned.utf8.count
        if utf8Count > limit, cleaned.count > limit {
            throw MusterError.badInput("\(field) is \(cleaned.count) characters long; the limit is \(limit)")
        }
        return cleaned
    }

    /// A cleaned comment (possibly empty), or a `badInput` error.
    ///
    /// Comments are free text, so unlike every other value they may hold line breaks
    /// (a form's "why are you signing" answer has paragraphs): CRLF and a lone CR become
    /// LF, surrounding blank lines and spaces are trimmed. Every other control character,
    /// Unicode line and paragraph separators, bidi overrides and U+FFFD are still refused.
    /// A comment never reaches a mail header (templates cannot use it).
    public static func validatedComment(_ raw: String) throws -> String {
        // Fast path: printable ASCII has nothing to normalise or refuse.
        if TextField.allBytes(of: raw, in: 0x20..<0x7F) {
            return try checkText(raw, field: "comment", limit: SignatureLimits.comment)
        }
        var scalars = String.UnicodeScalarView()
        var previousCR = false
        for scalar in raw.unicodeScalars {
            defer { previousCR = scalar == "\r" }
            switch scalar {
            case "\r": scalars.append("\n")
            case "\n": if !previousCR { scalars.append("\n") }
            default: scalars.append(scalar)
            }
        }
        let normalised = String(scalars)
        for (offset, scalar) in normalised.unicodeScalars.enumerated() where scalar != "\n" && TextField.isForbidden(scalar) {
            let what = scalar == "\t" ? "a tab"
                : scalar == "\u{0}" ? "a NUL byte"
                : scalar == "\u{FFFD}" ? "invalid UTF-8 (U+FFFD)"
                : String(format: "the control character U+%04X", scalar.value)
            throw MusterError.badInput("comment contains \(what) at character \(offset + 1); a comment may hold line breaks but no other control character")
        }
        let trimmed = normalised.unicodeScalars.drop(while: { $0.properties.isWhitespace })
        let end = trimmed.lastIndex(where: { !$0.properties.isWhitespace }).map { trimmed.index(after: $0) } ?? trimmed.startIndex
        let cleaned = TextField.nfc(String(trimmed[trimmed.startIndex..<end]))
        if cleaned.count > SignatureLimits.comment {
            throw MusterError.badInput("comment is \(cleaned.count) characters long; the limit is \(SignatureLimits.comment)")
        }
        return cleaned
    }

    /// A cleaned, non-empty name, or a `badInput` error.
    public static func validatedName(_ raw: String) throws -> String {
        let name = try checkText(raw, field: "name", limit: SignatureLimits.name)
        guard !name.isEmpty else { throw MusterError.badInput("name is required") }
        return name
    }

    /// The canonical form of a valid address, or a `badInput` error naming it.
    public static func validatedEmail(_ raw: String) throws -> String {
        do {
            return try EmailAddress.canonical(raw)
        } catch {
            throw MusterError.badInput("email '\(shown(raw))' \(error)")
        }
    }

    /// The cleaned value of one manifest field (options matched case-insensitively),
    /// nil when empty and optional, or a `badInput` error.
    public static func validatedField(_ raw: String, _ field: Manifest.Field) throws -> String? {
        let value = try checkText(raw, field: field.name, limit: SignatureLimits.fieldValue)
        if value.isEmpty {
            if field.required { throw MusterError.badInput("\(field.name) is required") }
            return nil
        }
        if let options = field.options {
            guard let match = options.first(where: { $0.compare(value, options: [.caseInsensitive]) == .orderedSame }) else {
                throw MusterError.badInput("\(field.name) '\(value)' is not one of: \(options.joined(separator: ", "))")
            }
            return match
        }
        return value
    }

    /// `value` with control characters made visible, for an error message.
    static func shown(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars.prefix(200) {
            switch scalar {
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                out += TextField.isForbidden(scalar) ? String(format: "\\u{%X}", scalar.value) : String(scalar)
            }
        }
        return value.unicodeScalars.count > 200 ? out + "…" : out
    }
}
