import Foundation

/// What `muster import` was asked to do.
public struct ImportRequest: Sendable {
    public var file: URL
    /// `--map COLUMN=FIELD`, as typed.
    public var maps: [String]
    /// Default source for rows without one (default `import`).
    public var source: String?
    /// Default collector for rows without one.
    public var collector: String?
    public var dryRun: Bool
    /// Where rejected rows go (default `<name>.rejects.csv` beside the input).
    public var rejects: URL?

    public init(file: URL, maps: [String] = [], source: String? = nil, collector: String? = nil, dryRun: Bool = false, rejects: URL? = nil) {
        self.file = file
        self.maps = maps
        self.source = source
        self.collector = collector
        self.dryRun = dryRun
        self.rejects = rejects
    }

    /// `<name>.rejects.csv` beside the input.
    public var rejectsURL: URL {
        if let rejects { return rejects }
        let base = file.deletingPathExtension().lastPathComponent
        return file.deletingLastPathComponent().appendingPathComponent("\(base).rejects.csv")
    }
}

/// What an import did (or, in a dry run, would do).
public struct ImportSummary: Sendable, Codable, Equatable {
    /// Data rows read (the header and blank lines not counted).
    public var rows: Int
    public var added: Int
    /// Rows whose address already signed (in the ledger or earlier in the file).
    public var duplicates: Int
    public var rejected: Int
    /// Rows that are a forgotten signer as `muster export` writes one (a time, no name,
    /// no email, no personal data): skipped, since there is no one to add, and counted
    /// here rather than rejected.
    public var forgotten: Int
    /// The rejects file, when rows were rejected and this was not a dry run.
    public var rejectsFile: String?
    /// Rejection reasons with the values left out, and how often each occurred.
    public var reasons: [String: Int]
    public var dryRun: Bool
    /// Signatures in the ledger afterwards (unchanged by a dry run).
    public var count: Int64
    /// How each column was used.
    public var columns: [String: String]
    public var ignoredColumns: [String]
    public var delimiter: String
    /// Rows imported (or found duplicate) whose domain is one slip from a common
    /// provider (`TypoHint`): imported as typed, counted here for the organiser to check.
    public var suspectedTypos: Int = 0
    /// Their line numbers in the file (the first 1,000), never the addresses.
    public var suspectedTypoLines: [Int] = []

    enum CodingKeys: String, CodingKey {
        case rows, added, duplicates, rejected, forgotten
        case rejectsFile = "rejects_file"
        case reasons
        case dryRun = "dry_run"
        case count, columns
        case ignoredColumns = "ignored_columns"
        case delimiter
        case suspectedTypos = "suspected_typos"
        case suspectedTypoLines = "suspected_typo_lines"
    }
}

