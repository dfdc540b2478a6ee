import Foundation

/// How `smtp://` connections use STARTTLS (`smtp.starttls` in `muster.yaml`).
public enum STARTTLSPolicy: String, Sendable, Codable, CaseIterable {
    /// Refuse to continue unless the relay offers STARTTLS and the upgrade succeeds (default).
    case required
    /// Upgrade when offered; otherwise continue in clear text (credentials included).
    case optional
    /// Never upgrade.
    case never
}

/// The `smtp:` mapping of `muster.yaml` as written (no secrets).
public struct SMTPConfig: Codable, Sendable, Equatable {
    /// `smtp://host:587` or `smtps://host:465`.
    public var url: String?
    /// STARTTLS policy for `smtp://`.
    public var starttls: STARTTLSPolicy?
    /// AUTH user name.
    public var username: String?
    /// A PEM file of CA certificates to trust instead of the system store.
    public var caFile: String?

    enum CodingKeys: String, CodingKey {
        case url, starttls, username
        case caFile = "ca_file"
    }

    /// Creates a configuration.
    public init(url: String? = nil, starttls: STARTTLSPolicy? = nil, username: String? = nil, caFile: String? = nil) {
        self.url = url
        self.starttls = starttls
        self.username = username
        self.caFile = caFile
    }
}

/// Why SMTP settings could not be resolved. Never contains the password.
public enum SMTPSettingsError: Error, Equatable, Sendable, LocalizedError {
    /// Neither `smtp.url` nor `MUSTER_SMTP_URL` is set.
    case missingURL
    /// The URL cannot be used; `source` is `smtp.url` or `MUSTER_SMTP_URL`.
    case invalidURL(source: String, reason: String)
    /// `muster.yaml` holds a password in `smtp.url`.
    case passwordInWorkspaceFile
    /// A user name is set but no password.
    case missingPassword
    /// A value that reaches libcurl contains a control character.
    case controlCharacter(setting: String)

    /// A short, lower-case message for the user.
    public var errorDescription: String? {
        switch self {
        case .missingURL:
            return "no SMTP relay configured: set smtp.url in muster.yaml or MUSTER_SMTP_URL"
        case .invalidURL(let source, let reason):
            return "invalid \(source): \(reason)"
        case .passwordInWorkspaceFile:
            return "smtp.url in muster.yaml must not contain a password; set MUSTER_SMTP_PASSWORD instead"
        case .missingPassword:
            return "an SMTP user name is set but MUSTER_SMTP_PASSWORD is not"
        case .controlCharacter(let setting):
            return "\(setting) contains a control character"
        }
    }
}

