import Foundation
import Mustache
import Yams

/// Who a template is sent to.
public enum EmailAudience: String, Sendable, CaseIterable {
    /// Every signer who is not unsubscribed or forgotten.
    case signers
    /// Only signers who gave the consent named by the template (or the campaign's only consent).
    case consenting
    /// The campaign's decision makers (`targets:` in the manifest).
    case targets
}

/// An outreach email, `emails/<name>.md`: YAML front matter (`subject`, `audience`,
/// optional `reply_to`, `consent`, `attach_signatures` and `receipt`) and a Mustache body
/// written in Markdown.
public struct EmailTemplate: Sendable {
    /// The template's name (file name without `.md`), used in the outbox and Message-ID
    /// (`muster serve` renames its copy per mail, so each has a Message-ID of its own).
    public internal(set) var name: String
    /// The path shown in diagnostics.
    public let file: String
    /// The subject's Mustache source.
    public let subject: String
    /// Who receives it.
    public let audience: EmailAudience
    /// `Reply-To`, when the template sets one.
    public let replyTo: MailAddress?
    /// For `consenting`: the consent key required (e.g. `updates`), when the template names one.
    public let consent: String?
    /// For `targets`: attach the signers as a CSV file (`attach_signatures`), when set.
    public let attachSignatures: SignatureSheetRequest?
    /// For signers: attach each one's receipt (`receipt: attach`, docs/transparency.md), when set.
    public let receipt: ReceiptRequest?
    /// The body's Mustache + Markdown source.
    public let body: String
    /// Unknown front-matter keys and similar non-fatal findings.
    public let warnings: [TemplateDiagnostic]

    let subjectTemplate: MustacheTemplate
    let bodyTemplate: MustacheTemplate
    /// Placeholder-token prefix, chosen so it does not occur in the template's text.
    let slotPrefix: String
    /// Rendered skeletons shared by every copy of this template.
    let skeletons = SkeletonCache()
    /// Where the subject text starts in the file (1-based line and column).
    let subjectOrigin: (line: Int, column: Int)
    /// The file line on which the body starts (1-based).
    let bodyFirstLine: Int

    /// Front-matter keys muster understands.
    public static let frontMatterKeys: Set<String> = ["subject", "audience", "reply_to", "consent", "attach_signatures", "receipt"]

    /// Parses a template; throws every problem found (not only the first).
    /// - Parameters:
    ///   - source: the file's text.
    ///   - file: the path to show in diagnostics.
    ///   - name: the template name; defaults to the file name without `.md`.
    public init(source: String, file: String, name: String? = nil) throws(TemplateErrors) {
        self.file = file
        self.name = name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        var diagnostics: [TemplateDiagnostic] = []
        func report(_ line: Int, _ column: Int, _ message: String, _ severity: TemplateDiagnostic.Severity = .error) {
            diagnostics.append(TemplateDiagnostic(file: file, line: line, column: column, message: message, severity: severity))
        }

        // Split front matter: the first line is `---`, the front matter ends at the next `---` or `...` line.
        var text = source
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        // Split on scalars: in Swift "\r\n" is one Character, so splitting on "\n" misses CRLF files.
        let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            String(String.UnicodeScalarView(line.last == "\r" ? line.dropLast() : line))
        }
        var yamlText = ""
        var bodyStart = 0
        if lines.first == "---", let close = lines.dropFirst().firstIndex(where: { $0 == "---" || $0 == "..." }) {
            yamlText = lines[1..<close].joined(separator: "\n")
            bodyStart = close + 1
        } else {
            report(1, 1, "missing front matter: the file must start with a line '---', the subject and audience, and another '---'")
        }
        self.bodyFirstLine = bodyStart + 1
        self.body = bodyStart < lines.count ? lines[bodyStart...].joined(separator: "\n") : ""