/// Bulk-adds signatures from a CSV file: every row validated as `muster sign` does,
/// bad rows set aside in a rejects file, duplicates counted, and the whole import
/// one ledger transaction.
public enum Importer {
    /// Runs `request` for `campaign`; `progress` is called now and then with rows and bytes read.
    public static func run(_ request: ImportRequest, campaign: Campaign, manifest: Manifest, clock: Clock,
                           progress: ((_ rows: Int, _ bytes: Int) -> Void)? = nil) throws -> ImportSummary {
        let displayPath = request.file.path
        func fileError(_ error: CSVFileError) -> MusterError {
            MusterError.badInput("\(displayPath):\(error.line): \(error.message); nothing was imported")
        }
        let reader = try CSVReader(url: request.file)
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: request.file.path)[.size] as? Int) ?? 0
        guard let header = try wrap(fileError, { try reader.next() }) else {
            throw MusterError.badInput("\(displayPath) is empty; expected a header line such as name,email")
        }
        var overrides: [(column: String, target: ImportTarget)] = []
        for map in request.maps {
            guard let equals = map.lastIndex(of: "=") else {
                throw MusterError.usage("--map takes COLUMN=FIELD, e.g. --map \"Your name=name\"; got '\(map)'")
            }
            overrides.append((String(map[..<equals]), try ColumnMapping.target(named: String(map[map.index(after: equals)...]), manifest: manifest)))
        }
        let mapping = try ColumnMapping.make(header: header.fields, manifest: manifest, overrides: overrides)
        let rowBuilder = RowBuilder(mapping: mapping, manifest: manifest, source: request.source ?? "import",
                                    collector: request.collector, now: clock.now())

        // The ledger: the campaign's own, or for a dry run without one, a throwaway one
        // that never touches the disk under a name.
        let rules = try campaign.workspace.mailboxRules()
        let (ledger, scratch) = try Ledger.openForRun(campaign.ledgerURL, dryRun: request.dryRun)
        ledger.mailboxRules = rules

        // Rejected rows hold names and addresses: they are written to an unnamed file
        // that only gets its name once complete (see PrivateFile), and what a killed
        // run of an older muster left beside it is deleted.
        let rejectsURL = request.rejectsURL
        PrivateFile.removeLeftovers(of: rejectsURL)
        var rejectsFile: PrivateFile?
        var rejectsWriter: CSVWriter?
        defer { rejectsFile?.discard() }
        var summary = ImportSummary(rows: 0, added: 0, duplicates: 0, rejected: 0, forgotten: 0, rejectsFile: nil, reasons: [:], dryRun: request.dryRun,
                                    count: 0, columns: [:], ignoredColumns: mapping.ignoredColumns,
                                    delimiter: reader.delimiter == 9 ? "tab" : String(UnicodeScalar(reader.delimiter)))
        for (column, target) in zip(header.fields, mapping.targets) where target != .ignored {
            summary.columns[column] = target.description
        }

        func reject(line: Int, fields: [String], _ reason: String) throws {
            summary.rejected += 1
            // A bounded tally: a pathological file cannot grow it without limit.
            let key = redacted(reason)
            if summary.reasons[key] != nil || summary.reasons.count < 100 {
                summary.reasons[key, default: 0] += 1
            } else {
                summary.reasons["(other reasons)", default: 0] += 1
            }
            guard !request.dryRun else { return }
            if rejectsWriter == nil {
                let file = try PrivateFile(rejectsURL, permissions: 0o600)
                rejectsFile = file
                rejectsWriter = CSVWriter(descriptor: file.descriptor, neutralisesFormulas: true)
                try rejectsWriter!.write(["line", "reason"] + header.fields)
            }
            try rejectsWriter!.write([String(line), reason] + fields)
        }

        // Reading, validating and hashing run on a second thread, a few thousand rows
        // ahead of this one, which dedupes, chains and inserts.
        let channel = ImportChannel()
        let producer = ImportProducer(reader: reader, builder: rowBuilder, preparer: try ledger.signaturePreparer(),
                                      headerCount: header.fields.count, channel: channel)
        let thread = Thread { producer.run() }
        thread.stackSize = 4 << 20
        thread.start()
        defer { channel.cancel(); channel.waitUntilProducerExits() }

        // The first chunk gives an estimate of the rows in the file, which lets a big
        // import into a small ledger take the bulk path (see Ledger.appendBatches).
        var pending = try channel.take()
        var expected = 0
        if let first = pending, first.bytesRead > 0, fileSize > first.bytesRead {
            expected = Int(Double(first.rows) * Double(fileSize) / Double(first.bytesRead))
        } else if let first = pending {
            expected = first.rows
        }
        func nextChunk() throws -> ImportChunk? {
            if let first = pending {
                pending = nil
                return first
            }
            return try channel.take()
        }

        try ledger.appendBatches(commit: !request.dryRun, expectedCount: expected) { batch in
            while let chunk = try nextChunk() {
                if let error = chunk.failure { throw fileError(error) }
                summary.rows += chunk.rows
                summary.forgotten += chunk.forgotten
                summary.suspectedTypos += chunk.suspectedTypoLines.count
                summary.suspectedTypoLines += chunk.suspectedTypoLines.prefix(max(0, 1000 - summary.suspectedTypoLines.count))
                let (added, duplicates) = try batch.append(chunk.signatures)
                summary.added += added
                summary.duplicates += duplicates
                for row in chunk.rejected {
                    try reject(line: row.line, fields: row.fields, row.reason)
                }
                progress?(summary.rows, chunk.bytesRead)
            }
            progress?(summary.rows, fileSize)
            try rejectsWriter?.flush()
        }
        if request.dryRun {
            summary.count = !scratch ? try ledger.signatureCount() : 0
        } else {
            summary.count = try ledger.signatureCount()
            if let rejectsFile {
                try rejectsFile.commit()
                summary.rejectsFile = rejectsURL.path
            }
        }
        return summary
    }

    private static func wrap<T>(_ translate: (CSVFileError) -> MusterError, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as CSVFileError { throw translate(error) }
    }

    /// `message` with every quoted value replaced by `…`, so it can be printed and tallied.
    static func redacted(_ message: String) -> String {
        let characters = Array(message)
        var out = ""
        var inQuote = false
        for (index, character) in characters.enumerated() {
            let previous: Character = index > 0 ? characters[index - 1] : " "
            let next: Character = index + 1 < characters.count ? characters[index + 1] : " "
            if character == "'" && !inQuote && (previous == " " || previous == "(") {
                out += "'…"
                inQuote = true
            } else if character == "'" && inQuote && " ;,):".contains(next) {
                out.append("'")
                inQuote = false
            } else if !inQuote {
                out.append(character)
            }
        }
        if inQuote { out.append("'") }
        return out
    }
}

