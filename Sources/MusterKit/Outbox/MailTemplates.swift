import Foundation

/// Finding and checking a campaign's email templates.
public enum MailTemplates {
    /// Templates `muster serve` sends itself, one signer at a time, with the variables
    /// only it has: `confirm` (a confirmation link, `{{confirm_url}}`) and
    /// `already-signed` (`{{petition_url}}`). `mail send` refuses to blast them.
    public static let serverTemplates: [String: [String]] = ["confirm": ["confirm_url"], "already-signed": ["petition_url"]]

    /// The names (file names without `.md`) of the campaign's templates.
    public static func names(in campaign: Campaign) -> [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: campaign.emailsURL.path)) ?? []
        return files.filter { $0.hasSuffix(".md") && !$0.hasPrefix(".") }.map { String($0.dropLast(3)) }.sorted()
    }

    /// Loads `emails/<name>.md` and checks its variables against the manifest.
    public static func load(_ name: String, campaign: Campaign, manifest: Manifest) throws -> EmailTemplate {
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", options: .regularExpression) != nil, !name.contains("..") else {
            throw MusterError.usage("'\(name)' is not a template name: use the file name in emails/ without .md")
        }
        let url = campaign.emailsURL.appendingPathComponent(name + ".md")
        guard FileManager.default.fileExists(atPath: url.path) else {
            let known = names(in: campaign)
            throw MusterError.usage("no template '\(name)' in \(campaign.workspace.display(campaign.emailsURL))/ (templates: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
        }
        let diagnostics = check(url, campaign: campaign, manifest: manifest)
        let errors = diagnostics.filter { $0.severity == .error }
        guard errors.isEmpty else {
            throw MusterError(.badInput, "\(campaign.workspace.display(url)) has \(errors.count) error\(errors.count == 1 ? "" : "s")", details: diagnostics.map(\.description))
        }
        do {
            return try EmailTemplate(contentsOf: url, displayPath: campaign.workspace.display(url))
        } catch {
            throw MusterError(.badInput, "\(campaign.workspace.display(url)) is invalid", details: error.diagnostics.map(\.description))
        }
    }

    /// Every problem in one template, as workspace diagnostics.
    public static func check(_ url: URL, campaign: Campaign, manifest: Manifest) -> [Diagnostic] {
        let display = campaign.workspace.display(url)
        do {
            let template = try EmailTemplate(contentsOf: url, displayPath: display)
            let name = url.deletingPathExtension().lastPathComponent
            let known = EmailTemplate.knownVariables(fields: manifest.fields.map(\.name) + (serverTemplates[name] ?? []), receipt: template.receipt != nil)
            var found = (template.warnings + template.check(knownVariables: known)).map { diagnostic in
                var diagnostic = diagnostic
                if template.receipt == nil, ReceiptRequest.variableNames.contains(where: { diagnostic.message.hasPrefix("unknown variable '\($0)'") }) {
                    diagnostic.message += " (it needs 'receipt: attach' in the front matter)"
                }
                return diagnostic.asDiagnostic
            }
            if template.audience == .consenting, template.consent == nil, manifest.consents.count != 1 {
                found.append(Diagnostic(file: display, line: 1, column: 1,
                                        message: "audience 'consenting' needs 'consent: KEY' when the manifest declares \(manifest.consents.count) consents"))
            }
            if let consent = template.consent, !manifest.consents.contains(where: { $0.key == consent }) {
                found.append(Diagnostic(file: display, line: 1, column: 1, message: "consent '\(consent)' is not declared in the manifest"))
            }
            if let sheet = template.attachSignatures {
                found += SignatureSheet.check(sheet, audience: template.audience, file: display, manifest: manifest)
            }
            return found
        } catch {
            return error.diagnostics.map(\.asDiagnostic)
        }
    }
}

extension TemplateDiagnostic {
    /// The same finding as a workspace diagnostic, for `muster check`.
    var asDiagnostic: Diagnostic {
        Diagnostic(file: file, line: line, column: column, severity: severity == .error ? .error : .warning, message: message)
    }
}
