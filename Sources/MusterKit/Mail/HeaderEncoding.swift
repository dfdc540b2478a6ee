import Synchronization
import Foundation

/// Writes header fields: RFC 2047 encoded words, RFC 5322 quoting and folding.
///
/// A field is built from tokens between which a fold (CRLF + space) may be placed;
/// tokens are joined by one space. Folded lines stay within 78 octets whenever a
/// token allows it, and never exceed 998.
public enum HeaderEncoding {
    /// Soft limit for a header line (RFC 5322 §2.1.1).
    public static let foldWidth = 78
    /// Hard limit for any line of a message, without its CRLF (RFC 5322 §2.1.1).
    public static let maxLineLength = 998
    /// Longest encoded word muster writes (RFC 2047 allows 75); short enough that
    /// `Reply-To: ` plus one word fits in 78.
    static let maxEncodedWordLength = 66

    /// The whole field `Name: value`, folded, with CRLF line breaks and no final CRLF.
    public static func fold(name: String, tokens: [String]) throws(MessageError) -> String {
        var lines: [String] = []
        var line = name + ":"
        var lineHasToken = false
        for token in tokens {
            let candidate = line.utf8.count + 1 + token.utf8.count
            if candidate > foldWidth, lineHasToken, !token.isEmpty {
                lines.append(line)
                line = " " + token
            } else {
                line += " " + token
            }
            lineHasToken = true
        }
        lines.append(line)
        guard lines.allSatisfy({ $0.utf8.count <= maxLineLength }) else { throw .lineTooLong(header: name) }
        return lines.joined(separator: "\r\n")
    }

    /// Tokens for an unstructured value such as Subject: plain words when the value is
    /// plain ASCII, otherwise UTF-8 encoded words that decode back to exactly `value`.
    public static func unstructuredTokens(_ value: String, header: String) throws(MessageError) -> [String] {
        try refuseLineBreaks(value, header: header)
        if value.isEmpty { return [] }
        let words = value.split(separator: " ", omittingEmptySubsequences: false)
        let plain = value.unicodeScalars.allSatisfy { $0.value >= 0x21 && $0.value <= 0x7E || $0 == " " }
            && !value.containsBytes("=?")
            && !value.hasPrefix(" ") && !value.hasSuffix(" ") && !value.containsBytes("  ")
            && words.allSatisfy { $0.utf8.count <= foldWidth - header.utf8.count - 3 }
        if plain { return words.map(String.init) }
        return encodedWords(value)
    }

    /// Tokens for a display name in From/To/Reply-To: atoms, a quoted string, or
    /// encoded words, whichever keeps the name intact and uninterpretable as syntax.
    public static func phraseTokens(_ name: String, header: String) throws(MessageError) -> [String] {
        try refuseLineBreaks(name, header: header)
        let words = name.split(separator: " ", omittingEmptySubsequences: false)
        let printableASCII = name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value <= 0x7E }
        let simpleSpacing = !name.hasPrefix(" ") && !name.hasSuffix(" ") && !name.containsBytes("  ")
        let shortWords = words.allSatisfy { $0.utf8.count <= 60 }
        guard printableASCII, simpleSpacing, shortWords, !name.containsBytes("=?"), !name.isEmpty else {
            return encodedWords(name)
        }
        if name.unicodeScalars.allSatisfy({ MailAddress.isAtext($0) && $0 != "." || $0 == " " }) {
            return words.map(String.init)
        }
        let escaped = words.map { $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        var tokens = escaped
        tokens[0] = "\"" + tokens[0]
        tokens[tokens.count - 1] += "\""
        return tokens
    }

    /// Tokens for a mailbox: the display name (if any) then `<address>`.
    public static func mailboxTokens(_ mailbox: MailAddress, header: String) throws(MessageError) -> [String] {
        try refuseLineBreaks(mailbox.address, header: header)
        guard let name = mailbox.displayName, !name.isEmpty else { return [mailbox.address] }
        return try phraseTokens(name, header: header) + ["<\(mailbox.address)>"]
    }

