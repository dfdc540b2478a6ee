import Foundation
import Yams

/// One problem found in a workspace file, located by line and column.
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    /// Whether the problem stops the command.
    public enum Severity: String, Sendable { case error, warning }

    public let file: String
    public let line: Int
    public let column: Int
    public let severity: Severity
    public let message: String

    public init(file: String, line: Int, column: Int, severity: Severity = .error, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.severity = severity
        self.message = message
    }

    /// `file:line:column: error: message`, the form editors and compilers use.
    public var description: String { "\(file):\(line):\(column): \(severity.rawValue): \(message)" }
}

/// Collects diagnostics for one file while it is read.
final class DiagnosticCollector {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    func error(_ message: String, at mark: Mark?) {
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message))
    }

    func error(_ message: String, line: Int, column: Int) {
        diagnostics.append(Diagnostic(file: file, line: line, column: column, message: message))
    }

    func warning(_ message: String, at mark: Mark?) {
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, severity: .warning, message: message))
    }
}

/// Safe reading of YAML files written by people: size and nesting limits, UTF-8
/// checked with its position, duplicate keys and syntax errors located.
enum YAMLFile {
    /// Largest YAML file muster reads (manifests are a few kilobytes).
    static let maximumBytes = 1 << 20
    /// Deepest flow nesting (`[[[…` / `{{{…`) accepted.
    static let maximumNesting = 64
    /// Most nodes a document of `bytes` bytes may expand to once aliases are followed.
    /// Without aliases every node takes at least one byte of the text, so this only
    /// refuses documents whose aliases multiply them ("billion laughs": billions of
    /// nodes from a few hundred bytes).
    static func maximumNodes(bytes: Int) -> Int { 2 * bytes + 10_000 }

    /// Reads and composes the YAML at `url`; problems go to `diagnostics`, nil if unusable.
    static func load(_ url: URL, diagnostics: DiagnosticCollector) -> Node? {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            if let size = attributes[.size] as? Int, size > maximumBytes {
                diagnostics.error("the file is \(size) bytes; muster reads YAML files of at most \(maximumBytes) bytes", line: 1, column: 1)
                return nil
            }
            data = try Data(contentsOf: url)
        } catch {
            diagnostics.error("cannot read the file (\(error.localizedDescription))", line: 1, column: 1)
            return nil
        }
        return compose(data, diagnostics: diagnostics)
    }

    /// Composes YAML from raw bytes; problems go to `diagnostics`.
    static func compose(_ data: Data, diagnostics: DiagnosticCollector, lineOffset: Int = 0) -> Node? {
        guard data.count <= maximumBytes else {
            diagnostics.error("the YAML is \(data.count) bytes; at most \(maximumBytes) are read", line: 1 + lineOffset, column: 1)
            return nil
        }
        let text: String
        switch UTF8Text.decode(data) {
        case .success(let decoded): text = decoded
        case .failure(let position):
            diagnostics.error("invalid UTF-8 (byte 0x\(String(format: "%02X", position.byte)))", line: position.line + lineOffset, column: position.column)
            return nil
        }
        if let (line, column) = excessiveNesting(text) {
            diagnostics.error("nesting deeper than \(maximumNesting) levels", line: line + lineOffset, column: column)
            return nil
        }
        do {
            guard let node = try Yams.compose(yaml: text) else { return nil }
            let budget = maximumNodes(bytes: text.utf8.count)
            if !withinNodeBudget(node, limit: budget) {
                diagnostics.error("the YAML expands to more than \(budget) values through aliases (`*name` repeats a whole subtree); write the values out instead", line: 1 + lineOffset, column: 1)
                return nil
            }
            return node
        } catch let error as YamlError {
            switch error {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
                diagnostics.error("YAML syntax: \(problem)", line: mark.line + lineOffset, column: mark.column)
            case .duplicatedKeysInMapping(let duplicates, let context):
                diagnostics.error("duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in this mapping", line: context.mark.line + lineOffset, column: context.mark.column)
            default:
                diagnostics.error("YAML: \(error)", line: 1 + lineOffset, column: 1)
            }
            return nil
        } catch {
            diagnostics.error("YAML: \(error)", line: 1 + lineOffset, column: 1)
            return nil
        }
    }

    /// Whether `node`, with every alias expanded, has at most `limit` nodes. Stops
    /// counting at the limit, so a billion-laughs document costs no more than that.
    static func withinNodeBudget(_ node: Node, limit: Int) -> Bool {
        var remaining = limit
        func visit(_ node: Node) -> Bool {
            remaining -= 1
            if remaining < 0 { return false }
            switch node {
            case .scalar, .alias: return true
            case .sequence(let items):
                for item in items where !visit(item) { return false }
                return true
            case .mapping(let pairs):
                for (key, value) in pairs where !visit(key) || !visit(value) { return false }
                return true
            }
        }
        return visit(node)
    }

    /// The position where flow brackets nest deeper than the limit (outside quotes and comments).
    static func excessiveNesting(_ text: String) -> (Int, Int)? {
        var depth = 0, line = 1, column = 0
        var quote: UInt8? = nil
        var comment = false
        var previous: UInt8 = 10
        for byte in text.utf8 {
            column += 1
            if byte == 10 { line += 1; column = 0; comment = false; previous = byte; continue }
            if comment { previous = byte; continue }
            if let open = quote {
                if byte == open { quote = nil }
                previous = byte
                continue
            }
            switch byte {
            case 34, 39: // " '
                if previous == 32 || previous == 10 || previous == 91 || previous == 123 || previous == 44 || previous == 58 || previous == 45 {
                    quote = byte
                }
            case 35: // #
                if previous == 32 || previous == 10 || previous == 9 { comment = true }
            case 91, 123:
                depth += 1
                if depth > maximumNesting { return (line, column) }
            case 93, 125:
                depth = max(0, depth - 1)
            default: break
            }
            previous = byte
        }
        return nil
    }
}

