import Foundation
import Yams

/// `muster.yaml`'s `inbox:` section: the mailbox `muster inbox` reads bounces, replies
/// and unsubscribe requests from. No password: that comes from `MUSTER_IMAP_PASSWORD`.
///
/// ```yaml
/// inbox:
///   url: imaps://imap.example.org        # or imap://host:143 (STARTTLS, always required)
///   username: bounces@example.org
///   folder: INBOX                         # the folder read (default INBOX)
///   ca_file: certs/test-ca.pem            # trust these CAs instead of the system store
///   timeout: 60                           # seconds to wait for any one server reply
///   max_message_size: 10485760            # larger messages are left where they are
///   soft_bounce_limit: 3                  # soft bounces that suppress an address …
///   soft_bounce_days: 30           # … within this many days
/// ```
public struct InboxSettings: Sendable, Equatable {
    public var url: String?
    public var username: String?
    public var folder: String = "INBOX"
    public var caFile: String?
    public var timeout: Int?
    public var maxMessageSize: Int?
    public var softBounceLimit: Int?
    public var softBounceDays: Int?

    public init() {}

    static let knownKeys: Set<String> = ["url", "username", "folder", "ca_file", "timeout", "max_message_size",
                                         "soft_bounce_limit", "soft_bounce_days"]

    /// Reads the `inbox:` mapping, reporting each problem with its line.
    static func parse(_ node: Node?, diagnostics: DiagnosticCollector) -> InboxSettings? {
        var settings = InboxSettings()
        guard let node else { return settings }
        guard let map = MappingReader(node, diagnostics: diagnostics, what: "'inbox'") else { return nil }
        if let mark = map.mark(of: "password") {
            diagnostics.error("never store the IMAP password in muster.yaml; remove it and set MUSTER_IMAP_PASSWORD in the environment", at: mark)
        }
        map.warnUnknown(knownKeys.union(["password"]), in: "'inbox'")
        settings.url = map.string("url", required: true, what: "'inbox'")
        if let url = settings.url {
            do { _ = try IMAPSettings(url: url) } catch {
                // Never echo a URL with user information: it may hold a password.
                diagnostics.error("'url' \(error.reason)\(url.contains("@") ? "" : ", not '\(url)'")", at: map["url"]?.mark)
            }
        }
        settings.username = map.string("username", what: "'inbox'")
        if let folder = map.string("folder", what: "'inbox'") {
            if let problem = IMAPSettings.folderProblem(folder) {
                diagnostics.error("'folder' \(problem), not '\(folder)'", at: map["folder"]?.mark)
            } else {
                settings.folder = folder
            }
        }
        settings.caFile = map.string("ca_file", what: "'inbox'")
        settings.timeout = map.positiveInt("timeout", what: "'inbox'")
        settings.maxMessageSize = map.positiveInt("max_message_size", what: "'inbox'")
        settings.softBounceLimit = map.positiveInt("soft_bounce_limit", what: "'inbox'")
        settings.softBounceDays = map.positiveInt("soft_bounce_days", what: "'inbox'")
        return settings
    }

    /// The connection settings: this section, a relative `ca_file` read from the
    /// workspace, and the password from `MUSTER_IMAP_PASSWORD`. No `inbox:` section, or a
    /// user name without a password, is a usage error (exit 64).
    public func imapSettings(workspace: Workspace, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> IMAPSettings {
        guard let url else {
            throw MusterError.usage("no mailbox configured: add an inbox: section with url and username to muster.yaml (see docs/mail.md)")
        }
        var caFile = caFile
        if let file = caFile, !file.hasPrefix("/") { caFile = workspace.root.appendingPathComponent(file).path }
        let password = environment["MUSTER_IMAP_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        do {
            var settings = try IMAPSettings(url: url, username: username, password: password, folder: folder, caFile: caFile)
            if let timeout {
                settings.responseTimeout = timeout
                settings.connectTimeout = min(settings.connectTimeout, Double(timeout))
            }
            return settings
        } catch {
            throw MusterError.usage("inbox: \(error.reason)")
        }
    }
}

/// Why IMAP settings cannot be used. Never holds the password.
public struct IMAPSettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// Everything `IMAPMailbox` needs to reach the mailbox. TLS is always required: `imaps://`
/// (implicit TLS, port 993) or `imap://` with STARTTLS (port 143); there is no clear-text
/// mode. The password is never part of `description` or a mirror.
public struct IMAPSettings: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public enum Security: String, Sendable { case imap, imaps }

