import Foundation
import Yams

/// `muster.yaml`'s `serve:` section: how `muster serve` listens and how it names itself.
///
/// ```yaml
/// serve:
///   base_url: https://sign.example.org     # the public address, for links in mail
///   listen: 127.0.0.1:8080                 # where the server binds (--listen wins)
///   trust_proxy: 127.0.0.1                 # X-Forwarded-For is believed from here only
/// ```
public struct ServeSettings: Sendable, Equatable {
    /// The public address of the sign page (https://…, no trailing slash), used to build
    /// the links that confirmation and unsubscribe mail carry; nil when not set.
    public var baseURL: String?
    /// Where to listen; `127.0.0.1:8080` by default.
    public var listen: ListenAddress = .default
    /// Peers whose `X-Forwarded-For` is believed (the reverse proxy); empty: none.
    public var trustedProxies: [String] = []

    public init() {}

    static let knownKeys: Set<String> = ["base_url", "listen", "trust_proxy"]

    /// Reads the `serve:` mapping, reporting each problem with its line.
    static func parse(_ node: Node?, diagnostics: DiagnosticCollector) -> ServeSettings? {
        var settings = ServeSettings()
        guard let node else { return settings }
        guard let map = MappingReader(node, diagnostics: diagnostics, what: "'serve'") else { return nil }
        map.warnUnknown(knownKeys, in: "'serve'")
        if let url = map.string("base_url", what: "'serve'") {
            if let problem = Self.baseURLProblem(url) {
                diagnostics.error("'base_url' \(problem), not '\(url)'", at: map["base_url"]?.mark)
            } else {
                settings.baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
            }
        }
        if let text = map.string("listen", what: "'serve'") {
            do { settings.listen = try ListenAddress(parsing: text) } catch let error as MusterError {
                diagnostics.error("'listen' \(error.message)", at: map["listen"]?.mark)
            } catch {}
        }
        if let value = map["trust_proxy"] {
            var addresses: [(String, Mark?)] = []
            switch value {
            case .scalar(let scalar): addresses = [(scalar.string, value.mark)]
            case .sequence(let items): addresses = items.map { ($0.scalar?.string ?? "", $0.mark) }
            default: diagnostics.error("'trust_proxy' must be an IP address or a list of them", at: value.mark)
            }
            for (address, mark) in addresses {
                if IPAddressText.isValid(address) { settings.trustedProxies.append(address) } else {
                    diagnostics.error("'trust_proxy' must be the reverse proxy's IP address (e.g. 127.0.0.1 or ::1), not '\(address)'", at: mark)
                }
            }
        }
        return settings
    }

    /// Why `url` cannot be the public address, or nil when it can.
    static func baseURLProblem(_ url: String) -> String? {
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            return "must start with https:// (http:// only for trying it out)"
        }
        guard let parsed = URLComponents(string: url), let host = parsed.host, !host.isEmpty else { return "is not a URL" }
        if parsed.query != nil || parsed.fragment != nil { return "must have no ?query or #fragment" }
        return nil
    }
}

/// A host and port to listen on: `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:80`.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public static let `default` = ListenAddress(host: "127.0.0.1", port: 8080)

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` (an IPv6 host in brackets); port 0 picks a free port.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var host: Substring, port: Substring
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]"), trimmed[trimmed.index(after: close)...].hasPrefix(":") else {
                throw MusterError.usage("must look like [::1]:8080, not '\(text)'")
            }
            host = trimmed[trimmed.index(after: trimmed.startIndex)..<close]
            port = trimmed[trimmed.index(close, offsetBy: 2)...]
        } else {
            guard let colon = trimmed.lastIndex(of: ":") else {
                throw MusterError.usage("must look like 127.0.0.1:8080 (host and port), not '\(text)'")
            }
            host = trimmed[..<colon]
            port = trimmed[trimmed.index(after: colon)...]
        }
        guard IPAddressText.isValid(String(host)) else {
            throw MusterError.usage("needs an IP address to bind (e.g. 127.0.0.1, 0.0.0.0 or [::1]), not '\(host)'")
        }
        guard let number = Int(port), (0...65535).contains(number) else {
            throw MusterError.usage("needs a port from 0 to 65535, not '\(port)'")
        }
        self.init(host: String(host), port: number)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Textual IPv4 and IPv6 addresses, checked with inet_pton.
enum IPAddressText {
    static func isValid(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