/// Everything the transport needs to reach the relay. Built from `muster.yaml` and the
/// environment (which wins). The password is never part of `description`, `debugDescription`
/// or a mirror, so it cannot leak into logs or error messages.
public struct SMTPSettings: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// `smtp` (plain, then STARTTLS per policy) or `smtps` (implicit TLS).
    public enum Security: String, Sendable { case smtp, smtps }

    /// The URL scheme.
    public var security: Security
    /// Relay host name or IP address.
    public var host: String
    /// Relay port (default 587 for `smtp`, 465 for `smtps`).
    public var port: Int
    /// STARTTLS policy (only for `smtp`).
    public var starttls: STARTTLSPolicy
    /// AUTH user name; no AUTH when `nil`.
    public var username: String?
    /// AUTH password (from `MUSTER_SMTP_PASSWORD` only).
    var password: String?
    /// CA certificates (PEM) to verify the relay with, instead of the system store.
    public var caFile: String?
    /// Seconds allowed to establish the TCP (and TLS) connection.
    public var connectTimeout: Double = 15
    /// Seconds to wait for any single server reply (a relay that stops answering).
    public var responseTimeout: Int = 60
    /// Seconds allowed for a whole message transfer; 0 means no limit.
    public var transferTimeout: Double = 300
    /// The name sent with EHLO (defaults to this machine's host name).
    public var heloName: String
    /// Where `--verbose` shows the SMTP dialogue, credentials hidden; nil shows nothing.
    public var dialogue: SMTPDialogueLog?

    /// Whether a password is set (for reports; the password itself stays private).
    public var hasPassword: Bool { password != nil }

    /// Creates settings from a URL string and explicit values.
    public init(url: String, starttls: STARTTLSPolicy = .required, username: String? = nil, password: String? = nil,
                caFile: String? = nil, heloName: String? = nil, source: String = "smtp.url") throws(SMTPSettingsError) {
        guard let components = URLComponents(string: url.trimmingCharacters(in: .whitespaces)),
              let scheme = components.scheme?.lowercased() else {
            throw .invalidURL(source: source, reason: "expected smtp://host:587 or smtps://host:465")
        }
        guard let security = Security(rawValue: scheme) else {
            throw .invalidURL(source: source, reason: "scheme must be smtp or smtps, not \(scheme)")
        }
        guard var host = components.host, !host.isEmpty else {
            throw .invalidURL(source: source, reason: "missing host name")
        }
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
        guard host.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && !"/?#@".unicodeScalars.contains($0) }) else {
            throw .invalidURL(source: source, reason: "host name must be ASCII (use the xn-- form)")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw .invalidURL(source: source, reason: "port out of range")
        }
        self.security = security
        self.host = host
        self.port = components.port ?? (security == .smtps ? 465 : 587)
        self.starttls = starttls
        self.username = components.user.flatMap { $0.removingPercentEncoding } ?? username
        self.password = components.password.flatMap { $0.removingPercentEncoding } ?? password
        if username != nil { self.username = username }
        if password != nil { self.password = password }
        self.caFile = caFile
        let localName = heloName ?? ProcessInfo.processInfo.hostName
        let cleaned = String(localName.unicodeScalars.filter { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" })
        self.heloName = cleaned.isEmpty ? "localhost" : cleaned
        for (name, value) in [("SMTP user name", self.username), ("SMTP password", self.password), ("smtp.ca_file", caFile)] {
            if let value, value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw .controlCharacter(setting: name)
            }
        }
        if self.username != nil, self.password == nil { throw .missingPassword }
    }

    /// Resolves settings from `muster.yaml`'s `smtp:` mapping and the environment
    /// (`MUSTER_SMTP_URL`, `MUSTER_SMTP_USERNAME`, `MUSTER_SMTP_PASSWORD` win).
    /// A password in the workspace's URL is refused; one in `MUSTER_SMTP_URL` is accepted.
    public static func resolve(config: SMTPConfig?, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(SMTPSettingsError) -> SMTPSettings {
        let envURL = environment["MUSTER_SMTP_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if envURL == nil, let fileURL = config?.url, URLComponents(string: fileURL)?.password != nil {
            throw .passwordInWorkspaceFile
        }
        guard let url = envURL ?? config?.url else { throw .missingURL }
        let userInEnvURL = envURL.flatMap { URLComponents(string: $0)?.user } != nil
        let username = environment["MUSTER_SMTP_USERNAME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (userInEnvURL ? nil : config?.username)
        let password = environment["MUSTER_SMTP_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        return try SMTPSettings(url: url, starttls: config?.starttls ?? .required, username: username, password: password,
                                caFile: config?.caFile, source: envURL != nil ? "MUSTER_SMTP_URL" : "smtp.url")
    }

    /// The URL handed to libcurl: no user info; the path carries the EHLO name.
    var curlURL: String { "\(security.rawValue)://\(host):\(port)/\(heloName)" }

    /// `smtp://host:port (STARTTLS required, user alice, password set)`; never the password.
    public var description: String {
        var parts: [String] = []
        parts.append(security == .smtps ? "implicit TLS" : "STARTTLS \(starttls.rawValue)")
        if let username { parts.append("user \(username)") }
        if password != nil { parts.append("password set") }
        if let caFile { parts.append("CA file \(caFile)") }
        return "\(security.rawValue)://\(host):\(port) (\(parts.joined(separator: ", ")))"
    }

    /// Same as `description` (never shows secrets).
    public var debugDescription: String { "SMTPSettings(\(description))" }

    /// A mirror for `dump` that hides the password.
    public var customMirror: Mirror {
        Mirror(self, children: ["security": security, "host": host, "port": port, "starttls": starttls,
                                "username": username as Any, "password": password == nil ? "nil" : "<redacted>",
                                "caFile": caFile as Any], displayStyle: .struct)
    }
}
