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
    private var values: [String] = []
    private(set) var context: [String: Any] = [:]

    enum Escape { case none, html }

    /// A prefix that does not occur in `source`: `mstv<random>n`.
    static func makePrefix(avoiding source: String) -> String {
        var nonce: String
        repeat {
            nonce = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        } while source.contains(nonce)
        return "mstv\(nonce)n"
    }

    /// Identifies the skeleton a context renders to: the same names with the same
    /// value classes (see `valueClass`) always give the same skeleton for a given prefix.
    let shapeKey: String

    init(values named: [String: String], prefix: String) {
        self.prefix = prefix
        var key = ""
        for (name, value) in named.sorted(by: { $0.key < $1.key }) {
            key += name
            key += "\u{0}\(Self.valueClass(value))"
            let slot = Slot(token: "\(prefix)\(values.count)z", isNull: value.isEmpty)
            values.append(value)
            Self.insert(slot, at: name.split(separator: ".").map(String.init), into: &context)
        }
        shapeKey = key
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

    /// Finds each token in `text`: returns the pieces between tokens and the value indexes.
    private func tokens(in text: String) -> [(range: Range<String.Index>, index: Int)] {
        var found: [(Range<String.Index>, Int)] = []
        var search = text.startIndex
        while let hit = text.range(of: prefix, range: search..<text.endIndex) {
            var cursor = hit.upperBound
            var digits = ""
            while cursor < text.endIndex, let d = text[cursor].wholeNumberValue, text[cursor].isASCII {
                digits.append(String(d))
                cursor = text.index(after: cursor)
            }
            if cursor < text.endIndex, text[cursor] == "z", let index = Int(digits), index < values.count {
                let end = text.index(after: cursor)
                found.append((hit.lowerBound..<end, index))
                search = end
            } else {
                search = hit.upperBound
            }
        }
        return found
    }

    /// What the skeleton can depend on: emptiness (sections) and, for `<{{x}}>`
    /// autolinks, whether the value is a URL or an address.
    static func valueClass(_ value: String) -> Int {
        if value.isEmpty { return 0 }
        let lower = value.lowercased()
        if lower.hasPrefix("https://") || lower.hasPrefix("http://") || lower.hasPrefix("mailto:") { return 1 }
        if value.contains("@"), !value.contains(" ") { return 2 }
        return 3
    }

    /// Rewrites `<token>` (a Markdown autolink around a variable) into a real link when
    /// the value is a URL or an address, and into literal angle brackets otherwise.
    func prepareForMarkdown(_ skeleton: String) -> String {
        var out = ""
        var last = skeleton.startIndex
        for (range, index) in tokens(in: skeleton) {
            let token = String(skeleton[range])
            guard range.lowerBound > skeleton.startIndex, skeleton[skeleton.index(before: range.lowerBound)] == "<",
                  range.upperBound < skeleton.endIndex, skeleton[range.upperBound] == ">" else { continue }
            let replacement: String
            switch Self.valueClass(values[index]) {
            case 1: replacement = "[\(token)](\(token))"
            case 2: replacement = "[\(token)](mailto:\(token))"
            default: replacement = "\\<\(token)\\>"
            }
            out += skeleton[last..<skeleton.index(before: range.lowerBound)]
            out += replacement
            last = skeleton.index(after: range.upperBound)
        }
        out += skeleton[last...]
        return out
    }

    /// Puts the values back. For `.html`, each value is escaped for where it lands: text,
    /// a quoted attribute (URL attributes refuse `javascript:` and other schemes), or an
    /// unquoted spot inside a tag (the value is quoted so it cannot add attributes).
    func substitute(_ text: String, escape: Escape) -> String {
        let found = tokens(in: text)
        guard !found.isEmpty else { return text }
        var out = ""
        var last = text.startIndex
        var scanner = HTMLPositionScanner(text: text)
        for (range, index) in found {
            out += text[last..<range.lowerBound]
            let value = values[index]
            switch escape {
            case .none:
                out += value
            case .html:
                switch scanner.state(at: range.lowerBound) {
                case .text:
                    out += htmlEscape(value)
                case .insideTag:
                    out += "\"" + htmlEscape(value) + "\""
                case .attributeValue(let name, let atStart):
                    out += atStart && Self.urlAttributes.contains(name) && !Self.isSafeURL(value) ? "#" : htmlEscape(value)
                }
            }
            last = range.upperBound
        }
        out += text[last...]
        return out
    }

    static let urlAttributes: Set<String> = ["href", "src", "action", "formaction", "background", "xlink:href", "poster", "cite"]

    static func isSafeURL(_ value: String) -> Bool {
        let cleaned = String(value.unicodeScalars.filter { $0.value > 0x20 && $0 != "\u{7F}" }).lowercased()
        guard let colon = cleaned.firstIndex(of: ":") else { return true }
        let scheme = cleaned[..<colon]
        if scheme.contains("/") || scheme.contains("?") || scheme.contains("#") { return true }
        return ["http", "https", "mailto", "tel"].contains(scheme)
    }
}

/// Skeletons (Mustache output with tokens, and its cmark HTML) per context shape, so a
/// blast runs Mustache and cmark once per shape instead of once per recipient.
final class SkeletonCache: @unchecked Sendable {
    struct Entry {
        var subject: String
        var text: String
        var html: String
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

/// Escapes `& < > " '` for HTML text and attribute values.
func htmlEscape(_ value: String) -> String {
    var out = ""
    out.reserveCapacity(value.utf8.count)
    for scalar in value.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        case "\u{0}": out += "\u{FFFD}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// Walks HTML forward, telling whether a position is in text, inside a tag, or inside a
/// quoted attribute value (and which attribute). Positions must be asked in order.
struct HTMLPositionScanner {
    enum State: Equatable { case text, insideTag, attributeValue(name: String, atStart: Bool) }

    private let text: String
    private var index: String.Index
    private var mode: Mode = .text
    private enum Mode { case text, comment, tag(lastName: String, pending: String), quoted(Character, name: String, start: String.Index) }

    init(text: String) {
        self.text = text
        self.index = text.startIndex
    }

    mutating func state(at target: String.Index) -> State {
        while index < target {
            let c = text[index]
            switch mode {
            case .text:
                if c == "<" {
                    if text[index...].hasPrefix("<!--") {
                        mode = .comment
                    } else if let next = text.index(index, offsetBy: 1, limitedBy: text.endIndex), next < text.endIndex,
                              text[next].isLetter || text[next] == "/" || text[next] == "!" || text[next] == "?" {
                        mode = .tag(lastName: "", pending: "")
                    }
                }
            case .comment:
                if c == ">", text[..<index].hasSuffix("--") { mode = .text }
            case .tag(let lastName, let pending):
                if c == ">" {
                    mode = .text
                } else if c == "\"" || c == "'" {
                    mode = .quoted(c, name: lastName, start: text.index(after: index))
                } else if c == "=" {
                    mode = .tag(lastName: pending.isEmpty ? lastName : pending.lowercased(), pending: "")
                } else if c.isWhitespace || c == "/" {
                    mode = .tag(lastName: pending.isEmpty ? lastName : pending.lowercased(), pending: "")
                } else {
                    mode = .tag(lastName: lastName, pending: pending + String(c))
                }
            case .quoted(let quote, _, _):
                if c == quote { mode = .tag(lastName: "", pending: "") }
            }
            index = text.index(after: index)
        }
        switch mode {
        case .text, .comment: return .text
        case .tag: return .insideTag
        case .quoted(_, let name, let start): return .attributeValue(name: name, atStart: start == target)
        }
    }
}
