/// JSON with sorted keys and no escaped slashes: one text for one value.
///
/// Only what ledger entries hold: strings, integers, lists of strings and
/// (nested) objects. Written by hand because it runs for every signature.
enum CanonicalJSON {
    static func encode(_ object: Any) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        write(object, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func write(_ value: Any, to out: inout [UInt8]) {
        switch value {
        case let text as String:
            writeString(text, to: &out)
        case let number as Int64:
            out.append(contentsOf: String(number).utf8)
        case let number as Int:
            out.append(contentsOf: String(number).utf8)
        case let list as [String]:
            out.append(UInt8(ascii: "["))
            for (index, item) in list.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let object as [String: String]:
            writeObject(object.map { ($0.key, $0.value as Any) }, to: &out)
        case let object as [String: Any]:
            writeObject(object.map { ($0.key, $0.value) }, to: &out)
        default:
            out.append(contentsOf: "null".utf8)
        }
    }

    private static func writeObject(_ pairs: [(String, Any)], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        // Sorted by UTF-16 code units, as JSONSerialization's .sortedKeys does; keys here are ASCII.
        for (index, pair) in pairs.sorted(by: { $0.0 < $1.0 }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            writeString(pair.0, to: &out)
            out.append(UInt8(ascii: ":"))
            write(pair.1, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // The common case, nothing to escape, is copied in one go.
        var copy = text
        let plain = copy.withUTF8 { bytes in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if plain {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): out.append(contentsOf: [92, 92])
            case 0x0A: out.append(contentsOf: [92, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [92, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// Writes one canonical JSON object whose keys the caller gives in sorted order.
struct CanonicalObjectWriter {
    private var out: [UInt8]
    /// Where this object's `{` is in `out`.
    private let opening: Int

    init() {
        out = [UInt8(ascii: "{")]
        out.reserveCapacity(160)
        opening = 0
    }

    /// Writes the object at the end of `buffer`, whose storage the writer takes until
    /// `finish(into:)` gives it back (so nothing is copied).
    init(appendingTo buffer: inout [UInt8]) {
        var taken: [UInt8] = []
        swap(&taken, &buffer)
        opening = taken.count
        taken.append(UInt8(ascii: "{"))
        out = taken
    }

    private mutating func key(_ key: String) {
        if out.count > opening + 1 { out.append(UInt8(ascii: ",")) }
        CanonicalJSON.writeString(key, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    mutating func string(_ name: String, _ value: String) {
        key(name)
        CanonicalJSON.writeString(value, to: &out)
    }

    mutating func strings(_ name: String, _ values: [String]) {
        key(name)
        out.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            CanonicalJSON.writeString(value, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    mutating func object(_ name: String, _ values: [String: String]) {
        key(name)
        out.append(UInt8(ascii: "{"))
        for (index, pair) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            CanonicalJSON.writeString(pair.key, to: &out)
            out.append(UInt8(ascii: ":"))
            CanonicalJSON.writeString(pair.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    mutating func finish() -> String {
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Closes the object and hands the buffer back (see `init(appendingTo:)`).
    mutating func finish(into buffer: inout [UInt8]) {
        out.append(UInt8(ascii: "}"))
        swap(&out, &buffer)
    }

    /// The object `write` writes, as text.
    static func object(_ write: (inout CanonicalObjectWriter) -> Void) -> String {
        var writer = CanonicalObjectWriter()
        write(&writer)
        return writer.finish()
    }

    /// Appends the object `write` writes to `buffer`.
    static func append(to buffer: inout [UInt8], _ write: (inout CanonicalObjectWriter) -> Void) {
        var writer = CanonicalObjectWriter(appendingTo: &buffer)
        write(&writer)
        writer.finish(into: &buffer)
    }
}