    public var security: Security
    /// Host name or IP address (IPv6 in brackets).
    public var host: String
    public var port: Int
    /// Login name; nil logs in with no user (a server that allows that; rare).
    public var username: String?
    /// From `MUSTER_IMAP_PASSWORD` only.
    var password: String?
    /// The folder read, `/` separating levels (translated to the server's separator).
    public var folder: String
    /// CA certificates (PEM) to trust instead of the system store.
    public var caFile: String?
    /// Seconds allowed to connect (TCP, TLS, login).
    public var connectTimeout: Double = 15
    /// Seconds to wait for the server while reading a reply or sending a command.
    public var responseTimeout: Int = 60

    public var hasPassword: Bool { password != nil }

    public init(url: String, username: String? = nil, password: String? = nil, folder: String = "INBOX",
                caFile: String? = nil) throws(IMAPSettingsError) {
        guard let components = URLComponents(string: url.trimmingCharacters(in: .whitespaces)),
              let scheme = components.scheme?.lowercased() else {
            throw IMAPSettingsError(reason: "must look like imaps://host or imap://host:143")
        }
        guard let security = Security(rawValue: scheme) else {
            throw IMAPSettingsError(reason: "must start with imaps:// or imap:// (STARTTLS)")
        }
        guard var host = components.host, !host.isEmpty else { throw IMAPSettingsError(reason: "has no host name") }
        if components.password != nil {
            throw IMAPSettingsError(reason: "must not contain a password (set MUSTER_IMAP_PASSWORD instead)")
        }
        if components.user != nil {
            throw IMAPSettingsError(reason: "must not contain a user name (set inbox.username)")
        }
        if !(components.path.isEmpty || components.path == "/") || components.query != nil || components.fragment != nil {
            throw IMAPSettingsError(reason: "must be only the server (set the folder with inbox.folder)")
        }
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
        guard host.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && !"/?#@%".unicodeScalars.contains($0) }) else {
            throw IMAPSettingsError(reason: "host name must be ASCII (use the xn-- form)")
        }
        if let port = components.port, !(1...65535).contains(port) { throw IMAPSettingsError(reason: "port is out of range") }
        if let problem = Self.folderProblem(folder) { throw IMAPSettingsError(reason: "folder \(problem)") }
        for (name, value) in [("user name", username), ("password", password), ("ca_file", caFile)] {
            if let value, value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw IMAPSettingsError(reason: "the IMAP \(name) contains a control character")
            }
        }
        if username != nil, password == nil {
            throw IMAPSettingsError(reason: "a user name is set but MUSTER_IMAP_PASSWORD is not")
        }
        self.security = security
        self.host = host
        self.port = components.port ?? (security == .imaps ? 993 : 143)
        self.username = username
        self.password = password
        self.folder = folder
        self.caFile = caFile
    }

    /// Why `name` cannot be a folder name, or nil.
    static func folderProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "contains a control character" }
        if name.hasPrefix("/") || name.hasSuffix("/") || name.contains("//") { return "must not start or end with '/' or hold '//'" }
        if name.contains("*") || name.contains("%") { return "must not contain '*' or '%'" }
        return nil
    }

    /// `imaps://host:993`: the server, as errors name it.
    public var server: String { "\(security.rawValue)://\(host):\(port)" }

    /// The URL libcurl connects to (no user, no folder).
    var curlURL: String { "\(server)/" }

    public var description: String {
        var parts = [security == .imaps ? "implicit TLS" : "STARTTLS required", "folder \(folder)"]
        if let username { parts.append("user \(username)") }
        if password != nil { parts.append("password set") }
        if let caFile { parts.append("CA file \(caFile)") }
        return "\(server) (\(parts.joined(separator: ", ")))"
    }

    public var debugDescription: String { "IMAPSettings(\(description))" }

    public var customMirror: Mirror {
        Mirror(self, children: ["security": security, "host": host, "port": port, "username": username as Any,
                                "password": password == nil ? "nil" : "<redacted>", "folder": folder,
                                "caFile": caFile as Any], displayStyle: .struct)
    }
}
