import Foundation
import Mustache

/// Creating workspaces and campaigns from templates.
public enum Scaffold {
    /// What `muster init` made.
    public struct InitResult: Sendable, Codable {
        public let workspace: String
        public let created: [String]
    }

    /// Makes a workspace in `directory`: `muster.yaml`, `.gitignore`, `campaigns/`
    /// and an editable copy of the default templates in `templates/`.
    public static func initWorkspace(at directory: URL) throws -> InitResult {
        let fm = FileManager.default
        let root = directory.standardizedFileURL
        let settings = root.appendingPathComponent("muster.yaml")
        if fm.fileExists(atPath: settings.path) {
            throw MusterError.failure("\(root.path) is already a muster workspace (muster.yaml exists); nothing was changed")
        }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: root.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw MusterError.usage("\(root.path) is a file, not a folder")
        }
        var created: [String] = []
        do {
            try fm.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try fm.createDirectory(at: root.appendingPathComponent("campaigns"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            created.append("campaigns/")
            for (path, text) in DefaultTemplates.files.sorted(by: { $0.key < $1.key }) where path.hasPrefix("campaign/") {
                let destination = root.appendingPathComponent("templates").appendingPathComponent(path)
                if fm.fileExists(atPath: destination.path) { continue }
                try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try FileWriter.writeAtomically(Data(text.utf8), to: destination, permissions: 0o600)
                created.append("templates/" + path)
            }
            let gitignore = root.appendingPathComponent(".gitignore")
            if !fm.fileExists(atPath: gitignore.path) {
                try FileWriter.writeAtomically(Data(DefaultTemplates.files["workspace/gitignore", default: ""].utf8), to: gitignore, permissions: 0o600)
                created.append(".gitignore")
            }
            // muster.yaml last: a workspace exists only once everything else is in place.
            try FileWriter.writeAtomically(Data(DefaultTemplates.files["workspace/muster.yaml", default: ""].utf8), to: settings, permissions: 0o600)
            created.insert("muster.yaml", at: 0)
        } catch let error as MusterError {
            throw error
        } catch {
            throw MusterError.failure("cannot create the workspace in \(root.path): \(error.localizedDescription)")
        }
        return InitResult(workspace: root.path, created: created)
    }

    /// What `muster new` was asked for.
    public struct NewCampaign: Sendable {
        public var slug: String
        public var title: String?
        public var goal: Int?
        public var deadline: String?
        /// The sign page's and its mail's language (`web: language:`).
        public var language: WebLanguage

        public init(slug: String, title: String? = nil, goal: Int? = nil, deadline: String? = nil, language: WebLanguage = .en) {
            self.slug = slug
            self.title = title
            self.goal = goal
            self.deadline = deadline
            self.language = language
        }
    }

    /// What `muster new` made.
    public struct NewResult: Sendable, Codable {
        public let slug: String
        public let folder: String
        public let files: [String]
    }

    /// Scaffolds `campaigns/<slug>/` from the workspace's templates (or the built-in
    /// defaults). The folder appears whole or not at all.
    public static func newCampaign(_ request: NewCampaign, in workspace: Workspace) throws -> NewResult {
        try Slug.validate(request.slug)
        let title = request.title.map(TextField.clean) ?? Slug.title(from: request.slug)
        if title.isEmpty { throw MusterError.badInput("--title must not be empty") }
        if let bad = TextField.forbiddenCharacter(in: title) { throw MusterError.badInput("--title contains \(bad)") }
        if title.count > 200 { throw MusterError.badInput("--title is \(title.count) characters; keep it under 200") }
        let goal = request.goal ?? 1000
        guard goal > 0 else { throw MusterError.badInput("--goal must be a whole number above 0, not \(goal)") }
        if let deadline = request.deadline, deadline.count != 10 || Timestamp.parse(deadline) == nil {
            throw MusterError.badInput("--deadline must be a date like 2027-03-31, not '\(deadline)'")
        }

        let fm = FileManager.default
        let campaign = Campaign(workspace: workspace, slug: request.slug)
        if fm.fileExists(atPath: campaign.folder.path) {
            throw MusterError.failure("campaigns/\(request.slug) already exists; choose another slug or edit that campaign")
        }
        let context: [String: Any] = [
            "slug": request.slug,
            "title": title,
            "title_yaml": yamlQuoted(title),
            "goal": goal,
            "half_goal": max(1, goal / 2),
            "first_milestone": max(1, goal / 10),
            "deadline": request.deadline ?? false,
            "french": request.language == .fr,
        ].merging(Self.scaffoldTexts[request.language] ?? [:]) { $1 }

        let staging = workspace.campaignsURL.appendingPathComponent(".new-\(request.slug)-\(getpid())", isDirectory: true)
        var files: [String] = []
        do {
            try fm.createDirectory(at: workspace.campaignsURL, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try? fm.removeItem(at: staging)
            try fm.createDirectory(at: staging, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let paths = TemplateSource.campaignTemplatePaths(workspace: workspace)
            for path in paths {
                // `emails/confirm.fr.md` is `emails/confirm.md` of a French campaign.
                var target = path
                if let language = WebLanguage.of(templatePath: path) {
                    guard language == request.language, let infix = path.range(of: ".\(language.rawValue).", options: .backwards) else { continue }
                    target.replaceSubrange(infix, with: ".")
                } else if request.language != .en, paths.contains(request.language.variant(of: path)) {
                    continue
                }
                let source = try TemplateSource.text(for: "campaign/" + path, workspace: workspace)
                var output = source
                if path.hasSuffix(".mustache") {
                    target = String(target.dropLast(".mustache".count))
                    let template: MustacheTemplate
                    do {
                        template = try MustacheTemplate(string: source)
                    } catch let error as MustacheTemplate.ParserError {
                        throw MusterError.badInput("templates/campaign/\(path):\(error.context.lineNumber):\(error.context.columnNumber): error: \(error.error)")
                    }
                    output = template.render(context)
                }
                let destination = staging.appendingPathComponent(target)
                try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try FileWriter.writeAtomically(Data(output.utf8), to: destination, permissions: 0o600)
                files.append(target)
            }
            // The scaffold must itself be a valid campaign.
            let (manifest, diagnostics) = Manifest.load(staging.appendingPathComponent("campaign.yaml"), displayPath: "campaigns/\(request.slug)/campaign.yaml")
            if manifest == nil {
                throw MusterError(.badInput, "the campaign template produced an invalid manifest; check templates/campaign/campaign.yaml.mustache", details: diagnostics.map(\.description))
            }
            try fm.moveItem(at: staging, to: campaign.folder)
        } catch {
            try? fm.removeItem(at: staging)
            if let error = error as? MusterError { throw error }
            throw MusterError.failure("cannot create campaigns/\(request.slug): \(error.localizedDescription)")
        }
        return NewResult(slug: request.slug, folder: workspace.display(campaign.folder), files: files.sorted())
    }

    /// The texts of the scaffolded manifest a signer reads (a field's label, a consent,
    /// milestones), by language.
    static let scaffoldTexts: [WebLanguage: [String: String]] = [
        .en: ["region_label": "Your town or region", "updates_text": "Keep me informed about this campaign",
              "halfway_label": "Halfway there", "goal_label": "Goal reached"],
        .fr: ["region_label": "Votre ville ou région", "updates_text": "Me tenir informé·e de cette campagne",
              "halfway_label": "À mi-chemin", "goal_label": "Objectif atteint"],
    ]

    /// A YAML double-quoted scalar (JSON strings are valid YAML).
    static func yamlQuoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}

/// Where templates come from: the workspace's `templates/` first, then the built-in copy.
public enum TemplateSource {
    /// The text of the template at `path` (relative to `templates/`).
    public static func text(for path: String, workspace: Workspace) throws -> String {
        let local = workspace.templatesURL.appendingPathComponent(path)
        if FileManager.default.fileExists(atPath: local.path) {
            let data = try Data(contentsOf: local)
            guard let text = String(validating: [UInt8](data), as: UTF8.self) else {
                throw MusterError.badInput("templates/\(path) is not valid UTF-8")
            }
            return text
        }
        guard let builtIn = DefaultTemplates.files[path] else {
            throw MusterError.failure("no template templates/\(path)")
        }
        return builtIn
    }

    /// Paths (relative to `templates/campaign/`) that make up a new campaign: the
    /// built-in set plus any file the workspace adds.
    public static func campaignTemplatePaths(workspace: Workspace) -> [String] {
        var paths = Set(DefaultTemplates.files.keys.filter { $0.hasPrefix("campaign/") }.map { String($0.dropFirst("campaign/".count)) })
        let local = workspace.templatesURL.appendingPathComponent("campaign")
        if let enumerator = FileManager.default.enumerator(at: local, includingPropertiesForKeys: [.isRegularFileKey]) {
            for case let url as URL in enumerator where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                let relative = url.standardizedFileURL.path.dropFirst(local.standardizedFileURL.path.count + 1)
                if !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                    paths.insert(String(relative))
                }
            }
        }
        return paths.sorted()
    }
}
