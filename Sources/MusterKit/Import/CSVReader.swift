import Foundation

/// A problem that makes a whole CSV file unreadable (as opposed to one bad row).
public struct CSVFileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The physical line (1-based) where the problem was found.
    public let line: Int
    public let message: String

    public var description: String { "line \(line): \(message)" }
}

/// A streaming RFC 4180 reader written for muster.
///
/// Quoted fields with embedded delimiters, quotes (`""`) and line breaks; `,` `;`
/// or tab sniffed from the header line; UTF-8 with or without a byte-order mark;
/// LF, CRLF or CR line endings. Memory stays flat: the reader holds one chunk of
/// the file and one record, and refuses a field of 1 MiB, a record of 8 MiB or a
/// row of 10,000 columns. A stray quote inside an unquoted field is kept as text,
/// as spreadsheets do.
public final class CSVReader {
    /// A field may hold at most this many bytes (one less than 1 MiB).
    public static let maximumFieldBytes = 1_048_576 - 1
    /// A record may hold at most this many columns.
    public static let maximumColumns = 9_999
    /// A record may hold at most this many bytes in all.
    public static let maximumRecordBytes = 8 * 1_048_576
    static let chunkSize = 1 << 20

    /// One record: its fields and the physical line it starts on.
    public struct Record {
        public let line: Int
        public let fields: [String]
    }

    /// The field separator in use.
    public private(set) var delimiter: UInt8 = UInt8(ascii: ",")
    /// Bytes consumed so far (for a progress line).
    public private(set) var bytesRead: Int = 0

    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private var chunk: [UInt8]
    private var chunkStart = 0
    private var chunkEnd = 0
    private var atEOF = false
    private var started = false
    private var line = 1
    private var skipLineFeed = false
    private var record: [UInt8] = []
    private var fieldEnds: [Int] = []

    /// Opens `url` for reading; throws a `MusterError` naming the file when it cannot.
    public init(url: URL) throws {
        let fd = Foundation.open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw MusterError.badInput("cannot read \(url.path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw MusterError.badInput("\(url.path) is a folder, not a CSV file")
        }
        descriptor = fd
        ownsDescriptor = true
        chunk = [UInt8](repeating: 0, count: Self.chunkSize)
        record.reserveCapacity(4096)
        fieldEnds.reserveCapacity(64)
    }

    /// Reads from an open descriptor (not closed by the reader).
    public init(descriptor: Int32) {
        self.descriptor = descriptor
        ownsDescriptor = false
        chunk = [UInt8](repeating: 0, count: Self.chunkSize)
    }

    deinit {
        if ownsDescriptor { close(descriptor) }
    }

