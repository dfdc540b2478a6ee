import Foundation
import Yams

/// The language of a campaign's sign page and server mail (`web: language:` in the
/// manifest; English by default).
public enum WebLanguage: String, Sendable, CaseIterable {
    case en, fr

    /// "en, fr", for error messages.
    static var listed: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The best of `offered` for an `Accept-Language` header (q-values honoured), nil
    /// when it names none of them.
    static func preferred(_ header: String?, among offered: [WebLanguage]) -> WebLanguage? {
        guard let header else { return nil }
        var best: (WebLanguage, Double)?
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let tag = pieces.first, !tag.isEmpty else { continue }
            let q = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            let primary = tag.split(separator: "-").first.map(String.init) ?? tag
            guard q > 0, let language = offered.first(where: { $0.rawValue == primary }) else { continue }
            if best == nil || q > best!.1 { best = (language, q) }
        }
        return best?.0
    }
}

/// The sign page's texts in one language: `templates/web/<lang>.yaml`, built in, with
/// the entries of the workspace's file of the same name in their place. An entry is a
/// text or, for message pages, a mapping of `heading` and `paragraphs`; `{{name}}` in a
/// text is replaced by a value (plain text: the page escapes it).
struct WebCatalogue: Sendable {
    let language: WebLanguage
    private let texts: [String: String]
    private let lists: [String: [String]]

    init(_ language: WebLanguage, workspace: Workspace) throws {
        self.language = language
        let path = "web/\(language.rawValue).yaml"
        guard let builtIn = DefaultTemplates.files[path] else { throw MusterError.failure("no built-in templates/\(path)") }
        var (texts, lists) = try Self.parse(builtIn, file: "templates/\(path) (built in)", known: nil)
        let local = workspace.templatesURL.appendingPathComponent(path)
        if FileManager.default.fileExists(atPath: local.path) {
            let source = try TemplateSource.text(for: path, workspace: workspace)
            let (own, ownLists) = try Self.parse(source, file: "templates/\(path)", known: Set(texts.keys).union(lists.keys))
            texts.merge(own) { $1 }
            lists.merge(ownLists) { $1 }
        }
        self.texts = texts
        self.lists = lists
    }

    /// Flattens the catalogue (`check_inbox.heading`); with `known`, refuses other keys.
    static func parse(_ source: String, file: String, known: Set<String>?) throws -> ([String: String], [String: [String]]) {
        let diagnostics = DiagnosticCollector(file: file)
        var texts: [String: String] = [:], lists: [String: [String]] = [:]
        func visit(_ node: Node, key: String, mark: Mark?) {
            if let known, !known.contains(key) {
                diagnostics.error("unknown text '\(key)'; the built-in file lists every key", at: mark)
                return
            }
            switch node {
            case .scalar(let scalar):
                texts[key] = scalar.string
            case .sequence(let items):
                lists[key] = items.compactMap { item in
                    guard let text = item.scalar?.string else {
                        diagnostics.error("'\(key)' must be a list of texts", at: item.mark)
                        return nil
                    }
                    return text
                }
            default:
                diagnostics.error("'\(key)' must be a text or a list of texts", at: node.mark)
            }
        }
        if let root = YAMLFile.compose(Data(source.utf8), diagnostics: diagnostics),
           let map = MappingReader(root, diagnostics: diagnostics, what: "a catalogue of texts") {
            for (key, keyMark, value) in map.pairs {
                if case .mapping = value, let inner = MappingReader(value, diagnostics: diagnostics, what: "'\(key)'") {
                    for (name, nameMark, item) in inner.pairs { visit(item, key: "\(key).\(name)", mark: nameMark) }
                } else {
                    visit(value, key: key, mark: keyMark)
                }
            }
        }
        if diagnostics.hasErrors {
            throw MusterError(.badInput, "\(file) is not a valid catalogue of texts", details: diagnostics.diagnostics.map(\.description))
        }
        return (texts, lists)
    }

    /// The text of `key` with its `{{name}}`s replaced from `values`.
    func text(_ key: String, _ values: [String: String] = [:]) -> String {
        Self.fill(texts[key] ?? key, values)
    }

    /// A message page's heading and paragraphs.
    func page(_ key: String, _ values: [String: String] = [:]) -> (heading: String, paragraphs: [String]) {
        (text(key + ".heading", values), (lists[key + ".paragraphs"] ?? []).map { Self.fill($0, values) })
    }

    /// Every plain text, for templates (`{{t.sign_button}}`).
    var all: [String: String] { texts }

    static func fill(_ text: String, _ values: [String: String]) -> String {
        guard text.contains("{{") else { return text }
        var out = "", rest = Substring(text)
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            out += rest[..<open.lowerBound]
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            out += values[name] ?? String(rest[open.lowerBound..<close.upperBound])
            rest = rest[close.upperBound...]
        }
        return out + rest
    }
}

extension Number {
    /// `value` with its thousands grouped as the language writes them: 12,345 in
    /// English, 12 345 (narrow no-break spaces) in French.
    static func grouped(_ value: Int64, _ language: WebLanguage) -> String {
        let english = grouped(value)
        return language == .fr ? english.replacingOccurrences(of: ",", with: "\u{202F}") : english
    }
}

extension WebLanguage {
    /// The file of `path` in this language: `emails/confirm.md` itself in English,
    /// `emails/confirm.fr.md` in French.
    public func variant(of path: String) -> String {
        guard self != .en else { return path }
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        return String(path.dropLast(ext.count + 1)) + ".\(rawValue)." + ext
    }

    /// The language a template path is written in (`confirm.fr.md`: French), nil for
    /// the English originals.
    static func of(templatePath path: String) -> WebLanguage? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let parts = name.split(separator: ".")
        guard parts.count >= 3 else { return nil }
        return WebLanguage(rawValue: String(parts[parts.count - 2])).flatMap { $0 == .en ? nil : $0 }
    }
}