        // Front matter.
        var subject: String?
        var subjectOrigin = (line: 1, column: 1)
        var audience: EmailAudience?
        var replyTo: MailAddress?
        var consent: String?
        var attachSignatures: SignatureSheetRequest?
        var receipt: ReceiptRequest?
        var yamlFailed = false
        if bodyStart > 0 {
            do {
                let node = try Yams.compose(yaml: yamlText)
                if let mapping = node?.mapping {
                    for (key, value) in mapping {
                        let keyName = key.string ?? ""
                        let at = (line: (value.mark?.line ?? 0) + 1, column: value.mark?.column ?? 1)
                        let keyAt = (line: (key.mark?.line ?? 0) + 1, column: key.mark?.column ?? 1)
                        switch keyName {
                        case "subject":
                            if let scalar = value.scalar {
                                subject = scalar.string
                                let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
                                subjectOrigin = (at.line, at.column + (quoted ? 1 : 0))
                                if scalar.string.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) { report(at.line, at.column, "subject must be a single line") }
                            } else {
                                report(at.line, at.column, "subject must be a string")
                            }
                        case "audience":
                            if let raw = value.string, let parsed = EmailAudience(rawValue: raw) {
                                audience = parsed
                            } else {
                                report(at.line, at.column, "audience must be signers, consenting or targets, not '\(value.string ?? "")'")
                            }
                        case "reply_to":
                            if let raw = value.string {
                                do { replyTo = try MailAddress(parsing: raw, header: "Reply-To") } catch {
                                    report(at.line, at.column, "reply_to: \(error.localizedDescription)")
                                }
                            } else {
                                report(at.line, at.column, "reply_to must be an address")
                            }
                        case "consent":
                            if let raw = value.string, !raw.isEmpty { consent = raw } else {
                                report(at.line, at.column, "consent must name a consent key from campaign.yaml")
                            }
                        case "attach_signatures":
                            let usage = "attach_signatures must be 'csv' (name and the manifest's non-personal fields) or a list of columns, e.g. [name, region]"
                            if let scalar = value.scalar {
                                if scalar.string == "csv" {
                                    attachSignatures = SignatureSheetRequest(columns: nil, line: at.line, column: at.column)
                                } else {
                                    report(at.line, at.column, "\(usage), not '\(MessageError.printable(scalar.string).dropFirst().dropLast())'")
                                }
                            } else if let sequence = value.sequence, !sequence.isEmpty {
                                var columns: [SignatureSheetRequest.Column] = []
                                var valid = true
                                for item in sequence {
                                    let itemAt = (line: (item.mark?.line ?? 0) + 1, column: item.mark?.column ?? 1)
                                    guard let name = item.scalar?.string, !name.isEmpty else {
                                        report(itemAt.line, itemAt.column, "each column of attach_signatures must be a field name")
                                        valid = false
                                        continue
                                    }
                                    if columns.contains(where: { $0.name == name }) {
                                        report(itemAt.line, itemAt.column, "attach_signatures lists '\(name)' twice")
                                        valid = false
                                    }
                                    columns.append(.init(name: name, line: itemAt.line, column: itemAt.column))
                                }
                                if valid { attachSignatures = SignatureSheetRequest(columns: columns, line: at.line, column: at.column) }
                            } else {
                                report(at.line, at.column, usage)
                            }
                        case "receipt":
                            if let raw = value.scalar?.string, let mode = ReceiptRequest.Mode(rawValue: raw) {
                                receipt = ReceiptRequest(mode: mode, line: at.line, column: at.column)
                            } else {
                                let shown = value.scalar.map { ", not '\(MessageError.printable($0.string).dropFirst().dropLast())'" } ?? ""
                                report(at.line, at.column, "receipt must be 'attach' (each signer's receipt as the file receipt.json)\(shown)")
                            }
                        default:
                            report(keyAt.line, keyAt.column, "unknown key '\(keyName)' (expected subject, audience, reply_to, consent, attach_signatures, receipt)", .warning)
                        }
                    }
                } else if node != nil {
                    report(2, 1, "front matter must be a mapping of keys to values")
                }
            } catch let error as YamlError {
                let (line, column, problem) = Self.locate(error)
                report(line + 1, column, "invalid YAML in front matter: \(problem)")
                yamlFailed = true
            } catch {
                report(2, 1, "invalid YAML in front matter: \(error)")
                yamlFailed = true
            }
            if !yamlFailed, subject == nil, !diagnostics.contains(where: { $0.message.hasPrefix("subject") }) {
                report(1, 1, "missing required key 'subject'")
            }
            if !yamlFailed, audience == nil, !diagnostics.contains(where: { $0.message.hasPrefix("audience") }) {
                report(1, 1, "missing required key 'audience' (signers, consenting or targets)")
            }
        }
        self.subject = subject ?? ""
        self.subjectOrigin = subjectOrigin
        self.audience = audience ?? .signers
        self.replyTo = replyTo
        self.consent = consent
        self.attachSignatures = attachSignatures
        self.receipt = receipt
        if let receipt, audience == .targets {
            report(receipt.line, receipt.column, "receipt: attach is for signers (audience signers or consenting): decision makers have no receipt")
        }

        // Mustache syntax, and tags muster does not support.
        var subjectTemplate: MustacheTemplate?
        var bodyTemplate: MustacheTemplate?
        do { subjectTemplate = try MustacheTemplate(string: self.subject) } catch {
            let (l, c, m) = Self.locate(mustache: error)
            report(subjectOrigin.line + l - 1, (l == 1 ? subjectOrigin.column - 1 : 0) + c, "subject: \(m)")
        }
        do { bodyTemplate = try MustacheTemplate(string: self.body) } catch {
            if let open = Self.unclosedSection(in: self.body) {
                report(bodyFirstLine + open.line, open.column + 1, "section '\(open.name)' is never closed")
            } else {
                let (l, c, m) = Self.locate(mustache: error)
                report(bodyFirstLine + l - 1, c, m)
            }
        }
        for (tag, line, column) in Self.positionedTags(subject: self.subject, subjectOrigin: subjectOrigin,
                                                       body: self.body, bodyFirstLine: bodyFirstLine) {
            switch tag.kind {
            case .partial: report(line, column, "partials ({{> \(tag.name)}}) are not supported in email templates")
            case .delimiter: report(line, column, "set-delimiter tags ({{= =}}) are not supported in email templates")
            case .block: report(line, column, "template inheritance blocks are not supported in email templates")
            default: break
            }
        }

        let errors = diagnostics.filter { $0.severity == .error }
        guard errors.isEmpty, let subjectTemplate, let bodyTemplate else {
            throw TemplateErrors(diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        self.subjectTemplate = subjectTemplate
        self.bodyTemplate = bodyTemplate
        self.slotPrefix = SlotTable.makePrefix(avoiding: source)
        self.warnings = diagnostics
    }

    /// Reads and parses `emails/<name>.md`.
    /// - Parameter displayPath: the path to show in diagnostics (defaults to the file's path).
    public init(contentsOf url: URL, displayPath: String? = nil) throws(TemplateErrors) {
        let shown = displayPath ?? url.path
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TemplateErrors([TemplateDiagnostic(file: shown, line: 1, column: 1, message: "cannot read the file (\(error.localizedDescription))")])
        }
        switch UTF8Text.decode(data) {
        case .success(let source):
            try self.init(source: source, file: shown)
        case .failure(let position):
            throw TemplateErrors([TemplateDiagnostic(file: shown, line: position.line, column: position.column,
                                                     message: "invalid UTF-8 (byte 0x\(String(format: "%02X", position.byte))); save the file as UTF-8")])
        }
    }

    /// The variables every template may use: the recipient's `name`, `first_name`,
    /// `email` and extra `fields`, `campaign.*`, `unsubscribe_url` and `unsubscribe_mailto`.
    /// For `targets` templates pass no fields: decision makers have only a name and email.
    /// With `receipt` (`receipt: attach`), also `receipt_checkpoint` and `receipt_entry`.
    public static func knownVariables(fields: [String] = [], receipt: Bool = false) -> Set<String> {
        Set(["name", "first_name", "email", "unsubscribe_url", "unsubscribe_mailto"] + fields
            + CampaignMailInfo.variableNames.map { "campaign.\($0)" }
            + (receipt ? ReceiptRequest.variableNames : []))
    }

    /// Every variable (or section) used by the subject or body that is not in `known`,
    /// as errors with line and column, so `muster check` fails instead of mailing blanks.
    /// Names inside a section also resolve against that section (`{{#campaign}}{{title}}`).
    public func check(knownVariables known: Set<String>) -> [TemplateDiagnostic] {
        var prefixes = Set<String>()
        for name in known {
            var parts = name.split(separator: ".").map(String.init)
            while parts.count > 1 { parts.removeLast(); prefixes.insert(parts.joined(separator: ".")) }
        }
        // Sections may name a group (`{{#campaign}}`); variables must name a value.
        func resolves(_ name: String, in sections: [String], asSection: Bool) -> Bool {
            if name == "." { return true }
            for scope in sections.reversed() + [""] {
                let full = scope.isEmpty ? name : "\(scope).\(name)"
                if known.contains(full) || (asSection && prefixes.contains(full)) { return true }
            }
            return false
        }
        var diagnostics: [TemplateDiagnostic] = []
        var sections: [String] = []
        var inSubject = true
        for (tag, line, column) in Self.positionedTags(subject: subject, subjectOrigin: subjectOrigin, body: body, bodyFirstLine: bodyFirstLine) {
            if inSubject, line >= bodyFirstLine { inSubject = false; sections = [] }
            switch tag.kind {
            case .variable, .unescaped, .section, .inverted:
                let isSection = tag.kind == .section || tag.kind == .inverted
                if !resolves(tag.name, in: sections, asSection: isSection) {
                    let what = isSection ? "section" : "variable"
                    diagnostics.append(TemplateDiagnostic(file: file, line: line, column: column,
                                                          message: "unknown \(what) '\(tag.name)'\(inSubject ? " in subject" : "")"))
                }
                if tag.kind == .section || tag.kind == .inverted {
                    // Inside `{{#a.b}}`, names resolve against `a.b` first.
                    let scope = sections.reversed().first { known.contains("\($0).\(tag.name)") || prefixes.contains("\($0).\(tag.name)") }
                    sections.append(scope.map { "\($0).\(tag.name)" } ?? tag.name)
                }
            case .close:
                if !sections.isEmpty { sections.removeLast() }
            default:
                break
            }
        }
        return diagnostics
    }

    /// Subject then body tags, positioned in the file.
    static func positionedTags(subject: String, subjectOrigin: (line: Int, column: Int), body: String,
                               bodyFirstLine: Int) -> [(MustacheTag, line: Int, column: Int)] {
        let subjectTags = MustacheTag.scan(subject).map { tag in
            (tag, line: subjectOrigin.line + tag.line, column: (tag.line == 0 ? subjectOrigin.column : 1) + tag.column)
        }
        let bodyTags = MustacheTag.scan(body).map { tag in (tag, line: bodyFirstLine + tag.line, column: tag.column + 1) }
        return subjectTags + bodyTags
    }

    /// The first section opened and never closed, if any (to point at `{{#x}}`, not at the end).
    static func unclosedSection(in text: String) -> MustacheTag? {
        var open: [MustacheTag] = []
        for tag in MustacheTag.scan(text) {
            switch tag.kind {
            case .section, .inverted: open.append(tag)
            case .close:
                guard let last = open.last, last.name == tag.name else { return nil }
                open.removeLast()
            default: break
            }
        }
        return open.first
    }

    static func locate(_ error: YamlError) -> (line: Int, column: Int, problem: String) {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return (mark.line, mark.column, problem)
        case .duplicatedKeysInMapping(let duplicates, let context):
            return (context.mark.line, context.mark.column, "duplicated keys \(duplicates.joined(separator: ", "))")
        default:
            return (1, 1, "\(error)")
        }
    }

    static func locate(mustache error: Error) -> (line: Int, column: Int, message: String) {
        guard let parserError = error as? MustacheTemplate.ParserError else { return (1, 1, "invalid Mustache: \(error)") }
        let message: String
        switch parserError.error as? MustacheTemplate.Error {
        case .sectionCloseNameIncorrect?: message = "section closed with a different name than it was opened with"
        case .unfinishedName?: message = "unfinished Mustache tag"
        case .expectedSectionEnd?: message = "section is never closed"
        case .invalidSetDelimiter?: message = "invalid set-delimiter tag"
        case .invalidConfigVariableSyntax?, .unrecognisedConfigVariable?: message = "invalid Mustache pragma"
        default: message = "invalid Mustache: \(parserError.error)"
        }
        return (parserError.context.lineNumber, parserError.context.columnNumber, message)
    }
}

