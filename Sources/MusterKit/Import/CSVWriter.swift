import Foundation

/// Writes RFC 4180 CSV (CRLF line endings, quotes where needed) to a file, buffered.
///
/// With `neutralisesFormulas`, a cell that a spreadsheet would run as a formula —
/// one starting with `=`, `+`, `-`, `@`, a tab or a carriage return — is prefixed
/// with `'` (OWASP's advice for CSV injection) and then quoted.
public final class CSVWriter {
    /// Where `flush` writes; nil for an in-memory writer (see `bytes`).
    private let descriptor: Int32?
    private var buffer: [UInt8] = []
    private let neutralisesFormulas: Bool
    private let delimiter: UInt8

    /// Characters that make a spreadsheet treat a cell as a formula.
    static let formulaTriggers: Set<UInt8> = [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0D]

    /// Writes to `descriptor` (not closed by the writer).
    public init(descriptor: Int32, neutralisesFormulas: Bool, delimiter: UInt8 = UInt8(ascii: ",")) {
        self.descriptor = descriptor
        self.neutralisesFormulas = neutralisesFormulas
        self.delimiter = delimiter
        buffer.reserveCapacity(1 << 16)
    }

    /// Writes into memory: the CSV is in `bytes` (e.g. for a mail attachment).
    public init(neutralisesFormulas: Bool, delimiter: UInt8 = UInt8(ascii: ",")) {
        self.descriptor = nil
        self.neutralisesFormulas = neutralisesFormulas
        self.delimiter = delimiter
    }

    /// Everything written so far, for an in-memory writer.
    public var bytes: [UInt8] { buffer }

    /// Appends one record.
    public func write(_ fields: [String]) throws {
        for (index, field) in fields.enumerated() {
            if index > 0 { buffer.append(delimiter) }
            append(field)
        }
        buffer.append(13)
        buffer.append(10)
        if descriptor != nil, buffer.count >= 1 << 16 { try flush() }
    }

    private func append(_ field: String) {
        var utf8 = Array(field.utf8)
        if neutralisesFormulas, let first = utf8.first, Self.formulaTriggers.contains(first) {
            utf8.insert(UInt8(ascii: "'"), at: 0)
        }
        let needsQuotes = utf8.contains { $0 == delimiter || $0 == 34 || $0 == 10 || $0 == 13 }
            || (neutralisesFormulas && utf8.first == UInt8(ascii: "'"))
        if !needsQuotes {
            buffer.append(contentsOf: utf8)
            return
        }
        buffer.append(34)
        for byte in utf8 {
            if byte == 34 { buffer.append(34) }
            buffer.append(byte)
        }
        buffer.append(34)
    }

    /// Writes out what is buffered.
    public func flush() throws {
        guard let descriptor else { return }
        try FileOutput.writeAll(descriptor, buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// `text` without the `'` that `neutralisesFormulas` put in front of it, so that
    /// muster's own exports import back unchanged.
    static func unneutralised(_ text: String) -> String {
        let utf8 = text.utf8
        guard utf8.count >= 2, utf8.first == UInt8(ascii: "'"),
              formulaTriggers.contains(utf8[utf8.index(after: utf8.startIndex)]) else { return text }
        return String(text.dropFirst())
    }
}
