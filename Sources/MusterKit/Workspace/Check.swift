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
    /// VERP: the bounce address each blast message's envelope sender is made from
    /// (`smtp.verp`, e.g. `bounces@example.org` → `bounces+<token>@example.org`).
    public var smtpVERP: String?
    public var unsubscribeURL: String?
    /// Who counts as one person (`dedupe:`, read by `MailboxRules.parse`).
    public var dedupe: MailboxRules = .standard
    /// How `muster serve` listens and names itself (`serve:`, read by `ServeSettings.parse`).
    public var serve = ServeSettings()
    /// `dkim:`: muster signs its mail itself (DKIM.swift); the key file is read when mail is sent.
    public var dkimDomain: String?
    public var dkimSelector: String?
    public var dkimKeyFile: String?
    /// `inbox:`: the mailbox `muster inbox` reads (InboxSettings.swift); nil without one.
    public var inbox: InboxSettings?

    static let knownKeys: Set<String> = ["sender", "smtp", "unsubscribe_url", "dedupe", "serve", "dkim", "inbox"]
    static let knownDKIMKeys: Set<String> = ["domain", "selector", "key"]
    static let knownSMTPKeys: Set<String> = ["url", "starttls", "username", "ca_file", "timeout", "verp"]

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
            settings.smtpVERP = smtp.string("verp", what: "'smtp'")
            if let verp = settings.smtpVERP, let problem = VERP.problem(verp) {
                diagnostics.error("'verp' \(problem)", at: smtp["verp"]?.mark)
            }
        }
        if let rules = MailboxRules.parse(map["dedupe"], diagnostics: diagnostics) { settings.dedupe = rules }
        if let serve = ServeSettings.parse(map["serve"], diagnostics: diagnostics) { settings.serve = serve }
        if map["inbox"] != nil { settings.inbox = InboxSettings.parse(map["inbox"], diagnostics: diagnostics) }
        if let node = map["dkim"], let dkim = MappingReader(node, diagnostics: diagnostics, what: "'dkim'") {
            dkim.warnUnknown(knownDKIMKeys, in: "'dkim'")
            settings.dkimSelector = dkim.string("selector", required: true, what: "'dkim'")
            settings.dkimKeyFile = dkim.string("key", required: true, what: "'dkim'")
            settings.dkimDomain = dkim.string("domain", what: "'dkim'")
            if let domain = settings.dkimDomain, !DKIMSigner.isDomain(domain) {
                diagnostics.error("'domain' must be a domain name in ASCII, as in example.org, not '\(domain)'", at: dkim["domain"]?.mark)
            }
            if let selector = settings.dkimSelector, !DKIMSigner.isSelector(selector) {
                diagnostics.error("'selector' must be letters, digits, hyphens and dots, as in muster2026, not '\(selector)'", at: dkim["selector"]?.mark)
            }
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

    /// The DKIM signer of `dkim:`, nil without that section. The key file must be outside
    /// the workspace (which goes into git) and readable by its owner only; `domain`
    /// defaults to the sender's. Any problem is a usage error naming the file.
    public func dkimSigner(workspace: Workspace, senderDomain: String) throws -> DKIMSigner? {
        guard let selector = dkimSelector, let file = dkimKeyFile else { return nil }
        let expanded = file.hasPrefix("~/") ? FileManager.default.homeDirectoryForCurrentUser.path + file.dropFirst(1) : file
        let url = expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded) : workspace.root.appendingPathComponent(expanded)
        let real = url.resolvingSymlinksInPath().standardizedFileURL.path
        let root = workspace.root.resolvingSymlinksInPath().standardizedFileURL.path
        if real == root || real.hasPrefix(root.hasSuffix("/") ? root : root + "/") {
            throw MusterError.usage("the DKIM key \(file) is inside the workspace, which goes into git: move it out (for example to ~/.config/muster/dkim.pem, mode 0600) and set dkim.key in muster.yaml to that path")
        }
        var info = stat()
        guard stat(real, &info) == 0 else {
            throw MusterError.usage("the DKIM key \(file) cannot be read: \(String(cString: strerror(errno))); set dkim.key in muster.yaml to the private key's path")
        }
        if info.st_mode & 0o077 != 0 {
            throw MusterError.usage("the DKIM key \(file) can be read by others (mode \(String(info.st_mode & 0o777, radix: 8))): run chmod 600 \(file)")
        }
        guard let data = FileManager.default.contents(atPath: real), let pem = String(data: data, encoding: .utf8) else {
            throw MusterError.usage("the DKIM key \(file) cannot be read")
        }
        do {
            return try DKIMSigner(domain: dkimDomain ?? senderDomain, selector: selector, pem: pem, source: file)
        } catch {
            throw MusterError.usage(error.description)
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
        let (settings, settingsDiagnostics) = WorkspaceSettings.load(workspace)
        diagnostics += settingsDiagnostics
        var placeholderWarned = false

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
                let names = MailTemplates.names(in: campaign)
                for name in names {
                    files += 1
                    let url = campaign.emailsURL.appendingPathComponent(name + ".md")
                    diagnostics += MailTemplates.check(url, campaign: campaign, manifest: manifest)
                    diagnostics += MailStandards.check(url, display: workspace.display(url), manifest: manifest, settings: settings)
                }
                // A campaign that mails needs a real sender.
                if !names.isEmpty, let finding = MailStandards.placeholderSender(manifest: manifest, manifestURL: campaign.manifestURL,
                                                                                 manifestDisplay: workspace.display(campaign.manifestURL),
                                                                                 settings: settings, workspace: workspace) {
                    // muster.yaml's sender is shared: one warning, not one per campaign.
                    if finding.file != "muster.yaml" || !placeholderWarned { diagnostics.append(finding) }
                    if finding.file == "muster.yaml" { placeholderWarned = true }
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

/// `muster check`'s mail standards: what would embarrass the organiser in thousands of
/// inboxes although every template renders.
enum MailStandards {
    /// Domains reserved for examples (RFC 2606), the scaffold's placeholder among them.
    static let exampleDomains: Set<String> = ["example.org", "example.com", "example.net"]

    /// Errors in the email template at `url`: `{{unsubscribe_url}}` outside an
    /// `{{#unsubscribe_url}}` section when muster.yaml sets no `unsubscribe_url` (it would
    /// render as an empty link), and a `targets` template when the manifest has no targets.
    static func check(_ url: URL, display: String, manifest: Manifest, settings: WorkspaceSettings?) -> [Diagnostic] {
        guard let template = try? EmailTemplate(contentsOf: url, displayPath: display) else { return [] }
        var found: [Diagnostic] = []
        // `serve.base_url` (https) gives every message a link of the sign page (`/u/<token>`).
        if settings != nil, settings?.unsubscribeURL == nil, settings?.serve.baseURL?.hasPrefix("https://") != true {
            var open: [(name: String, inverted: Bool)] = []
            for (tag, line, column) in EmailTemplate.positionedTags(subject: template.subject, subjectOrigin: template.subjectOrigin,
                                                                     body: template.body, bodyFirstLine: template.bodyFirstLine) {
                switch tag.kind {
                case .section, .inverted: open.append((tag.name, tag.kind == .inverted))
                case .close: if !open.isEmpty { open.removeLast() }
                case .variable, .unescaped:
                    let guarded = open.contains { $0.name == "unsubscribe_url" && !$0.inverted }
                    if tag.name == "unsubscribe_url" && !guarded {
                        found.append(Diagnostic(file: display, line: line, column: column, message:
                            "{{unsubscribe_url}} is used but muster.yaml sets no unsubscribe_url, so every message would carry an empty link; "
                            + "add unsubscribe_url: https://… to muster.yaml, use {{unsubscribe_mailto}}, or wrap it in {{#unsubscribe_url}}…{{/unsubscribe_url}}"))
                    }
                default: break
                }
            }
        }
        if template.audience == .targets && manifest.targets.isEmpty {
            found.append(Diagnostic(file: display, line: audienceLine(url) ?? 1, column: 1, message:
                "audience 'targets' but the manifest lists no targets, so it would be sent to nobody; add them under 'targets:' in campaign.yaml (name and email)"))
        }
        return found
    }

    /// A warning when the sender this campaign's mail would go out from is still a
    /// placeholder (an address at example.org, .com or .net, like the scaffold's).
    static func placeholderSender(manifest: Manifest, manifestURL: URL, manifestDisplay: String,
                                  settings: WorkspaceSettings?, workspace: Workspace) -> Diagnostic? {
        let (sender, file, display): (String?, URL, String) = manifest.sender != nil
            ? (manifest.sender, manifestURL, manifestDisplay)
            : (settings?.sender, workspace.settingsURL, "muster.yaml")
        guard let sender, isPlaceholder(sender) else { return nil }
        return Diagnostic(file: display, line: keyLine("sender", in: file) ?? 1, column: 1, severity: .warning, message:
            "the sender '\(sender)' is a placeholder (an example.org, .com or .net address): mail from it would bounce or land in spam; "
            + "set 'sender' to your collective's real address")
    }

    static func isPlaceholder(_ sender: String) -> Bool {
        var address = sender
        if let open = sender.lastIndex(of: "<"), let close = sender.lastIndex(of: ">"), open < close {
            address = String(sender[sender.index(after: open)..<close])
        }
        guard let at = address.lastIndex(of: "@") else { return false }
        return exampleDomains.contains(address[address.index(after: at)...].trimmingCharacters(in: .whitespaces).lowercased())
    }

    /// The 1-based line of the first top-level `key:` in the YAML file at `url`.
    static func keyLine(_ key: String, in url: URL) -> Int? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        return lines.firstIndex { $0.hasPrefix(key + ":") || $0.hasPrefix("\"\(key)\":") }.map { $0 + 1 }
    }

    /// The line of `audience:` in an email template's front matter.
    static func audienceLine(_ url: URL) -> Int? {
        keyLine("audience", in: url)
    }
}
