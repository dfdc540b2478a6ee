import CResolv
import Foundation

/// The record types `muster mail doctor` asks for.
public enum DNSType: Int32, Sendable, CustomStringConvertible {
    case a = 1
    case mx = 15
    case txt = 16
    case aaaa = 28

    public var description: String {
        switch self {
        case .a: return "A"
        case .mx: return "MX"
        case .txt: return "TXT"
        case .aaaa: return "AAAA"
        }
    }
}

/// One record of an answer, decoded.
public enum DNSRecord: Sendable, Equatable {
    /// A TXT record: its character-strings, joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    case txt(String, strings: Int)
    case mx(preference: Int, host: String)
    case a(String)
    case aaaa(String)

    public var text: String? {
        if case .txt(let text, _) = self { return text }
        return nil
    }
}

/// What a name server said about one (name, type).
public enum DNSAnswer: Sendable, Equatable {
    /// The records of the type asked for (CNAMEs the resolver followed are left out).
    case records([DNSRecord])
    /// The name exists but has no record of that type (NOERROR with an empty answer).
    case noData
    /// The name does not exist (NXDOMAIN).
    case nxDomain

    public var records: [DNSRecord] {
        if case .records(let records) = self { return records }
        return []
    }
}

/// DNS could not be asked: no answer in time, a server failure, a refusal. Distinct from
/// "the record is missing", which is an answer.
public struct DNSFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Looks up (name, type); the doctor takes one so its tests can script DNS.
public protocol DNSLookup: Sendable {
    func lookup(_ name: String, _ type: DNSType) throws(DNSFailure) -> DNSAnswer
}

/// A DNS server given as `IPv4[:PORT]` (`--dns`, `MUSTER_DNS_SERVER`).
public struct DNSServer: Sendable, Equatable, CustomStringConvertible {
    public let address: String
    public let port: Int

    public init(parsing text: String) throws(DNSFailure) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var probe = in_addr()
        guard (1...2).contains(parts.count), inet_pton(AF_INET, String(parts[0]), &probe) == 1 else {
            throw DNSFailure("'\(text)' is not a DNS server address: give an IPv4 address, optionally with a port, as in 127.0.0.1:5353")
        }
        address = String(parts[0])
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else {
                throw DNSFailure("'\(text)': the port must be a number from 1 to 65535")
            }
            self.port = port
        } else {
            port = 53
        }
    }

    public var description: String { port == 53 ? address : "\(address):\(port)" }
}

/// The system's stub resolver (glibc libresolv): `/etc/resolv.conf`'s servers, or one
/// given server; each query waits `timeout` seconds per try, `attempts` tries.
public struct SystemResolver: DNSLookup {
    public let server: DNSServer?
    public let timeout: Int
    public let attempts: Int

    public init(server: DNSServer? = nil, timeout: Int = 5, attempts: Int = 2) {
        self.server = server
        self.timeout = timeout
        self.attempts = attempts
    }

    /// Who is asked, for messages.
    public var serverDescription: String { server.map { "DNS server \($0)" } ?? "the DNS servers of /etc/resolv.conf" }

    public func lookup(_ name: String, _ type: DNSType) throws(DNSFailure) -> DNSAnswer {
        var answer = [UInt8](repeating: 0, count: 65_535)
        var error: Int32 = 0
        let length = answer.withUnsafeMutableBufferPointer { buffer in
            muster_dns_query(server?.address, Int32(server?.port ?? 53), Int32(timeout), Int32(attempts), name, type.rawValue,
                             buffer.baseAddress, Int32(buffer.count), &error)
        }
        guard length > 0 else {
            switch error {
            case EINVAL:
                throw DNSFailure("cannot ask DNS about '\(name)': not a name DNS can look up")
            case EPROTO:
                throw DNSFailure("\(serverDescription) failed to answer for \(type) \(name) (SERVFAIL or REFUSED): the domain's own name servers may be down or misconfigured")
            case ECONNREFUSED:
                throw DNSFailure("\(serverDescription) refused the query for \(type) \(name) (nothing listens there?)")
            default:
                let total = timeout * attempts
                throw DNSFailure("no answer from DNS in \(total) s (\(serverDescription), \(attempts) tr\(attempts == 1 ? "y" : "ies") of \(timeout) s, asking for \(type) \(name))")
            }
        }
        let message: DNSMessage
        do {
            message = try DNSMessage(Array(answer[0..<Int(length)]))
        } catch {
            throw DNSFailure("\(serverDescription) sent a malformed answer for \(type) \(name): \(error.message)")
        }
        return try message.answer(for: type, name: name, server: serverDescription)
    }
}

/// A DNS message (RFC 1035 §4.1), parsed by hand with every length and pointer checked:
/// the header, the question skipped, the answer section's records of the known types.
public struct DNSMessage: Sendable {
    public struct Malformed: Error, Sendable, Equatable { public let message: String }

    public let id: UInt16
    public let rcode: Int
    public let truncated: Bool
    /// (type, decoded record) of each answer record whose type muster knows.
    public let answers: [(type: Int, record: DNSRecord)]