/// A row set aside, with why.
struct RejectedRow: Sendable {
    var line: Int
    var fields: [String]
    var reason: String
}

/// Rows handed from the reading thread to the writing one: the valid ones prepared and
/// packed in file order, the rejected ones on the side.
struct ImportChunk: Sendable {
    var signatures = PreparedBatch()
    var rejected: [RejectedRow] = []
    /// Rows read (valid, rejected and forgotten).
    var rows = 0
    /// Rows that are a forgotten signer (see `ImportSummary.forgotten`).
    var forgotten = 0
    /// Line numbers of valid rows whose domain looks mistyped (`TypoHint`).
    var suspectedTypoLines: [Int] = []
    var bytesRead = 0
    /// A file-level error: the import stops and nothing is written.
    var failure: CSVFileError?
}

/// A bounded queue of chunks between the two threads (memory stays flat).
final class ImportChannel: @unchecked Sendable {
    // Every field is guarded by `condition`.
    private let condition = NSCondition()
    private var chunks: [ImportChunk] = []
    private var finished = false
    private var cancelled = false
    private var producerExited = false
    static let capacity = 4

    /// Waits for room; false when the consumer gave up.
    func put(_ chunk: ImportChunk) -> Bool {
        condition.lock(); defer { condition.unlock() }
        while chunks.count >= Self.capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        chunks.append(chunk)
        condition.broadcast()
        return true
    }

    func finish() {
        condition.lock(); defer { condition.unlock() }
        finished = true
        producerExited = true
        condition.broadcast()
    }

    /// The next chunk, or nil when the producer is done.
    func take() throws -> ImportChunk? {
        condition.lock(); defer { condition.unlock() }
        while chunks.isEmpty && !finished { condition.wait() }
        if chunks.isEmpty { return nil }
        let chunk = chunks.removeFirst()
        condition.broadcast()
        return chunk
    }

    func cancel() {
        condition.lock(); defer { condition.unlock() }
        cancelled = true
        condition.broadcast()
    }

    func waitUntilProducerExits() {
        condition.lock(); defer { condition.unlock() }
        while !producerExited { condition.wait() }
    }
}

/// The reading thread: parses, validates and prepares rows in chunks.
final class ImportProducer: @unchecked Sendable {
    // Used only by the producer thread once started.
    let reader: CSVReader
    let builder: RowBuilder
    let preparer: SignaturePreparer
    let headerCount: Int
    let channel: ImportChannel
    /// Domains already looked up for typos (the producer thread's alone).
    var typos = TypoCache()
    static let chunkSize = 2048

    init(reader: CSVReader, builder: RowBuilder, preparer: SignaturePreparer, headerCount: Int, channel: ImportChannel) {
        self.reader = reader
        self.builder = builder
        self.preparer = preparer
        self.headerCount = headerCount
        self.channel = channel
    }

