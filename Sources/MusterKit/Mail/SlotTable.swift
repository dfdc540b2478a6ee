import Foundation
import Mustache

/// Renders templates with opaque placeholder tokens instead of values, so that values
/// (which come from signers) are never parsed as Mustache or Markdown, and are put
/// back afterwards with the escaping their place in the output needs.
///
/// A token is ASCII letters and digits (`mstv<nonce>n<index>z`): cmark leaves it
/// untouched in text, emphasis, code, link text and link destinations.
struct SlotTable {
    private let prefix: String
    private let names: [String]
    private let values: [String]
    /// Identifies the skeleton a context renders to: the same names with the same
    /// value classes (see `valueClass`) always give the same skeleton for a given prefix.
    let shapeKey: String

    enum Escape { case none, html }

    /// A prefix that does not occur in `source`: `mstv<random>n`.
    static func makePrefix(avoiding source: String) -> String {
        var nonce: String
        repeat {
            nonce = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        } while source.containsBytes(nonce)
        return "mstv\(nonce)n"
    }

    /// `names` must be in ascending order, without duplicates.
    init(sortedNames names: [String], values: [String], prefix: String) {
        self.prefix = prefix
        self.names = names
        self.values = values
        var key: [UInt8] = []
        key.reserveCapacity(names.reduce(0) { $0 + $1.utf8.count + 2 })
        for (name, value) in zip(names, values) {
            key += name.utf8
            key.append(0)
            key.append(UInt8(ascii: "0") + UInt8(Self.valueClass(value)))
        }
        shapeKey = String(decoding: key, as: UTF8.self)
    }

    /// The Mustache context: every name (dotted names nested) bound to its token.
    var context: [String: Any] {
        var context: [String: Any] = [:]
        for (index, name) in names.enumerated() {
            let slot = Slot(token: "\(prefix)\(index)z", isNull: values[index].isEmpty)
            Self.insert(slot, at: name.split(separator: ".").map(String.init), into: &context)
        }
        return context
    }

    private static func insert(_ slot: Slot, at path: [String], into dictionary: inout [String: Any]) {
        guard let first = path.first else { return }
        if path.count == 1 {
            if dictionary[first] == nil { dictionary[first] = slot }
            return
        }
        var child = dictionary[first] as? [String: Any] ?? [:]
        Self.insert(slot, at: Array(path.dropFirst()), into: &child)
        dictionary[first] = child
    }

    /// Token occurrences in `bytes`: byte range and value index.
    private func tokens(in bytes: UnsafeBufferPointer<UInt8>) -> [(start: Int, end: Int, index: Int)] {
        var found: [(Int, Int, Int)] = []
        var prefix = self.prefix
        prefix.withUTF8 { p in
            var search = 0
            while let hit = firstOffset(of: p, in: bytes, from: search) {
                var cursor = hit + p.count
                var index = 0
                var digits = 0
                while cursor < bytes.count, bytes[cursor] >= 0x30, bytes[cursor] <= 0x39, digits < 9 {
                    index = index * 10 + Int(bytes[cursor] - 0x30)
                    digits += 1
                    cursor += 1
                }
                if digits > 0, cursor < bytes.count, bytes[cursor] == UInt8(ascii: "z"), index < values.count {
                    found.append((hit, cursor + 1, index))
                    search = cursor + 1
                } else {
                    search = hit + p.count
                }
            }
        }
        return found
    }

    /// What the skeleton can depend on: emptiness (sections) and, for `<{{x}}>`
    /// autolinks, whether the value is a URL or an address.
    static func valueClass(_ value: String) -> Int {
        if value.isEmpty { return 0 }
        if hasASCIIPrefix(value, "https://") || hasASCIIPrefix(value, "http://") || hasASCIIPrefix(value, "mailto:") { return 1 }
        if value.utf8.contains(UInt8(ascii: "@")), !value.utf8.contains(UInt8(ascii: " ")) { return 2 }
        return 3
    }

    /// Whether `value` starts with `prefix` (lower-case ASCII), ignoring ASCII case.
    private static func hasASCIIPrefix(_ value: String, _ prefix: StaticString) -> Bool {
        var bytes = value.utf8.makeIterator()
        for index in 0..<prefix.utf8CodeUnitCount {
            guard let byte = bytes.next() else { return false }
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if lower != prefix.utf8Start[index] { return false }
        }
        return true
    }

