import Foundation
import Mustache
import Yams

/// The workspace settings in `muster.yaml` (no secrets: passwords come from the environment).
public struct WorkspaceSettings: Sendable, Equatable {
    public var sender: String?
    public var smtpURL: String?
    public var smtpStartTLS: String?
    public var smtpUsername: String?
    public var smtpCAFile: String?
    /// Seconds to wait for any one reply from the relay (`smtp.timeout`, default 60).
    public var smtpTimeout: Int?
    public var unsubscribeURL: String?

    static let knownKeys: Set<String> = ["sender", "smtp", "unsubscribe_url"]
    static let knownSMTPKeys: Set<String> = ["url", "starttls", "username", "ca_file", "timeout"]

    /// Reads `muster.yaml`, collecting every problem.
    public static func load(_ workspace: Workspace) -> (WorkspaceSettings?, [Diagnostic]) {
        let diagnostics = DiagnosticCollector(file: "muster.yaml")
        guard let root = YAMLFile.load(workspace.settingsURL, diagnostics: diagnostics) else {
            return (diagnostics.hasErrors ? nil : WorkspaceSettings(), diagnostics.diagnostics)
        }
        guard let map = MappingReader(root, diagnostics: diagnostics, what: "muster.yaml") else {
            return (nil, diagnostics.diagnostics)
        }
        map.warnUnknown(knownKeys, in: "muster.yaml")
        var settings = WorkspaceSettings()
        settings.sender = map.string("sender", what: "muster.yaml")
        if let sender = settings.sender, let problem = Mailbox.problem(sender) {
            diagnostics.error("'sender' \(problem)", at: map["sender"]?.mark)
        }
        settings.unsubscribeURL = map.string("unsubscribe_url", what: "muster.yaml")
        if let url = settings.unsubscribeURL, !url.hasPrefix("https://") {
            diagnostics.error("'unsubscribe_url' must start with https:// (RFC 8058 one-click unsubscribe)", at: map["unsubscribe_url"]?.mark)
        }
        if let node = map["smtp"], let smtp = MappingReader(node, diagnostics: diagnostics, what: "'smtp'") {
            if let mark = smtp.mark(of: "password") {
                diagnostics.error("never store the SMTP password in muster.yaml; remove it and set MUSTER_SMTP_PASSWORD in the environment", at: mark)
            }
            smtp.warnUnknown(knownSMTPKeys.union(["password"]), in: "'smtp'")
            settings.smtpURL = smtp.string("url", what: "'smtp'")
            if let url = settings.smtpURL, !(url.hasPrefix("smtp://") || url.hasPrefix("smtps://")) {
                diagnostics.error("'url' must look like smtp://host:587 or smtps://host:465, not '\(url)'", at: smtp["url"]?.mark)
            }
            settings.smtpStartTLS = smtp.string("starttls", what: "'smtp'")
            if let mode = settings.smtpStartTLS, !["required", "optional", "never"].contains(mode) {
                diagnostics.error("'starttls' must be required, optional or never, not '\(mode)'", at: smtp["starttls"]?.mark)
            }
            settings.smtpUsername = smtp.string("username", what: "'smtp'")
            settings.smtpCAFile = smtp.string("ca_file", what: "'smtp'")
            settings.smtpTimeout = smtp.positiveInt("timeout", what: "'smtp'")
        }
        return (diagnostics.hasErrors ? nil : settings, diagnostics.diagnostics)
    }
}

extension WorkspaceSettings {
    /// The relay settings: `muster.yaml`'s `smtp` section (a relative `ca_file` is read
    /// from the workspace) under the environment's MUSTER_SMTP_URL, MUSTER_SMTP_USERNAME
    /// and MUSTER_SMTP_PASSWORD, which win. A missing or bad setting is a usage error.
    public func smtpSettings(workspace: Workspace, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SMTPSettings {
        var caFile = smtpCAFile
        if let file = caFile, !file.hasPrefix("/") { caFile = workspace.root.appendingPathComponent(file).path }
        let config = SMTPConfig(url: smtpURL, starttls: smtpStartTLS.flatMap(STARTTLSPolicy.init(rawValue:)),
                                username: smtpUsername?.isEmpty == true ? nil : smtpUsername, caFile: caFile)
        do {
            var settings = try SMTPSettings.resolve(config: config, environment: environment)
            if let smtpTimeout {
                settings.responseTimeout = smtpTimeout
                settings.connectTimeout = min(settings.connectTimeout, Double(smtpTimeout))
            }
            return settings
        } catch {
            throw MusterError.usage(error.localizedDescription)
        }
    }

    /// Loads `muster.yaml`, throwing every problem at once (exit 65) when it is invalid.
    public static func loadOrThrow(_ workspace: Workspace) throws -> WorkspaceSettings {
        let (settings, diagnostics) = load(workspace)
        guard let settings else { throw MusterError(.badInput, "muster.yaml is invalid", details: diagnostics.map(\.description)) }
        return settings
    }
}

/// `muster check`: every problem in the workspace's settings, manifests and templates.
public enum WorkspaceCheck {
    /// The outcome: all diagnostics (errors and warnings) and what was looked at.
    public struct Result: Sendable {
        public let diagnostics: [Diagnostic]
        public let campaigns: [String]
        public let filesChecked: Int