    /// The whole `name: value` field for an unstructured value: `fold` of
    /// `unstructuredTokens`, without splitting a short plain value into words first.
    static func unstructuredField(name: String, _ value: String) throws(MessageError) -> String {
        // Plain words that fit on the first line come out as they are (see unstructuredTokens).
        if value.utf8.count <= foldWidth - name.utf8.count - 3, isPlainText(value, allowed: { $0 >= 0x21 && $0 <= 0x7E }) {
            return name + ": " + value
        }
        return try fold(name: name, tokens: unstructuredTokens(value, header: name))
    }

    /// The whole `name: mailbox` field: `fold` of `mailboxTokens`, without splitting a short
    /// display name made of atoms into words first.
    static func mailboxField(name: String, uncached mailbox: MailAddress) throws(MessageError) -> String {
        try refuseLineBreaks(mailbox.address, header: name)
        if let display = mailbox.displayName, !display.isEmpty,
           display.utf8.count <= 60, name.utf8.count + display.utf8.count + mailbox.address.utf8.count + 5 <= foldWidth,
           isPlainText(display, allowed: { $0 < 0x80 && $0 != UInt8(ascii: ".") && MailAddress.isAtext(Unicode.Scalar($0)) }) {
            return name + ": " + display + " <" + mailbox.address + ">"
        }
        return try fold(name: name, tokens: mailboxTokens(mailbox, header: name))
    }

    /// Words of `allowed` bytes separated by single spaces, no space at either end, no `=?`.
    private static func isPlainText(_ value: String, allowed: (UInt8) -> Bool) -> Bool {
        var previous: UInt8 = 0x20
        for byte in value.utf8 {
            if byte == 0x20 {
                if previous == 0x20 { return false }
            } else if !allowed(byte) || (byte == UInt8(ascii: "?") && previous == UInt8(ascii: "=")) {
                return false
            }
            previous = byte
        }
        return previous != 0x20
    }

    /// The whole `name: mailbox` field, folded; the last few are kept, since a blast
    /// writes the same From (and Reply-To) into every message.
    static func mailboxField(name: String, _ mailbox: MailAddress) throws(MessageError) -> String {
        let key = MailboxFieldKey(name: name, mailbox: mailbox)
        if let cached = mailboxFields.withLock({ $0[key] }) { return cached }
        let field = try mailboxField(name: name, uncached: mailbox)
        mailboxFields.withLock { cache in
            if cache.count >= 16 { cache.removeAll() }
            cache[key] = field
        }
        return field
    }

    /// The whole `List-Id` field (RFC 2919): the title as a phrase (atoms, a quoted string
    /// or encoded words) then `<slug.domain>`, folded; cached like From, since every
    /// message of a campaign carries the same one.
    static func listIDField(_ listID: ListID) throws(MessageError) -> String {
        if let cached = listIDFields.withLock({ $0[listID] }) { return cached }
        let title = TextField.trimmed(listID.title)
        let phrase = title.isEmpty ? [] : try phraseTokens(title, header: "List-Id")
        let field = try fold(name: "List-Id", tokens: phrase + ["<\(listID.identifier)>"])
        listIDFields.withLock { cache in
            if cache.count >= 16 { cache.removeAll() }
            cache[listID] = field
        }
        return field
    }

    private static let listIDFields = Mutex<[ListID: String]>([:])

    /// The whole `List-Unsubscribe` field (RFC 2369): `<mailto:…>`, then `, <https://…>` when
    /// there is a URL, folded between the two, and after the colon when the first one
    /// does not fit on the line: a fold never goes inside the angle brackets (RFC 2369 §2),
    /// so each line stays within 78 octets unless a single URI is longer.
    static func listUnsubscribeField(_ targets: ListUnsubscribe) throws(MessageError) -> String {
        let name = "List-Unsubscribe:"
        var items = ["<" + targets.mailtoURI + ">"]
        if let url = targets.url {
            items[0] += ","
            items.append("<" + url + ">")
        }
        var lines: [String] = []
        var line = name
        for item in items {
            if line.utf8.count + 1 + item.utf8.count > foldWidth {
                lines.append(line)
                line = " " + item
            } else {
                line += " " + item
            }
        }
        lines.append(line)
        guard lines.allSatisfy({ $0.utf8.count <= maxLineLength }) else { throw .lineTooLong(header: "List-Unsubscribe") }
        return lines.joined(separator: "\r\n")
    }