    private func fill() throws {
        guard !atEOF else { return }
        // Keep unread bytes at the front.
        if chunkStart > 0 {
            let rest = chunkEnd - chunkStart
            if rest > 0 {
                chunk.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + chunkStart, rest)
                }
            }
            chunkStart = 0
            chunkEnd = rest
        }
        while chunkEnd < chunk.count {
            let count = chunk.withUnsafeMutableBytes { raw in
                Foundation.read(descriptor, raw.baseAddress! + chunkEnd, raw.count - chunkEnd)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw CSVFileError(line: line, message: "read error: \(String(cString: strerror(errno)))")
            }
            if count == 0 { atEOF = true; break }
            chunkEnd += count
            if chunkEnd - chunkStart >= 64 * 1024 { break }
        }
    }

    /// Skips a byte-order mark and picks the delimiter that appears most often,
    /// outside quotes, in the first line.
    private func start() throws {
        started = true
        try fill()
        if chunkEnd - chunkStart >= 3, chunk[chunkStart] == 0xEF, chunk[chunkStart + 1] == 0xBB, chunk[chunkStart + 2] == 0xBF {
            chunkStart += 3
            bytesRead += 3
        }
        var counts: [UInt8: Int] = [UInt8(ascii: ","): 0, UInt8(ascii: ";"): 0, UInt8(ascii: "\t"): 0]
        var quoted = false
        var index = chunkStart
        while index < chunkEnd {
            let byte = chunk[index]
            if byte == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if !quoted {
                if byte == 10 || byte == 13 { break }
                if counts[byte] != nil { counts[byte]! += 1 }
            }
            index += 1
        }
        let best = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!
        if best.value > 0 { delimiter = best.key }
    }

    private enum State { case fieldStart, unquoted, quoted, quoteInQuoted }

    /// The next record, or nil at the end of the file. Blank lines are skipped.
    public func next() throws -> Record? {
        if !started { try start() }
        while true {
            guard let (recordLine, ended) = try scanRecord() else { return nil }
            if fieldEnds.count == 1 && fieldEnds[0] == 0 && !ended.quotedEmpty { continue }
            return Record(line: recordLine, fields: try decodeFields(line: recordLine))
        }
    }

    private struct Ended { var quotedEmpty: Bool }

    /// Scans one record into `record`/`fieldEnds`. Returns nil at end of input.
    ///
    /// The scan works on local copies of the reader's state, written back on the way
    /// out, so the per-byte loop touches no class property (no exclusivity checks).
    private func scanRecord() throws -> (Int, Ended)? {
        var record: [UInt8] = []
        var fieldEnds: [Int] = []
        swap(&record, &self.record)
        swap(&fieldEnds, &self.fieldEnds)
        var line = self.line
        var skipLineFeed = self.skipLineFeed
        defer {
            swap(&record, &self.record)
            swap(&fieldEnds, &self.fieldEnds)
            self.line = line
            self.skipLineFeed = skipLineFeed
        }
        record.removeAll(keepingCapacity: true)
        fieldEnds.removeAll(keepingCapacity: true)
        var state = State.fieldStart
        var recordLine = line
        var begun = false
        var sawQuote = false
        let quote = UInt8(ascii: "\"")
        let delimiter = self.delimiter
        var fieldStartOffset = 0
        var quoteLine = line
        // Inside quotes, a CR counts as a line break of its own and the LF of a CRLF does
        // not count again, as outside quotes (so lines stay physical in CR-only files too).
        var quotedCR = false

        func endField() throws {
            fieldEnds.append(record.count)
            fieldStartOffset = record.count
            if fieldEnds.count > Self.maximumColumns {
                throw CSVFileError(line: recordLine, message: "a row with more than \(Self.maximumColumns) columns; is this a CSV file?")
            }
        }

        while true {
            if chunkStart >= chunkEnd {
                try fill()
                if chunkStart >= chunkEnd {
                    // End of input.
                    if !begun { return nil }
                    if state == .quoted {
                        throw CSVFileError(line: quoteLine, message: "a quoted field opened on line \(quoteLine) is never closed (unterminated quote)")
                    }
                    try endField()
                    return (recordLine, Ended(quotedEmpty: sawQuote))
                }
            }
            // Scan the buffered bytes in one tight loop.
            var finished = false
            var failure: CSVFileError?
            let scanStart = chunkStart
            let consumed: Int = chunk.withUnsafeBufferPointer { buffer in
                var index = scanStart
                let end = chunkEnd
                while index < end {
                    let byte = buffer[index]
                    index += 1
                    if skipLineFeed {
                        skipLineFeed = false
                        if byte == 10 { continue }
                    }
                    if !begun { begun = true; recordLine = line }
                    switch state {
                    case .quoteInQuoted where byte == quote:
                        record.append(quote)
                        state = .quoted
                    case .fieldStart, .unquoted, .quoteInQuoted:
                        // After a closing quote, a delimiter or line break ends the field as
                        // in an unquoted one, and anything else continues it as plain text.
                        if byte == quote && state == .fieldStart {
                            state = .quoted
                            sawQuote = true
                            quoteLine = line
                        } else if byte == delimiter {
                            state = .fieldStart
                            do { try endField() } catch { failure = error as? CSVFileError; return index }
                        } else if byte == 10 || byte == 13 {
                            line += 1
                            if byte == 13 { skipLineFeed = true }
                            do { try endField() } catch { failure = error as? CSVFileError; return index }
                            finished = true
                            return index
                        } else {
                            // Plain text up to the next delimiter or line break, copied at once
                            // (a quote inside an unquoted field is text).
                            let runStart = index - 1
                            while index < end {
                                let next = buffer[index]
                                if next == delimiter || next == 10 || next == 13 { break }
                                index += 1
                            }
                            record.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[runStart..<index]))
                            state = .unquoted
                        }
                    case .quoted:
                        if byte == quote {
                            state = .quoteInQuoted
                            quotedCR = false
                        } else {
                            if byte == 13 || (byte == 10 && !quotedCR) { line += 1 }
                            quotedCR = byte == 13
                            record.append(byte)
                        }
                    }
                    if record.count - fieldStartOffset > Self.maximumFieldBytes {
                        failure = CSVFileError(line: line, message: "a field of 1 MiB or more (column \(fieldEnds.count + 1), starting on line \(recordLine)); is this a CSV file?")
                        return index
                    }
                    if record.count > Self.maximumRecordBytes {
                        failure = CSVFileError(line: line, message: "a row of 8 MiB or more (starting on line \(recordLine)); is this a CSV file?")
                        return index
                    }
                }
                return index
            }
            bytesRead += consumed - chunkStart
            chunkStart = consumed
            if let failure { throw failure }
            if finished { return (recordLine, Ended(quotedEmpty: sawQuote)) }
        }
    }

    private func decodeFields(line recordLine: Int) throws -> [String] {
        var fields: [String] = []
        fields.reserveCapacity(fieldEnds.count)
        try record.withUnsafeBufferPointer { buffer in
            var start = 0
            for (column, end) in fieldEnds.enumerated() {
                let slice = UnsafeBufferPointer(rebasing: buffer[start..<end])
                var ascii = true
                for byte in slice where byte >= 0x80 { ascii = false; break }
                if ascii {
                    fields.append(String(decoding: slice, as: UTF8.self))
                } else if let text = String(validating: slice, as: UTF8.self) {
                    fields.append(text)
                } else {
                    // Find the offending byte to name it.
                    var offset = 0
                    var iterator = slice.makeIterator()
                    var decoder = UTF8()
                    var badByte: UInt8 = slice.first ?? 0
                    loop: while true {
                        let before = offset
                        switch decoder.decode(&iterator) {
                        case .scalarValue(let scalar):
                            offset += UTF8.width(scalar)
                        case .emptyInput:
                            break loop
                        case .error:
                            badByte = slice[min(before, slice.count - 1)]
                            break loop
                        }
                    }
                    // Line breaks before the bad byte, in this field and the record's earlier
                    // (quoted, multiline) fields: CR, LF and CRLF each count once.
                    var lineOfField = recordLine
                    var previous: UInt8 = 0
                    for byte in buffer[0..<(start + min(offset, slice.count))] {
                        if byte == 13 || (byte == 10 && previous != 13) { lineOfField += 1 }
                        previous = byte
                    }
                    throw CSVFileError(line: lineOfField, message: String(format: "invalid UTF-8 (byte 0x%02X) in column %d; save the file as UTF-8 and try again", badByte, column + 1))
                }
                start = end
            }
        }
        return fields
    }
}
