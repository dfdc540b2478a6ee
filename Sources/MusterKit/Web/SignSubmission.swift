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

    /// Validates as `muster sign` does, collecting one message per field (by form
    /// parameter); the signature when there is none.
    mutating func validate(against manifest: Manifest) -> ValidSignature? {
        func check(_ param: String, _ body: () throws -> Void) {
            do { try body() } catch let error as MusterError { errors[param] = Self.sentence(error.message) } catch {
                errors[param] = "This value is not accepted."
            }
        }
        check("name") { _ = try SignatureInput.validatedName(name) }
        check("email") { _ = try SignatureInput.validatedEmail(email) }
        for field in manifest.fields {
            check("field." + field.name) { _ = try SignatureInput.validatedField(fields[field.name] ?? "", field) }
        }
        check("comment") { _ = try SignatureInput.validatedComment(comment) }
        guard errors.isEmpty else { return nil }
        let input = SignatureInput(name: name, email: email, comment: comment, fields: fields.filter { !$0.value.isEmpty },
                                   consents: consents.sorted(), source: "web", collector: nil)
        do {
            return try input.validated(against: manifest)
        } catch let error as MusterError {
            errors["name"] = Self.sentence(error.message)
            return nil
        } catch {
            errors["name"] = "This form could not be accepted."
            return nil
        }
    }

    /// A validation message as a sentence for the page.
    static func sentence(_ message: String) -> String {
        let first = message.prefix(1).uppercased() + message.dropFirst()
        return first.hasSuffix(".") ? first : first + "."
    }
}