extension EmailTemplate {
    /// Loads every `*.md` in a campaign's `emails/` folder, sorted by name, collecting
    /// every diagnostic (errors and warnings) instead of stopping at the first file.
    /// - Parameter displayPrefix: how the folder is shown in diagnostics (e.g. `campaigns/x/emails`).
    public static func loadAll(in directory: URL, displayPrefix: String) -> (templates: [EmailTemplate], diagnostics: [TemplateDiagnostic]) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var templates: [EmailTemplate] = []
        var diagnostics: [TemplateDiagnostic] = []
        for name in names.filter({ $0.hasSuffix(".md") }).sorted() {
            do {
                let template = try EmailTemplate(contentsOf: directory.appendingPathComponent(name),
                                                 displayPath: displayPrefix.isEmpty ? name : "\(displayPrefix)/\(name)")
                templates.append(template)
                diagnostics += template.warnings
            } catch {
                diagnostics += error.diagnostics
            }
        }
        return (templates, diagnostics)
    }
}

extension MailRecipient {
    /// A stand-in signer for `muster check` and previews: every field set to a visible sample value.
    public static func sample(fields: [String] = []) -> MailRecipient {
        var values: [String: String] = [:]
        for field in fields { values[field] = "sample \(field)" }
        return MailRecipient(name: "Ada Lovelace", email: "ada@example.org", fields: values,
                             unsubscribeURL: nil)
    }
}

/// `receipt:` in a template's front matter: what to do with each signer's receipt.
public struct ReceiptRequest: Sendable, Equatable {
    public enum Mode: String, Sendable {
        /// The receipt JSON (as `muster receipt` writes it) as the attachment `receipt.json`.
        case attach
    }

    public let mode: Mode
    /// Where `receipt:` is set (1-based), for diagnostics.
    public let line: Int
    public let column: Int

    /// The file name of the attachment.
    public static let filename = "receipt.json"
    /// The variables a template with a receipt may use: the checkpoint's short form
    /// (`412 entries, root 8y1SLNr2MoRyxzSR`) and the signer's entry number.
    public static let variableNames = ["receipt_checkpoint", "receipt_entry"]
}