    private struct MailboxFieldKey: Hashable {
        let name: String
        let mailbox: MailAddress
    }

    private static let mailboxFields = Mutex<[MailboxFieldKey: String]>([:])

    /// Splits `text` into RFC 2047 UTF-8 encoded words of at most 66 characters each,
    /// choosing Q for mostly-ASCII text and B otherwise. A word never ends inside a
    /// UTF-8 sequence, and, where possible, never inside a grapheme cluster.
    public static func encodedWords(_ text: String) -> [String] {
        var nonASCII = 0
        var total = 0
        for byte in text.utf8 {
            total += 1
            if byte >= 0x80 { nonASCII += 1 }
        }
        let useQ = nonASCII * 3 <= total
        // Room for the encoded text between "=?UTF-8?X?" and "?=".
        let room = maxEncodedWordLength - 12
        let maxBBytes = room / 4 * 3
        func cost(_ byte: UInt8) -> Int { isQLiteral(byte) || byte == 0x20 ? 1 : 3 }
        var words: [String] = []
        var current: [UInt8] = []
        var currentCost = 0
        func flush() {
            if !current.isEmpty { words.append(encodedWord(current, q: useQ)) }
            current.removeAll(keepingCapacity: true)
            currentCost = 0
        }
        func append<C: Collection>(_ unit: C) where C.Element == UInt8 {
            if useQ {
                let unitCost = unit.reduce(0) { $0 + cost($1) }
                if currentCost + unitCost > room { flush() }
                currentCost += unitCost
            } else if current.count + unit.count > maxBBytes {
                flush()
            }
            current.append(contentsOf: unit)
        }
        // Whole characters where they fit (no grapheme cluster split), else whole scalars:
        // a word never ends inside a UTF-8 sequence.
        for character in text {
            let utf8 = character.utf8
            let fits = useQ ? utf8.reduce(0) { $0 + cost($1) } <= room : utf8.count <= maxBBytes
            if fits {
                append(utf8)
            } else {
                for scalar in character.unicodeScalars { append(UTF8.encode(scalar)!) }
            }
        }
        flush()
        return words
    }

    private static func encodedWord(_ bytes: [UInt8], q: Bool) -> String {
        q ? "=?UTF-8?Q?" + qEncode(bytes) + "?=" : "=?UTF-8?B?" + Data(bytes).base64EncodedString() + "?="
    }

    /// Q literals allowed in every context, including phrases (RFC 2047 §5 rule 3).
    private static func isQLiteral(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!*+-/".utf8.contains(byte)
        }
    }

    private static let hex = Array("0123456789ABCDEF".utf8)

    private static func qEncode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            if byte == 0x20 {
                out.append(UInt8(ascii: "_"))
            } else if isQLiteral(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 5322 date-time in UTC, e.g. `Thu, 26 Nov 2026 19:31:45 +0000`.
    public static func rfc5322Date(_ date: Date) -> String {
        // A blast dates thousands of messages within the same second: format each second once.
        let second = Int64(date.timeIntervalSince1970.rounded(.down))
        if let cached = lastDate.withLock({ $0.second == second ? $0.text : nil }) { return cached }
        let text = formatRFC5322Date(date)
        lastDate.withLock { $0 = (second, text) }
        return text
    }

    private static let lastDate = Mutex<(second: Int64, text: String)>((Int64.min, ""))

    private static func formatRFC5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int?) -> String { let n = n ?? 0; return n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[(c.weekday ?? 1) - 1]), \(two(c.day)) \(months[(c.month ?? 1) - 1]) \(c.year ?? 1970) "
            + "\(two(c.hour)):\(two(c.minute)):\(two(c.second)) +0000"
    }
}
