import Foundation
import Yams

/// A campaign's manifest, `campaigns/<slug>/campaign.yaml`.
public struct Manifest: Sendable, Equatable {
    /// A signature count worth celebrating, with an optional label.
    public struct Milestone: Sendable, Equatable, Codable {
        public var at: Int
        public var label: String?
    }

    /// A decision maker the petition is delivered to.
    public struct Target: Sendable, Equatable {
        public var name: String
        public var email: String
    }

    /// A signature field beyond name and email.
    public struct Field: Sendable, Equatable {
        public var name: String
        /// The prompt shown at the kiosk (defaults to the name).
        public var label: String?
        public var required: Bool
        /// The allowed values, when the field is a choice.
        public var options: [String]?
        /// Personal data is erased by `forget`; non-personal fields (categories such
        /// as a region) stay in the ledger so reports still add up.
        public var personal: Bool
    }

    /// Per-region minimums (OpenPetition / European Citizens' Initiative style).
    public struct Quorums: Sendable, Equatable {
        public var field: String
        public var minimums: [(key: String, minimum: Int)]

        public static func == (lhs: Quorums, rhs: Quorums) -> Bool {
            lhs.field == rhs.field && lhs.minimums.elementsEqual(rhs.minimums) { $0.key == $1.key && $0.minimum == $1.minimum }
        }
    }

    /// A consent a signer may give, by key, with the sentence shown to them.
    public struct Consent: Sendable, Equatable {
        public var key: String
        public var text: String
    }

    public var title: String
    public var goal: Int
    /// `YYYY-MM-DD`, when set.
    public var deadline: String?
    public var sender: String?
    public var milestones: [Milestone]
    public var quorums: Quorums?
    public var targets: [Target]
    public var fields: [Field]
    public var consents: [Consent]
    /// The sign page's limits (`web:`); the defaults when the section is absent.
    public var web: WebLimits = WebLimits()

    /// Names a manifest field cannot take: they are built into every signature.
    public static let reservedFieldNames: Set<String> = ["name", "email", "comment", "first_name", "signed_at", "source", "collector", "consent"]

    public func field(named name: String) -> Field? { fields.first { $0.name == name } }
}

extension Manifest {
    static let knownKeys: Set<String> = ["title", "goal", "deadline", "sender", "milestones", "quorums", "targets", "fields", "consent", "description", "web"]

    /// Reads and validates a manifest, collecting every problem.
    ///
    /// Returns the manifest (nil if any error) and all diagnostics, warnings included.
    public static func load(_ url: URL, displayPath: String) -> (Manifest?, [Diagnostic]) {
        let diagnostics = DiagnosticCollector(file: displayPath)
        return finish(YAMLFile.load(url, diagnostics: diagnostics), diagnostics: diagnostics)
    }

    /// Validates a manifest given as the bytes of its file, exactly as `load(_:displayPath:)`
    /// does after reading the file (size, UTF-8, nesting and YAML limits included).
    /// Used by the fuzz target (`Fuzz/`) and by callers that already hold the bytes.
    public static func load(data: Data, displayPath: String) -> (Manifest?, [Diagnostic]) {
        let diagnostics = DiagnosticCollector(file: displayPath)
        return finish(YAMLFile.compose(data, diagnostics: diagnostics), diagnostics: diagnostics)
    }

    private static func finish(_ root: Node?, diagnostics: DiagnosticCollector) -> (Manifest?, [Diagnostic]) {
        guard let root else {
            if !diagnostics.hasErrors { diagnostics.error("the manifest is empty", line: 1, column: 1) }
            return (nil, diagnostics.diagnostics)
        }
        let manifest = parse(root, diagnostics: diagnostics)
        return (diagnostics.hasErrors ? nil : manifest, diagnostics.diagnostics)
    }