    /// Rewrites `<token>` (a Markdown autolink around a variable) into a real link when
    /// the value is a URL or an address, and into literal angle brackets otherwise.
    func prepareForMarkdown(_ skeleton: String) -> String {
        let bytes = Array(skeleton.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var last = 0
        bytes.withUnsafeBufferPointer { b in
            for (start, end, index) in tokens(in: b) {
                guard start > 0, b[start - 1] == UInt8(ascii: "<"), end < b.count, b[end] == UInt8(ascii: ">") else { continue }
                let token = Array(b[start..<end])
                out += b[last..<(start - 1)]
                switch Self.valueClass(values[index]) {
                case 1: out += Array("[".utf8) + token + Array("](".utf8) + token + Array(")".utf8)
                case 2: out += Array("[".utf8) + token + Array("](mailto:".utf8) + token + Array(")".utf8)
                default: out += Array("\\<".utf8) + token + Array("\\>".utf8)
                }
                last = end + 1
            }
            out += b[last...]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Where each token of `text` is and how its value must be escaped there; the same
    /// for every context of the same shape, so a blast works it out once per skeleton.
    /// For `.html`, each value is escaped for where it lands: text, a quoted attribute
    /// (URL attributes refuse `javascript:` and other schemes), or an unquoted spot inside
    /// a tag (the value is quoted so it cannot add attributes).
    func compile(_ text: String, escape: Escape) -> CompiledSkeleton {
        var text = text
        return text.withUTF8 { b in
            var pieces: [CompiledSkeleton.Piece] = []
            var scanner = HTMLPositionScanner()
            for (start, end, index) in tokens(in: b) {
                let placement: CompiledSkeleton.Placement
                switch escape {
                case .none:
                    placement = .plain
                case .html:
                    switch scanner.state(at: start, in: b) {
                    case .text:
                        placement = .text
                    case .insideTag(let attribute):
                        placement = .insideTag(url: attribute.map { Self.urlAttributes.contains($0) } ?? false)
                    case .attributeValue(let name, let atStart):
                        placement = .attributeValue(url: atStart && Self.urlAttributes.contains(name))
                    }
                }
                pieces.append(.init(start: start, end: end, index: index, placement: placement))
            }
            return CompiledSkeleton(bytes: Array(b), pieces: pieces)
        }
    }

    /// The skeleton with this table's values in place.
    func fill(_ skeleton: CompiledSkeleton) -> String {
        guard !skeleton.pieces.isEmpty else { return String(decoding: skeleton.bytes, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(skeleton.bytes.count + 256)
        var last = 0
        skeleton.bytes.withUnsafeBufferPointer { b in
            for piece in skeleton.pieces {
                out += b[last..<piece.start]
                let value = values[piece.index]
                switch piece.placement {
                case .plain:
                    out += value.utf8
                case .text:
                    appendHTMLEscaped(value, to: &out)
                case .insideTag(let url):
                    out.append(UInt8(ascii: "\""))
                    if url, !Self.isSafeURL(value) {
                        out.append(UInt8(ascii: "#"))
                    } else {
                        appendHTMLEscaped(value, to: &out)
                    }
                    out.append(UInt8(ascii: "\""))
                case .attributeValue(let url):
                    if url, !Self.isSafeURL(value) {
                        out.append(UInt8(ascii: "#"))
                    } else {
                        appendHTMLEscaped(value, to: &out)
                    }
                }
                last = piece.end
            }
            out += b[last...]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static let urlAttributes: Set<String> = ["href", "src", "action", "formaction", "background", "xlink:href", "poster", "cite"]

    /// Whether a value may start a URL attribute: relative, or http(s), mailto, tel.
    /// Control characters and spaces are ignored, as browsers ignore them in schemes.
    static func isSafeURL(_ value: String) -> Bool {
        guard value.utf8.contains(UInt8(ascii: ":")) else { return true }
        var scheme: [UInt8] = []
        for byte in value.utf8 {
            if byte <= 0x20 || byte == 0x7F { continue }
            if byte == UInt8(ascii: ":") { break }
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            let isSchemeByte = (lower >= 0x61 && lower <= 0x7A)
                || (!scheme.isEmpty && ((lower >= 0x30 && lower <= 0x39) || lower == UInt8(ascii: "+") || lower == UInt8(ascii: "-") || lower == UInt8(ascii: ".")))
            // Not a scheme (e.g. "/x:y", "a b:c" after stripping, "[x](y:z)"): a relative URL.
            if !isSchemeByte { return true }
            scheme.append(lower)
            if scheme.count > 32 { return false }
        }
        return [Array("http".utf8), Array("https".utf8), Array("mailto".utf8), Array("tel".utf8)].contains(scheme)
    }
}

/// A skeleton (Mustache or cmark output holding tokens) with its tokens found: the
/// literal bytes, and for each token its range, its value and how to escape it there.
struct CompiledSkeleton: Sendable {
    enum Placement: Sendable {
        /// Plain text output: the value as it is.
        case plain
        /// HTML text: escaped.
        case text
        /// Inside a tag, not in quotes: quoted and escaped (`url`: in a URL attribute).
        case insideTag(url: Bool)
        /// In a quoted attribute value (`url`: at the start of a URL attribute's value).
        case attributeValue(url: Bool)
    }

    struct Piece: Sendable {
        let start: Int
        let end: Int
        let index: Int
        let placement: Placement
    }

    let bytes: [UInt8]
    let pieces: [Piece]
}

/// Skeletons (Mustache output with tokens, and its cmark HTML) per context shape, so a
/// blast runs Mustache and cmark — and finds the tokens — once per shape instead of once
/// per recipient.
final class SkeletonCache: @unchecked Sendable {
    struct Entry {
        var subject: CompiledSkeleton
        var text: CompiledSkeleton
        var html: CompiledSkeleton
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private let limit = 256

    func entry(for key: String, make: () -> Entry) -> Entry {
        if let hit = lock.withLock({ entries[key] }) { return hit }
        let made = make()
        lock.withLock {
            if entries.count < limit { entries[key] = made }
        }
        return made
    }
}

/// Renders as its token; empty values count as false in sections.
struct Slot: MustacheCustomRenderable {
    let token: String
    let isNull: Bool
    var renderText: String { token }
}

/// Walks HTML bytes forward, telling whether an offset is in text, inside a tag, or
/// inside a quoted attribute value (and which attribute). Offsets must be asked in order.
struct HTMLPositionScanner {
    enum State: Equatable {
        case text
        /// Inside a tag, not in quotes; `attribute` is set right after `name=`.
        case insideTag(attribute: String?)
        case attributeValue(name: String, atStart: Bool)
    }

    private var offset = 0
    private var mode: Mode = .text
    private enum Mode {
        case text, comment
        case tag(lastName: [UInt8], pending: [UInt8], afterEquals: Bool)
        case quoted(UInt8, name: [UInt8], start: Int)
    }

    private static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }

    mutating func state(at target: Int, in b: UnsafeBufferPointer<UInt8>) -> State {
        while offset < target {
            let c = b[offset]
            switch mode {
            case .text:
                if c == UInt8(ascii: "<"), offset + 1 < b.count {
                    let next = b[offset + 1]
                    if offset + 3 < b.count, next == UInt8(ascii: "!"), b[offset + 2] == UInt8(ascii: "-"), b[offset + 3] == UInt8(ascii: "-") {
                        mode = .comment
                        offset += 3
                    } else if Self.isLetter(next) || next == UInt8(ascii: "/") || next == UInt8(ascii: "!") || next == UInt8(ascii: "?") {
                        mode = .tag(lastName: [], pending: [], afterEquals: false)
                    }
                }
            case .comment:
                if c == UInt8(ascii: ">"), offset >= 2, b[offset - 1] == UInt8(ascii: "-"), b[offset - 2] == UInt8(ascii: "-") {
                    mode = .text
                }
            case .tag(let lastName, var pending, let afterEquals):
                switch c {
                case UInt8(ascii: ">"):
                    mode = .text
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    mode = .quoted(c, name: lastName, start: offset + 1)
                case UInt8(ascii: "="):
                    mode = .tag(lastName: pending.isEmpty ? lastName : pending, pending: [], afterEquals: true)
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                    mode = .tag(lastName: pending.isEmpty ? lastName : pending, pending: [], afterEquals: afterEquals && pending.isEmpty)
                case UInt8(ascii: "/"):
                    mode = .tag(lastName: pending.isEmpty ? lastName : pending, pending: [], afterEquals: false)
                default:
                    pending.append(c >= 0x41 && c <= 0x5A ? c | 0x20 : c)
                    mode = .tag(lastName: afterEquals ? [] : lastName, pending: pending, afterEquals: false)
                }
            case .quoted(let quote, _, _):
                if c == quote { mode = .tag(lastName: [], pending: [], afterEquals: false) }
            }
            offset += 1
        }
        switch mode {
        case .text, .comment: return .text
        case .tag(let lastName, let pending, let afterEquals):
            return .insideTag(attribute: afterEquals && pending.isEmpty ? String(decoding: lastName, as: UTF8.self) : nil)
        case .quoted(_, let name, let start):
            return .attributeValue(name: String(decoding: name, as: UTF8.self), atStart: start == target)
        }
    }
}
