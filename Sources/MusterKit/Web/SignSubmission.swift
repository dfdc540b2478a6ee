import Foundation

/// `application/x-www-form-urlencoded` bodies, decoded byte by byte: `+` is a space,
/// `%XX` a byte; invalid UTF-8 becomes U+FFFD, which validation then refuses by name.
enum FormBody {
    static func decode(_ bytes: [UInt8]) -> [(String, String)] {
        var pairs: [(String, String)] = []
        for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let pieces = part.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((text(pieces[0]), pieces.count > 1 ? text(pieces[1]) : ""))
        }
        return pairs
    }

    private static func text(_ encoded: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let byte = encoded[index]
            if byte == UInt8(ascii: "+") {
                out.append(0x20)
            } else if byte == UInt8(ascii: "%"), encoded.endIndex - index > 2,
                      let high = hex(encoded[index + 1]), let low = hex(encoded[index + 2]) {
                out.append(high << 4 | low)
                index += 2
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }
}

extension SignForm {
    /// The form as posted: known parameters only (the rest is ignored).
    init(pairs: [(String, String)], manifest: Manifest) {
        self.init()
        for (key, value) in pairs {
            switch key {
            case "name": name = value
            case "email": email = value
            case "comment": comment = value
            default:
                if key.hasPrefix("field."), manifest.field(named: String(key.dropFirst(6))) != nil {
                    fields[String(key.dropFirst(6))] = value
                } else if key.hasPrefix("consent."), manifest.consents.contains(where: { $0.key == String(key.dropFirst(8)) }) {
                    consents.insert(String(key.dropFirst(8)))
                }
            }
        }
    }

    /// Validates as `muster sign` does, collecting one problem per field (by form
    /// parameter); the signature when there is none. `muster sign`'s messages are
    /// English sentences for the command line: the page shows the *kind* of each problem
    /// (`FieldError.key`, a text of the page's catalogue) instead.
    mutating func validate(against manifest: Manifest) -> ValidSignature? {
        func check(_ param: String, _ value: String, _ field: Manifest.Field? = nil, _ body: () throws -> Void) {
            do { try body() } catch {
                errors[param] = Self.problem(param: param, value: value, field: field)
            }
        }
        check("name", name) { _ = try SignatureInput.validatedName(name) }
        check("email", email) { _ = try SignatureInput.validatedEmail(email) }
        for field in manifest.fields {
            let value = fields[field.name] ?? ""
            check("field." + field.name, value, field) { _ = try SignatureInput.validatedField(value, field) }
        }
        check("comment", comment) { _ = try SignatureInput.validatedComment(comment) }
        guard errors.isEmpty else { return nil }
        let input = SignatureInput(name: name, email: email, comment: comment, fields: fields.filter { !$0.value.isEmpty },
                                   consents: consents.sorted(), source: "web", collector: nil)
        do {
            return try input.validated(against: manifest)
        } catch {
            errors["name"] = FieldError("error_invalid")
            return nil
        }
    }

    /// What kind of problem `muster sign`'s validator found in `value` (it said no).
    static func problem(param: String, value: String, field: Manifest.Field?) -> FieldError {
        if value.unicodeScalars.contains("\u{FFFD}") { return FieldError("error_utf8") }
        switch param {
        case "comment":
            let length = TextField.clean(value).count
            return length > SignatureLimits.comment ? FieldError("error_too_long", ["limit": String(SignatureLimits.comment)]) : FieldError("error_comment")
        case "email":
            return TextField.clean(value).isEmpty ? FieldError("error_required") : FieldError("error_email")
        default:
            if TextField.forbiddenCharacter(in: value) != nil { return FieldError("error_control") }
            let cleaned = TextField.clean(value)
            if cleaned.isEmpty { return FieldError("error_required") }
            if field?.options != nil, cleaned.count <= SignatureLimits.fieldValue { return FieldError("error_option") }
            let limit = param == "name" ? SignatureLimits.name : SignatureLimits.fieldValue
            return cleaned.count > limit ? FieldError("error_too_long", ["limit": String(limit)]) : FieldError("error_invalid")
        }
    }
}

/// A problem with one value of the form: a key of the page's catalogue of texts
/// (`error_required`, `error_email`…) and the values its text may name.
struct FieldError: Sendable, Equatable {
    let key: String
    let values: [String: String]

    init(_ key: String, _ values: [String: String] = [:]) {
        self.key = key
        self.values = values
    }
}
