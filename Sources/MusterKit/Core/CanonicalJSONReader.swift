/// Reads back the objects `CanonicalObjectWriter` writes — string, list-of-strings and
/// string-to-string object members, strings escaped only as `CanonicalJSON.writeString`
/// does — without Foundation's JSON parser (a blast reads two per recipient). Anything
/// else gives nil, and the caller falls back to `JSONSerialization`.
enum CanonicalJSONReader {
    enum Value: Equatable {
        case string(String)
        case strings([String])
        case object([String: String])
    }

    static func object(_ text: String) -> [String: Value]? {
        var text = text
        return text.withUTF8 { bytes -> [String: Value]? in
            var reader = Cursor(bytes: bytes)
            guard reader.take(UInt8(ascii: "{")) else { return nil }
            var result: [String: Value] = [:]
            if reader.take(UInt8(ascii: "}")) { return reader.atEnd ? result : nil }
            repeat {
                guard let key = reader.string(), reader.take(UInt8(ascii: ":")) else { return nil }
                switch reader.peek {
                case UInt8(ascii: "\""):
                    guard let value = reader.string() else { return nil }
                    result[key] = .string(value)
                case UInt8(ascii: "["):
                    guard let values = reader.strings() else { return nil }
                    result[key] = .strings(values)
                case UInt8(ascii: "{"):
                    guard let members = reader.members() else { return nil }
                    result[key] = .object(members)
                default:
                    return nil
                }
            } while reader.take(UInt8(ascii: ","))
            guard reader.take(UInt8(ascii: "}")), reader.atEnd else { return nil }
            return result
        }
    }

    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var offset = 0

        var atEnd: Bool { offset == bytes.count }
        var peek: UInt8? { offset < bytes.count ? bytes[offset] : nil }

        mutating func take(_ byte: UInt8) -> Bool {
            guard offset < bytes.count, bytes[offset] == byte else { return false }
            offset += 1
            return true
        }

        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = offset
            // Most strings hold no escape: one scan, one copy.
            while offset < bytes.count, bytes[offset] != UInt8(ascii: "\""), bytes[offset] != UInt8(ascii: "\\") { offset += 1 }
            guard offset < bytes.count else { return nil }
            if bytes[offset] == UInt8(ascii: "\"") {
                defer { offset += 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
            }
            var out = Array(bytes[start..<offset])
            while offset < bytes.count {
                let byte = bytes[offset]
                offset += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard offset < bytes.count else { return nil }
                    let escape = bytes[offset]
                    offset += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(escape)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        // Only control characters are written, as \u00xx.
                        guard offset + 4 <= bytes.count, bytes[offset] == UInt8(ascii: "0"), bytes[offset + 1] == UInt8(ascii: "0"),
                              let high = Hex.value(ofDigit: bytes[offset + 2]), let low = Hex.value(ofDigit: bytes[offset + 3]), high < 2 else { return nil }
                        out.append(high << 4 | low)
                        offset += 4
                    default:
                        return nil
                    }
                default:
                    out.append(byte)
                }
            }
            return nil
        }

        mutating func strings() -> [String]? {
            guard take(UInt8(ascii: "[")) else { return nil }
            var values: [String] = []
            if take(UInt8(ascii: "]")) { return values }
            repeat {
                guard let value = string() else { return nil }
                values.append(value)
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]")) ? values : nil
        }

        mutating func members() -> [String: String]? {
            guard take(UInt8(ascii: "{")) else { return nil }
            var members: [String: String] = [:]
            if take(UInt8(ascii: "}")) { return members }
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")), let value = string() else { return nil }
                members[key] = value
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}")) ? members : nil
        }
    }
}
