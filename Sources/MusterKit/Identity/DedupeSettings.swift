import Foundation
import Yams

extension MailboxRules {
    static let knownKeys: Set<String> = ["keep_tags", "separators", "domains"]
    static let knownDomainKeys: Set<String> = ["separators", "ignore_dots", "same_as"]
    /// Characters that may separate a sub-address tag: RFC 5322 atext symbols, not `.`.
    static let allowedSeparators = Set("+-_=~#!$%&'*/?^`{|}")

    /// Reads the `dedupe:` mapping of `muster.yaml` (nil node: the standard rules).
    /// Every problem goes to `diagnostics`, naming the key and the value; nil then.
    static func parse(_ node: Node?, diagnostics: DiagnosticCollector) -> MailboxRules? {
        guard let node else { return .standard }
        let before = diagnostics.diagnostics.filter { $0.severity == .error }.count
        guard let map = MappingReader(node, diagnostics: diagnostics, what: "'dedupe'") else { return nil }
        map.warnUnknown(knownKeys, in: "'dedupe'")
        let keepTags = bool(map, "keep_tags", path: "dedupe.keep_tags", diagnostics: diagnostics) ?? false
        var separators: [Character] = ["+"]
        if let value = map["separators"] {
            separators = parseSeparators(value, key: "dedupe.separators", diagnostics: diagnostics) ?? separators
        }
        var domains: [String: DomainRule] = [:]
        var aliasOwner: [String: String] = [:]
        if let value = map["domains"], let table = MappingReader(value, diagnostics: diagnostics, what: "'dedupe.domains'") {
            for pair in table.pairs {
                guard let domain = canonicalDomain(pair.key, key: "dedupe.domains", mark: pair.keyMark, diagnostics: diagnostics) else { continue }
                guard let ruleMap = MappingReader(pair.value, diagnostics: diagnostics, what: "'dedupe.domains.\(pair.key)'") else { continue }
                ruleMap.warnUnknown(knownDomainKeys, in: "'dedupe.domains.\(pair.key)'")
                var rule = DomainRule()
                if let value = ruleMap["separators"] {
                    rule.separators = parseSeparators(value, key: "dedupe.domains.\(pair.key).separators", diagnostics: diagnostics) ?? []
                }
                rule.ignoreDots = bool(ruleMap, "ignore_dots", path: "dedupe.domains.\(pair.key).ignore_dots", diagnostics: diagnostics) ?? false
                if let value = ruleMap["same_as"] {
                    guard case .sequence(let items) = value else {
                        diagnostics.error("'dedupe.domains.\(pair.key).same_as' must be a list of domains, such as [example.net]", at: value.mark)
                        continue
                    }
                    for item in items {
                        guard let text = item.scalar?.string,
                              let alias = canonicalDomain(text, key: "dedupe.domains.\(pair.key).same_as", mark: item.mark, diagnostics: diagnostics) else {
                            if item.scalar == nil { diagnostics.error("'dedupe.domains.\(pair.key).same_as' must list domains, not a list or mapping", at: item.mark) }
                            continue
                        }
                        if alias == domain {
                            diagnostics.error("'dedupe.domains.\(pair.key).same_as' lists the domain itself ('\(text)')", at: item.mark)
                        } else if let owner = aliasOwner[alias], owner != domain {
                            diagnostics.error("'\(text)' is in the same_as of both \(owner) and \(pair.key) in 'dedupe.domains'; a domain can be the same as only one", at: item.mark)
                        } else {
                            aliasOwner[alias] = domain
                            rule.sameAs.append(alias)
                        }
                    }
                }
                domains[domain] = rule
            }
        }
        for (alias, owner) in aliasOwner.sorted(by: { $0.key < $1.key }) where domains[alias] != nil {
            diagnostics.error("'\(alias)' is in the same_as of \(owner) and has its own rules in 'dedupe.domains'; put them under \(owner)", at: map.mark(of: "domains"))
        }
        let after = diagnostics.diagnostics.filter { $0.severity == .error }.count
        guard after == before else { return nil }
        return MailboxRules(keepTags: keepTags, separators: separators, domains: domains)
    }

    private static func bool(_ map: MappingReader, _ key: String, path: String, diagnostics: DiagnosticCollector) -> Bool? {
        guard let value = map[key] else { return nil }
        switch value.scalar?.string.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default:
            let shown = value.scalar.map { "'\(SignatureInput.shown($0.string))'" } ?? "a list or mapping"
            diagnostics.error("'\(path)' must be true or false, not \(shown)", at: value.mark)
            return nil
        }
    }

    private static func parseSeparators(_ value: Node, key: String, diagnostics: DiagnosticCollector) -> [Character]? {
        guard case .sequence(let items) = value else {
            diagnostics.error("'\(key)' must be a list of single characters, such as [\"+\"]", at: value.mark)
            return nil
        }
        var result: [Character] = []
        for item in items {
            guard let text = item.scalar?.string, text.count == 1, let character = text.first, allowedSeparators.contains(character) else {
                let shown = item.scalar.map { "'\(SignatureInput.shown($0.string))'" } ?? "a list or mapping"
                diagnostics.error("'\(key)' must list single characters such as \"+\" or \"-\" (one of \(String(allowedSeparators.sorted()))), not \(shown)", at: item.mark)
                return nil
            }
            if !result.contains(character) { result.append(character) }
        }
        return result
    }

    private static func canonicalDomain(_ text: String, key: String, mark: Mark?, diagnostics: DiagnosticCollector) -> String? {
        do {
            return try EmailAddress.canonicalDomain(TextField.nfc(text).lowercased())
        } catch {
            let why: String
            if case .domain(let reason) = error { why = reason } else { why = "\(error)" }
            diagnostics.error("'\(key)' has '\(SignatureInput.shown(text))', which is not a domain (\(why))", at: mark)
            return nil
        }
    }
}