    func run() {
        defer { channel.finish() }
        var chunk = ImportChunk(signatures: PreparedBatch(capacity: Self.chunkSize))
        do {
            while let record = try reader.next() {
                chunk.rows += 1
                do {
                    let (signature, date) = try builder.signature(from: record.fields, headerCount: headerCount)
                    if typos.isSuspect(signature.canonicalEmail) { chunk.suspectedTypoLines.append(record.line) }
                    preparer.prepare(signature, at: date, into: &chunk.signatures)
                } catch is ForgottenRow {
                    chunk.forgotten += 1
                } catch let error as MusterError {
                    chunk.rejected.append(RejectedRow(line: record.line, fields: record.fields, reason: error.message))
                } catch {
                    chunk.rejected.append(RejectedRow(line: record.line, fields: record.fields, reason: "\(error)"))
                }
                if chunk.rows >= Self.chunkSize {
                    chunk.bytesRead = reader.bytesRead
                    guard channel.put(chunk) else { return }
                    chunk = ImportChunk(signatures: PreparedBatch(capacity: Self.chunkSize))
                }
            }
            chunk.bytesRead = reader.bytesRead
            _ = channel.put(chunk)
        } catch let error as CSVFileError {
            _ = channel.put(ImportChunk(bytesRead: reader.bytesRead, failure: error))
        } catch {
            _ = channel.put(ImportChunk(bytesRead: reader.bytesRead, failure: CSVFileError(line: 0, message: "\(error)")))
        }
    }
}

/// Thrown by `RowBuilder` for a row that is a forgotten signer: not an error, skipped.
struct ForgottenRow: Error {}

/// Turns one CSV row into a validated signature and its time.
struct RowBuilder {
    let mapping: ColumnMapping
    let manifest: Manifest
    let source: String
    let collector: String?
    let now: Date

    static let yes: Set<String> = ["yes", "y", "true", "1", "x", "oui", "o", "ja", "si", "sí", "on", "checked", "agreed", "subscribed", "✓", "✔"]
    static let no: Set<String> = ["", "no", "n", "false", "0", "non", "nein", "off", "unchecked", "unsubscribed"]

    func signature(from fields: [String], headerCount: Int) throws -> (ValidSignature, Date) {
        if fields.count > headerCount {
            throw MusterError.badInput("the row has \(fields.count) columns; the header has \(headerCount)")
        }
        var name = "", first = "", last = "", email = ""
        var comment: String?
        var signedAt: String?
        var rowSource: String?, rowCollector: String?
        var values: [String: String] = [:]
        var consents: [String] = []
        for (index, target) in mapping.targets.enumerated() where index < fields.count {
            let raw = CSVWriter.unneutralised(fields[index])
            switch target {
            case .ignored: continue
            case .name: name = raw
            case .firstName: first = raw
            case .lastName: last = raw
            case .email: email = raw
            case .comment: comment = raw
            case .signedAt: signedAt = raw
            case .source: rowSource = raw
            case .collector: rowCollector = raw
            case .field(let key): if !raw.isEmpty { values[key] = raw }
            case .consents:
                for key in raw.split(whereSeparator: { $0 == ";" || $0 == "," || $0 == "|" }) {
                    let trimmed = TextField.trimmed(String(key))
                    if !trimmed.isEmpty { consents.append(trimmed) }
                }
            case .consent(let key):
                let answer = TextField.trimmed(raw).lowercased()
                if Self.yes.contains(answer) || manifest.consents.contains(where: { $0.key == key && $0.text.lowercased() == answer }) {
                    consents.append(key)
                } else if !Self.no.contains(answer) {
                    throw MusterError.badInput("consent \(key) '\(SignatureInput.shown(raw))' is neither yes nor no")
                }
            }
        }
        // What `export` writes for a forgotten signer: the time and the non-personal parts,
        // no name, email, comment or personal field. Nobody to add; not a bad row either.
        if let signedAt, !Self.isBlank(signedAt), Self.isBlank(name), Self.isBlank(first), Self.isBlank(last), Self.isBlank(email),
           Self.isBlank(comment ?? ""), !manifest.fields.contains(where: { $0.personal && !Self.isBlank(values[$0.name] ?? "") }) {
            throw ForgottenRow()
        }
        if Self.isBlank(name) {
            name = [first, last].map { TextField.trimmed($0) }.filter { !$0.isEmpty }.joined(separator: " ")
        }
        let rowSourceValue = rowSource.flatMap { Self.isBlank($0) ? nil : $0 } ?? source
        let rowCollectorValue = rowCollector.flatMap { Self.isBlank($0) ? nil : $0 } ?? collector
        let input = SignatureInput(name: name, email: email, comment: comment, fields: values, consents: consents,
                                   source: rowSourceValue, collector: rowCollectorValue)
        let signature = try input.validated(against: manifest)
        var date = now
        if let signedAt, !Self.isBlank(signedAt) {
            guard let parsed = ImportDate.parse(signedAt) else {
                throw MusterError.badInput("signed_at '\(SignatureInput.shown(signedAt))' is not a date and time such as 2026-11-26T14:03:00Z")
            }
            if parsed > now.addingTimeInterval(60) {
                throw MusterError.badInput("signed_at '\(signedAt)' is in the future")
            }
            date = parsed
        }
        return (signature, date)
    }