    static func parse(_ root: Node, diagnostics: DiagnosticCollector) -> Manifest? {
        guard let map = MappingReader(root, diagnostics: diagnostics, what: "a campaign manifest") else { return nil }
        map.warnUnknown(knownKeys, in: "the manifest")
        let title = map.string("title", required: true, what: "the manifest")
        let goal = map.positiveInt("goal", required: true, what: "the manifest")
        var deadline: String?
        if let node = map["deadline"] {
            let text = node.scalar?.string ?? ""
            if text.count == 10, Timestamp.parse(text) != nil {
                deadline = text
            } else {
                diagnostics.error("'deadline' must be a date like 2027-03-31, not '\(text)'", at: node.mark)
            }
        }
        let sender = map.string("sender", what: "the manifest")
        if let sender, let node = map["sender"] {
            if let problem = Mailbox.problem(sender) {
                diagnostics.error("'sender' \(problem)", at: node.mark)
            }
        }

        // Lists are checked for repeats with sets: a 1 MiB manifest holds tens of
        // thousands of entries, and a quadratic check would hang `muster check`.
        var milestones: [Milestone] = []
        var milestoneValues = Set<Int>()
        if let node = map["milestones"] {
            if case .sequence(let items) = node {
                for item in items {
                    guard let entry = MappingReader(item, diagnostics: diagnostics, what: "a milestone") else { continue }
                    entry.warnUnknown(["at", "label"], in: "a milestone")
                    guard let at = entry.positiveInt("at", required: true, what: "a milestone") else { continue }
                    if let goal, at > goal {
                        diagnostics.warning("milestone at \(at) is beyond the goal of \(goal)", at: item.mark)
                    }
                    if !milestoneValues.insert(at).inserted {
                        diagnostics.error("two milestones at \(at)", at: item.mark)
                    }
                    milestones.append(Milestone(at: at, label: entry.string("label", what: "a milestone")))
                }
                milestones.sort { $0.at < $1.at }
            } else {
                diagnostics.error("'milestones' must be a list, e.g. '- at: 100'", at: node.mark)
            }
        }

        var fields: [Field] = []
        var fieldNames = Set<String>()
        var quorumFieldName: String?
        if let node = map["quorums"], let entry = MappingReader(node, diagnostics: diagnostics, what: "'quorums'") {
            quorumFieldName = entry.string("field", required: true, what: "'quorums'")
        }
        if let node = map["fields"] {
            if case .sequence(let items) = node {
                for item in items {
                    guard let entry = MappingReader(item, diagnostics: diagnostics, what: "a field") else { continue }
                    entry.warnUnknown(["name", "label", "required", "options", "personal"], in: "a field")
                    guard let name = entry.string("name", required: true, what: "a field") else { continue }
                    if name.range(of: "^[a-z][a-z0-9_]{0,31}$", options: .regularExpression) == nil {
                        diagnostics.error("field name '\(name)' must be lower-case letters, digits and _ (starting with a letter, at most 32)", at: entry["name"]?.mark)
                        continue
                    }
                    if reservedFieldNames.contains(name) {
                        diagnostics.error("'\(name)' is built into every signature; choose another field name", at: entry["name"]?.mark)
                        continue
                    }
                    if !fieldNames.insert(name).inserted {
                        diagnostics.error("field '\(name)' is declared twice", at: entry["name"]?.mark)
                        continue
                    }
                    var options: [String]?
                    if let optionsNode = entry["options"] {
                        if case .sequence(let values) = optionsNode, !values.isEmpty {
                            options = []
                            var seen = Set<String>()
                            for value in values {
                                guard let text = value.scalar?.string, !text.isEmpty, TextField.forbiddenCharacter(in: text) == nil else {
                                    diagnostics.error("each option of '\(name)' must be a single line of text", at: value.mark)
                                    continue
                                }
                                if !seen.insert(text).inserted {
                                    diagnostics.error("option '\(text)' of '\(name)' is listed twice", at: value.mark)
                                }
                                options!.append(text)
                            }
                        } else {
                            diagnostics.error("'options' of '\(name)' must be a non-empty list, e.g. [a, b]", at: optionsNode.mark)
                        }
                    }
                    let defaultPersonal = options == nil && name != quorumFieldName
                    fields.append(Field(
                        name: name,
                        label: entry.string("label", what: "a field"),
                        required: entry.bool("required") ?? false,
                        options: options,
                        personal: entry.bool("personal") ?? defaultPersonal))
                }
            } else {
                diagnostics.error("'fields' must be a list, e.g. '- name: region'", at: node.mark)
            }
        }

        var quorums: Quorums?
        if let node = map["quorums"], let entry = MappingReader(node, diagnostics: diagnostics, what: "'quorums'") {
            entry.warnUnknown(["field", "minimums"], in: "'quorums'")
            if let fieldName = quorumFieldName {
                if let field = fields.first(where: { $0.name == fieldName }) {
                    if field.personal {
                        diagnostics.error("the quorum field '\(fieldName)' is marked personal; quorums need it kept after forget (remove 'personal: true')", at: entry["field"]?.mark)
                    }
                } else {
                    diagnostics.error("the quorum field '\(fieldName)' is not declared under 'fields'", at: entry["field"]?.mark)
                }
                var minimums: [(key: String, minimum: Int)] = []
                if let minimumsNode = entry["minimums"], let table = MappingReader(minimumsNode, diagnostics: diagnostics, what: "'minimums'") {
                    let allowed = fields.first(where: { $0.name == fieldName })?.options.map(Set.init)
                    for pair in table.pairs {
                        if let minimum = MappingReader.positiveInt(pair.value, name: pair.key, diagnostics: diagnostics) {
                            if let allowed, !allowed.contains(pair.key) {
                                diagnostics.error("'\(pair.key)' is not one of the options of '\(fieldName)'", at: pair.keyMark)
                            }
                            minimums.append((pair.key, minimum))
                        }
                    }
                } else if entry["minimums"] == nil {
                    diagnostics.error("'quorums' needs 'minimums', e.g. { Lyon: 50 }", at: node.mark)
                }
                quorums = Quorums(field: fieldName, minimums: minimums)
            }
        }

        var targets: [Target] = []
        if let node = map["targets"] {
            if case .sequence(let items) = node {
                for item in items {
                    guard let entry = MappingReader(item, diagnostics: diagnostics, what: "a target") else { continue }
                    entry.warnUnknown(["name", "email"], in: "a target")
                    let name = entry.string("name", required: true, what: "a target")
                    let email = entry.string("email", required: true, what: "a target")
                    if let email {
                        do {
                            _ = try EmailAddress.canonical(email)
                        } catch {
                            diagnostics.error("target email '\(email)' \(error)", at: entry["email"]?.mark)
                        }
                    }
                    if let name, let email { targets.append(Target(name: name, email: email)) }
                }
            } else {
                diagnostics.error("'targets' must be a list of name and email", at: node.mark)
            }
        }

        var consents: [Consent] = []
        if let node = map["consent"], let table = MappingReader(node, diagnostics: diagnostics, what: "'consent'") {
            for pair in table.pairs {
                if pair.key.range(of: "^[a-z][a-z0-9_]{0,31}$", options: .regularExpression) == nil {
                    diagnostics.error("consent key '\(pair.key)' must be lower-case letters, digits and _", at: pair.keyMark)
                    continue
                }
                guard let text = table.string(pair.key, required: true, what: "'consent'") else { continue }
                consents.append(Consent(key: pair.key, text: text))
            }
        }

        let web = WebLimits.parse(map["web"], diagnostics: diagnostics)
        guard let title, let goal else { return nil }
        return Manifest(title: title, goal: goal, deadline: deadline, sender: sender, milestones: milestones,
                        quorums: quorums, targets: targets, fields: fields, consents: consents, web: web)
    }
}

/// A `Display Name <address>` or bare address, as used for senders.
enum Mailbox {
    /// Why `text` is not a usable mailbox, or nil.
    static func problem(_ text: String) -> String? {
        if let bad = TextField.forbiddenCharacter(in: text) { return "contains \(bad)" }
        let address: String
        if let open = text.lastIndex(of: "<") {
            guard text.hasSuffix(">") else { return "must look like 'Name <address@example.org>'" }
            address = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        } else {
            address = text
        }
        do {
            _ = try EmailAddress.canonical(address)
            return nil
        } catch {
            return "has an address that \(error)"
        }
    }
}
