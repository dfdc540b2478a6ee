/// A Mustache tag found in template text, with its position, for checks that
/// swift-mustache does not do (unknown variables, unsupported tag kinds).
struct MustacheTag: Equatable {
    enum Kind: Equatable { case variable, unescaped, section, inverted, close, comment, partial, delimiter, block, pragma }
    var kind: Kind
    /// The name as written, trimmed (transforms like `uppercased(name)` unwrapped).
    var name: String
    /// 0-based line and column (Unicode scalars) of the opening `{{` in the scanned text.
    var line: Int
    var column: Int

    /// Scans `text` with the default `{{ }}` delimiters.
    static func scan(_ text: String) -> [MustacheTag] {
        let s = Array(text.unicodeScalars)
        var tags: [MustacheTag] = []
        var i = 0, line = 0, column = 0
        func advance(_ n: Int) {
            for _ in 0..<n where i < s.count {
                if s[i] == "\n" { line += 1; column = 0 } else { column += 1 }
                i += 1
            }
        }
        func find(_ needle: [Unicode.Scalar], from start: Int) -> Int? {
            var j = start
            while j + needle.count <= s.count {
                if Array(s[j..<j + needle.count]) == needle { return j }
                j += 1
            }
            return nil
        }
        while i < s.count {
            guard s[i] == "{", i + 1 < s.count, s[i + 1] == "{" else { advance(1); continue }
            let (tagLine, tagColumn) = (line, column)
            let triple = i + 2 < s.count && s[i + 2] == "{"
            let contentStart = i + (triple ? 3 : 2)
            let closer: [Unicode.Scalar] = triple ? ["}", "}", "}"] : ["}", "}"]
            guard let end = find(closer, from: contentStart) else { break }
            var content = String(String.UnicodeScalarView(s[contentStart..<end]))
            var kind: Kind = triple ? .unescaped : .variable
            if !triple, let sigil = content.unicodeScalars.first {
                let kinds: [Unicode.Scalar: Kind] = ["#": .section, "^": .inverted, "/": .close, "!": .comment, ">": .partial,
                                                     "&": .unescaped, "=": .delimiter, "$": .block, "<": .block, "%": .pragma]
                if let k = kinds[sigil] {
                    kind = k
                    content = String(content.unicodeScalars.dropFirst())
                }
            }
            var name = content.trimmingWhitespace()
            // swift-mustache transforms: `{{ uppercased(name) }}`.
            if let open = name.firstIndex(of: "("), name.hasSuffix(")") {
                name = String(name[name.index(after: open)..<name.index(before: name.endIndex)]).trimmingWhitespace()
            }
            tags.append(MustacheTag(kind: kind, name: name, line: tagLine, column: tagColumn))
            advance(end + closer.count - i)
        }
        return tags
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self).unicodeScalars
        while let f = scalars.first, f == " " || f == "\t" || f == "\n" || f == "\r" { scalars.removeFirst() }
        while let l = scalars.last, l == " " || l == "\t" || l == "\n" || l == "\r" { scalars.removeLast() }
        return String(scalars)
    }
}