    /// Empty or only spaces and tabs (checked without building a new string).
    static func isBlank(_ text: String) -> Bool {
        for byte in text.utf8 where byte != 32 && byte != 9 {
            return byte < 0x80 ? false : TextField.trimmed(text).isEmpty
        }
        return true
    }
}

/// Dates and times as exports write them.
public enum ImportDate {
    /// ISO 8601 / RFC 3339 with `Z` or an offset (`+02:00`, `+0200`), `YYYY-MM-DD HH:MM[:SS]`
    /// taken as UTC, a bare `YYYY-MM-DD`, and Google Forms' `M/D/YYYY H:MM:SS` (US order, UTC).
    public static func parse(_ raw: String) -> Date? {
        let text = TextField.trimmed(raw)
        if let date = Timestamp.parse(text) { return date }
        var bytes = Array(text.utf8)
        // M/D/YYYY[ H:MM[:SS]]
        if let slash = bytes.firstIndex(of: UInt8(ascii: "/")), slash <= 2 {
            let parts = text.split(separator: " ", maxSplits: 1)
            let date = parts[0].split(separator: "/")
            guard date.count == 3, let month = Int(date[0]), let day = Int(date[1]), let year = Int(date[2]), date[2].count == 4 else { return nil }
            var time = "00:00:00"
            if parts.count == 2 {
                let pieces = parts[1].split(separator: ":")
                guard pieces.count >= 2, pieces.count <= 3, pieces.allSatisfy({ Int($0) != nil && $0.count <= 2 }) else { return nil }
                time = pieces.map { $0.count == 1 ? "0" + $0 : String($0) }.joined(separator: ":") + (pieces.count == 2 ? ":00" : "")
            }
            return Timestamp.parse(String(format: "%04d-%02d-%02dT%@Z", year, month, day, time))
        }
        guard bytes.count >= 16 else { return nil }
        // An offset at the end: ±HH:MM or ±HHMM.
        var offset = 0
        if bytes.count >= 22, let sign = [UInt8(ascii: "+"), UInt8(ascii: "-")].first(where: { bytes[bytes.count - 6] == $0 || bytes[bytes.count - 5] == $0 }) {
            let compact = bytes[bytes.count - 5] == sign
            let zone = Array(bytes[(bytes.count - (compact ? 5 : 6))...])
            let digits = zone.dropFirst().filter { $0 != UInt8(ascii: ":") }
            guard digits.count == 4, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            let value = digits.map { Int($0 - 48) }
            offset = (value[0] * 10 + value[1]) * 3600 + (value[2] * 10 + value[3]) * 60
            if sign == UInt8(ascii: "-") { offset = -offset }
            bytes.removeLast(zone.count)
        } else if bytes.last == UInt8(ascii: "Z") || bytes.last == UInt8(ascii: "z") {
            bytes.removeLast()
        }
        var local = String(decoding: bytes, as: UTF8.self)
        if local.utf8.count == 16 { local += ":00" }
        guard let date = Timestamp.parse(local + "Z") else { return nil }
        return date.addingTimeInterval(Double(-offset))
    }
}

/// `TypoHint` per domain, remembered: an import sees the same few domains over and over.
struct TypoCache {
    private var seen: [Substring: Bool] = [:]

    mutating func isSuspect(_ canonicalEmail: String) -> Bool {
        guard let at = canonicalEmail.lastIndex(of: "@") else { return false }
        let domain = canonicalEmail[canonicalEmail.index(after: at)...]
        if let known = seen[domain] { return known }
        let suspect = TypoHint.suggestion(forDomain: String(domain)) != nil
        if seen.count >= 65_536 { seen.removeAll(keepingCapacity: true) }
        seen[domain] = suspect
        return suspect
    }
}
