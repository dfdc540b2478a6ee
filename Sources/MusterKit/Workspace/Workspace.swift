import Foundation

/// A muster workspace: a folder with `muster.yaml` at its root.
public struct Workspace: Sendable {
    /// The workspace folder.
    public let root: URL

    public var settingsURL: URL { root.appendingPathComponent("muster.yaml") }
    public var campaignsURL: URL { root.appendingPathComponent("campaigns", isDirectory: true) }
    public var templatesURL: URL { root.appendingPathComponent("templates", isDirectory: true) }

    public init(root: URL) { self.root = root.standardizedFileURL }

    /// Finds the workspace like git finds `.git`: `explicit` when given, otherwise the
    /// nearest folder at or above `start` that holds `muster.yaml`.
    public static func locate(explicit: String?, start: URL) throws -> Workspace {
        if let explicit {
            let url = URL(fileURLWithPath: explicit, relativeTo: start).standardizedFileURL
            guard FileManager.default.fileExists(atPath: url.appendingPathComponent("muster.yaml").path) else {
                throw MusterError.usage("\(explicit) is not a muster workspace (no muster.yaml); create one with `muster init \(explicit)`")
            }
            return Workspace(root: url)
        }
        var folder = start.standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("muster.yaml").path) {
                return Workspace(root: folder)
            }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { break }
            folder = parent
        }
        throw MusterError.usage("not inside a muster workspace (no muster.yaml here or above); run `muster init` or pass --workspace DIR")
    }

    /// Who counts as one person here: the provider table plus `muster.yaml`'s `dedupe:`
    /// section. A bad section throws every problem at once (exit 65), each naming
    /// muster.yaml, its line, the key and the value.
    public func mailboxRules() throws -> MailboxRules {
        try WorkspaceSettings.loadOrThrow(self).dedupe
    }

    /// The slugs of the campaigns in this workspace, sorted.
    public func campaignSlugs() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: campaignsURL.path)) ?? []
        return names.filter { name in
            Slug.isValid(name) && FileManager.default.fileExists(atPath: campaignsURL.appendingPathComponent(name).appendingPathComponent("campaign.yaml").path)
        }.sorted()
    }

    /// The campaign named by `slug`, or the one holding `workingDirectory`, or the only one.
    public func resolveCampaign(_ slug: String?, workingDirectory: URL) throws -> Campaign {
        if let slug {
            try Slug.validate(slug)
            let campaign = Campaign(workspace: self, slug: slug)
            guard FileManager.default.fileExists(atPath: campaign.manifestURL.path) else {
                let known = campaignSlugs()
                let hint = known.isEmpty ? "create it with `muster new \(slug)`" : "campaigns here: \(known.joined(separator: ", "))"
                throw MusterError.usage("no campaign '\(slug)' in \(root.path) (\(hint))")
            }
            return campaign
        }
        let cwd = workingDirectory.standardizedFileURL.path
        let prefix = campaignsURL.standardizedFileURL.path + "/"
        if cwd.hasPrefix(prefix) {
            let name = String(cwd.dropFirst(prefix.count).split(separator: "/").first ?? "")
            if Slug.isValid(name), campaignSlugs().contains(name) {
                return Campaign(workspace: self, slug: name)
            }
        }
        let slugs = campaignSlugs()
        switch slugs.count {
        case 0: throw MusterError.usage("this workspace has no campaign yet; create one with `muster new SLUG`")
        case 1: return Campaign(workspace: self, slug: slugs[0])
        default: throw MusterError.usage("this workspace has \(slugs.count) campaigns (\(slugs.joined(separator: ", "))); choose one with -c SLUG")
        }
    }

    /// A path relative to the workspace root, for messages.
    public func display(_ url: URL) -> String {
        let path = url.standardizedFileURL.path
        let base = root.path.hasSuffix("/") ? root.path : root.path + "/"
        return path.hasPrefix(base) ? String(path.dropFirst(base.count)) : path
    }
}

/// One campaign folder, `campaigns/<slug>/`.
public struct Campaign: Sendable {
    public let workspace: Workspace
    public let slug: String