    public init(_ bytes: [UInt8]) throws(Malformed) {
        var reader = Reader(bytes: bytes)
        id = try reader.u16()
        let flags = try reader.u16()
        rcode = Int(flags & 0x000F)
        truncated = flags & 0x0200 != 0
        let questions = try reader.u16(), answerCount = try reader.u16()
        _ = try reader.u16(); _ = try reader.u16()
        for _ in 0..<questions {
            _ = try reader.name()
            try reader.skip(4)
        }
        var answers: [(type: Int, record: DNSRecord)] = []
        for _ in 0..<answerCount {
            _ = try reader.name()
            let type = Int(try reader.u16())
            _ = try reader.u16()
            try reader.skip(4)
            let length = Int(try reader.u16())
            let end = reader.offset + length
            guard end <= bytes.count else { throw Malformed(message: "a record runs past the end of the message") }
            switch type {
            case 16:
                var strings: [String] = []
                var texts = Reader(bytes: bytes, offset: reader.offset)
                while texts.offset < end {
                    let count = Int(try texts.u8())
                    guard texts.offset + count <= end else { throw Malformed(message: "a TXT string runs past its record") }
                    strings.append(String(decoding: bytes[texts.offset..<texts.offset + count], as: UTF8.self))
                    texts.offset += count
                }
                answers.append((type, .txt(strings.joined(), strings: strings.count)))
            case 15:
                guard length >= 3 else { throw Malformed(message: "an MX record is too short") }
                var mx = Reader(bytes: bytes, offset: reader.offset)
                let preference = Int(try mx.u16())
                answers.append((type, .mx(preference: preference, host: try mx.name())))
            case 1:
                guard length == 4 else { throw Malformed(message: "an A record is not 4 bytes long") }
                answers.append((type, .a(bytes[reader.offset..<end].map(String.init).joined(separator: "."))))
            case 28:
                guard length == 16 else { throw Malformed(message: "an AAAA record is not 16 bytes long") }
                var raw = in6_addr()
                withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: bytes[reader.offset..<end]) }
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                answers.append((type, .aaaa(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))))
            default:
                break // CNAMEs the resolver followed, and anything else
            }
            reader.offset = end
        }
        self.answers = answers
    }

    /// The answer to a query for `type`: records, no data, or no such name; a server
    /// failure or refusal is a `DNSFailure`.
    func answer(for type: DNSType, name: String, server: String) throws(DNSFailure) -> DNSAnswer {
        switch rcode {
        case 0:
            let records = answers.filter { $0.type == Int(type.rawValue) }.map { $0.record }
            return records.isEmpty ? .noData : .records(records)
        case 3:
            return .nxDomain
        case 2:
            throw DNSFailure("\(server) failed to answer for \(type) \(name) (SERVFAIL): the domain's own name servers may be down or misconfigured")
        case 5:
            throw DNSFailure("\(server) refused to answer for \(type) \(name) (REFUSED)")
        default:
            throw DNSFailure("\(server) answered \(type) \(name) with error code \(rcode)")
        }
    }

    /// Reads a message with bounds checks; names follow at most 64 compression pointers.
    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func u8() throws(Malformed) -> UInt8 {
            guard offset < bytes.count else { throw Malformed(message: "the message ends early") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() throws(Malformed) -> UInt16 {
            UInt16(try u8()) << 8 | UInt16(try u8())
        }

        mutating func skip(_ count: Int) throws(Malformed) {
            guard offset + count <= bytes.count else { throw Malformed(message: "the message ends early") }
            offset += count
        }

        /// A domain name, dotted, without the final dot ("" for the root).
        mutating func name() throws(Malformed) -> String {
            var labels: [String] = []
            var position = offset
            var jumped = false
            var jumps = 0
            var length = 0
            while true {
                guard position < bytes.count else { throw Malformed(message: "a name runs past the end of the message") }
                let byte = bytes[position]
                if byte & 0xC0 == 0xC0 {
                    guard position + 1 < bytes.count else { throw Malformed(message: "a name pointer is cut off") }
                    jumps += 1
                    guard jumps <= 64 else { throw Malformed(message: "a name's compression pointers loop") }
                    if !jumped { offset = position + 2 }
                    jumped = true
                    position = Int(byte & 0x3F) << 8 | Int(bytes[position + 1])
                    continue
                }
                guard byte & 0xC0 == 0 else { throw Malformed(message: "a name has a label type DNS does not use") }
                if byte == 0 {
                    if !jumped { offset = position + 1 }
                    return labels.joined(separator: ".")
                }
                let count = Int(byte)
                guard position + 1 + count <= bytes.count else { throw Malformed(message: "a label runs past the end of the message") }
                length += count + 1
                guard length <= 255 else { throw Malformed(message: "a name is longer than 255 bytes") }
                labels.append(String(decoding: bytes[(position + 1)..<(position + 1 + count)], as: UTF8.self))
                position += 1 + count
            }
        }
    }
}