        public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
        public var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }
    }

    /// Checks the whole workspace, or only `campaign` when given.
    public static func run(_ workspace: Workspace, only campaign: Campaign? = nil) -> Result {
        var diagnostics: [Diagnostic] = []
        var files = 1
        diagnostics += WorkspaceSettings.load(workspace).1

        // Workspace copies of the scaffold templates must parse and render.
        let templates = TemplateSource.campaignTemplatePaths(workspace: workspace).filter { $0.hasSuffix(".mustache") }
        for path in templates where FileManager.default.fileExists(atPath: workspace.templatesURL.appendingPathComponent("campaign/" + path).path) {
            files += 1
            let display = "templates/campaign/" + path
            do {
                let text = try TemplateSource.text(for: "campaign/" + path, workspace: workspace)
                _ = try MustacheTemplate(string: text)
            } catch let error as MustacheTemplate.ParserError {
                diagnostics.append(Diagnostic(file: display, line: error.context.lineNumber, column: error.context.columnNumber, message: "template syntax: \(error.error)"))
            } catch let error as MusterError {
                diagnostics.append(Diagnostic(file: display, line: 1, column: 1, message: error.message))
            } catch {
                diagnostics.append(Diagnostic(file: display, line: 1, column: 1, message: "\(error)"))
            }
        }

        let slugs = campaign.map { [$0.slug] } ?? workspace.campaignSlugs()
        for slug in slugs {
            let campaign = Campaign(workspace: workspace, slug: slug)
            files += 1
            let (manifest, manifestDiagnostics) = Manifest.load(campaign.manifestURL, displayPath: workspace.display(campaign.manifestURL))
            diagnostics += manifestDiagnostics
            files += 1
            diagnostics += checkMarkdown(campaign.petitionURL, display: workspace.display(campaign.petitionURL))
            // Email templates are checked against the manifest's fields: a variable the
            // campaign does not define is an error now, not a blank in 5,000 mails.
            if let manifest {
                for name in MailTemplates.names(in: campaign) {
                    files += 1
                    diagnostics += MailTemplates.check(campaign.emailsURL.appendingPathComponent(name + ".md"), campaign: campaign, manifest: manifest)
                }
            }
        }
        // Folders under campaigns/ that are not valid campaigns are worth a word.
        let names = (try? FileManager.default.contentsOfDirectory(atPath: workspace.campaignsURL.path)) ?? []
        for name in names.sorted() where campaign == nil && !name.hasPrefix(".") && !slugs.contains(name) {
            let display = "campaigns/\(name)"
            if !Slug.isValid(name) {
                diagnostics.append(Diagnostic(file: display, line: 1, column: 1, severity: .warning, message: "folder name is not a valid campaign slug; it is ignored"))
            } else {
                diagnostics.append(Diagnostic(file: display, line: 1, column: 1, severity: .warning, message: "folder has no campaign.yaml; it is ignored"))
            }
        }
        return Result(diagnostics: diagnostics, campaigns: slugs, filesChecked: files)
    }

    /// A Markdown file must exist, be UTF-8 and say something.
    static func checkMarkdown(_ url: URL, display: String) -> [Diagnostic] {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            return [Diagnostic(file: display, line: 1, column: 1, message: "missing: every campaign needs its petition text")]
        }
        switch UTF8Text.decode(data) {
        case .failure(let position):
            return [Diagnostic(file: display, line: position.line, column: position.column, message: String(format: "invalid UTF-8 (byte 0x%02X)", position.byte))]
        case .success(let text):
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                return [Diagnostic(file: display, line: 1, column: 1, message: "the petition text is empty")]
            }
            return []
        }
    }
}