/// Reads one YAML mapping, remembering which keys were used so the rest can be
/// reported as unknown.
struct MappingReader {
    let node: Node
    let diagnostics: DiagnosticCollector
    private(set) var pairs: [(key: String, keyMark: Mark?, value: Node)] = []
    /// Position in `pairs` of each key's first occurrence, so that looking keys up stays
    /// linear in the size of the mapping (a `consent:` table of a few thousand keys took
    /// seconds, quadratic in the number of keys; found while fuzzing the manifest loader).
    private var positions: [String: Int] = [:]

    /// Wraps `node`, or reports that a mapping was expected and returns nil.
    init?(_ node: Node, diagnostics: DiagnosticCollector, what: String) {
        self.node = node
        self.diagnostics = diagnostics
        guard case .mapping(let mapping) = node else {
            diagnostics.error("\(what) must be a mapping of keys to values", at: node.mark)
            return nil
        }
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                diagnostics.error("keys must be plain words", at: key.mark)
                continue
            }
            if positions[name] == nil { positions[name] = pairs.count }
            pairs.append((name, key.mark, value))
        }
    }

    subscript(_ key: String) -> Node? {
        positions[key].map { pairs[$0].value }
    }

    func mark(of key: String) -> Mark? {
        positions[key].flatMap { pairs[$0].keyMark }
    }

    /// Warns about every key not in `known`.
    func warnUnknown(_ known: Set<String>, in what: String) {
        for pair in pairs where !known.contains(pair.key) {
            // Lengths differing by more than 2 cannot be within distance 2: skip the
            // quadratic distance for long keys.
            let length = pair.key.count
            let suggestion = known.first { abs($0.count - length) <= 2 && $0.levenshtein(pair.key) <= 2 }
                .map { " (did you mean '\($0)'?)" } ?? ""
            diagnostics.warning("unknown key '\(pair.key)' in \(what)\(suggestion); it is ignored", at: pair.keyMark)
        }
    }

    /// A required or optional text value; reports the wrong shape.
    func string(_ key: String, required: Bool = false, what: String) -> String? {
        guard let value = self[key] else {
            if required { diagnostics.error("\(what) needs '\(key)'", at: node.mark) }
            return nil
        }
        guard case .scalar(let scalar) = value else {
            diagnostics.error("'\(key)' must be text, not a list or mapping", at: value.mark)
            return nil
        }
        if scalar.style == .plain, ["~", "null", "Null", "NULL", ""].contains(scalar.string) {
            if required { diagnostics.error("'\(key)' must not be empty", at: value.mark) }
            return nil
        }
        let text = scalar.string
        if let bad = TextField.forbiddenCharacter(in: text) {
            diagnostics.error("'\(key)' contains \(bad)", at: value.mark)
            return nil
        }
        return text
    }

    /// A positive whole number.
    func positiveInt(_ key: String, required: Bool = false, what: String) -> Int? {
        guard let value = self[key] else {
            if required { diagnostics.error("\(what) needs '\(key)' (a whole number above 0)", at: node.mark) }
            return nil
        }
        return Self.positiveInt(value, name: key, diagnostics: diagnostics)
    }

    static func positiveInt(_ value: Node, name: String, diagnostics: DiagnosticCollector) -> Int? {
        guard case .scalar(let scalar) = value, let number = Int(scalar.string.replacingOccurrences(of: "_", with: "")), number > 0 else {
            diagnostics.error("'\(name)' must be a whole number above 0, not '\(value.scalar?.string ?? "a list or mapping")'", at: value.mark)
            return nil
        }
        return number
    }

    /// true/false.
    func bool(_ key: String) -> Bool? {
        guard let value = self[key] else { return nil }
        guard case .scalar(let scalar) = value else {
            diagnostics.error("'\(key)' must be true or false", at: value.mark)
            return nil
        }
        switch scalar.string.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default:
            diagnostics.error("'\(key)' must be true or false, not '\(scalar.string)'", at: value.mark)
            return nil
        }
    }
}

extension String {
    /// Edit distance, for "did you mean" hints on short keys.
    func levenshtein(_ other: String) -> Int {
        let a = Array(self), b = Array(other)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// UTF-8 decoding that reports where invalid bytes are.
enum UTF8Text {
    struct Position: Error {
        let offset: Int
        let line: Int
        let column: Int
        let byte: UInt8
    }

    /// Decodes `data` strictly; on failure, the line and column (1-based) of the first bad byte.
    static func decode(_ data: Data) -> Result<String, Position> {
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if let text = String(validating: bytes, as: UTF8.self) {
            return .success(text)
        }
        // Find the first invalid sequence.
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        var line = 1, column = 1
        var consumed = 0
        while true {
            let before = consumed
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                let width = UTF8.width(scalar)
                consumed += width
                offset = consumed
                if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
            case .emptyInput:
                return .success(String(decoding: bytes, as: UTF8.self))
            case .error:
                let bad = before < bytes.count ? bytes[before] : 0
                return .failure(Position(offset: before, line: line, column: column, byte: bad))
            }
            _ = offset
        }
    }
}