    /// The campaign `slug` of `workspace` (the slug must already be valid).
    public init(workspace: Workspace, slug: String) {
        self.workspace = workspace
        self.slug = slug
    }

    public var folder: URL { workspace.campaignsURL.appendingPathComponent(slug, isDirectory: true) }
    public var manifestURL: URL { folder.appendingPathComponent("campaign.yaml") }
    public var petitionURL: URL { folder.appendingPathComponent("petition.md") }
    public var emailsURL: URL { folder.appendingPathComponent("emails", isDirectory: true) }
    public var ledgerURL: URL { folder.appendingPathComponent("ledger.sqlite") }

    /// Loads the manifest, throwing every error at once (exit 65) when it is invalid.
    public func loadManifest() throws -> (Manifest, warnings: [Diagnostic]) {
        let (manifest, diagnostics) = Manifest.load(manifestURL, displayPath: workspace.display(manifestURL))
        guard let manifest else {
            let errors = diagnostics.filter { $0.severity == .error }
            throw MusterError(.badInput, "\(workspace.display(manifestURL)) has \(errors.count) error\(errors.count == 1 ? "" : "s"); fix \(errors.count == 1 ? "it" : "them") and run again", details: diagnostics.map(\.description))
        }
        return (manifest, diagnostics)
    }
}

/// Campaign slugs: `^[a-z0-9][a-z0-9-]{0,62}$`, checked before any path is built.
public enum Slug {
    public static func isValid(_ slug: String) -> Bool {
        let bytes = Array(slug.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let alnum = (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
            if !(alnum || (index > 0 && byte == 45)) { return false }
        }
        return true
    }

    /// Throws a usage error (exit 64) explaining the rule when `slug` breaks it.
    public static func validate(_ slug: String) throws {
        guard isValid(slug) else {
            let shown = slug.unicodeScalars.map { TextField.isForbidden($0) ? "?" : String($0) }.joined()
            throw MusterError.usage("'\(shown)' is not a valid campaign slug: use 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit (e.g. fair-rates-2027)")
        }
    }

    /// A title from a slug: `fair-rates` → `Fair rates`.
    public static func title(from slug: String) -> String {
        let words = slug.split(separator: "-").joined(separator: " ")
        return words.prefix(1).uppercased() + words.dropFirst()
    }
}

extension Workspace {
    /// Checks an `--out` target before anything is written: it may be anywhere the user
    /// chooses except muster's own files (`muster.yaml`, and everything in `campaigns/`
    /// and `templates/`: ledgers, manifests, templates), so a mistyped `--out` can never
    /// overwrite a ledger. Symbolic links in the folder part are followed first.
    public func checkOutputTarget(_ path: String, option: String = "--out") throws {
        guard !path.isEmpty else { throw MusterError.usage("\(option) needs a file or folder name") }
        if let problem = TextField.forbiddenCharacter(in: path) {
            throw MusterError.usage("\(option) contains \(problem)")
        }
        let target = Self.resolved(URL(fileURLWithPath: path))
        let root = Self.resolved(self.root)
        let protected = [root.appendingPathComponent("muster.yaml").path]
        let protectedFolders = [root.appendingPathComponent("campaigns").path, root.appendingPathComponent("templates").path]
        if protected.contains(target.path) || protectedFolders.contains(where: { target.path == $0 || target.path.hasPrefix($0 + "/") }) {
            throw MusterError.usage("\(option) \(path) points into the workspace's own files (muster.yaml, campaigns/, templates/), which hold ledgers, manifests and templates; write it somewhere else, e.g. reports/")
        }
    }

    /// `url` made absolute and standard, with symbolic links resolved in its existing folders.
    static func resolved(_ url: URL) -> URL {
        var existing = url.standardizedFileURL
        var tail: [String] = []
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" {
            tail.insert(existing.lastPathComponent, at: 0)
            existing = existing.deletingLastPathComponent()
        }
        var result = existing.resolvingSymlinksInPath()
        for component in tail { result.appendPathComponent(component) }
        return result.standardizedFileURL
    }
}
