import Foundation

/// Where the kiosk reads typed lines from.
public protocol LineSource {
    /// The next line without its line ending; nil at end of input (Ctrl-D).
    /// Throws `LineSourceError.invalidUTF8` for a line that is not UTF-8.
    mutating func readLine() throws -> String?
}

/// Problems reading a line.
public enum LineSourceError: Error, Equatable {
    case invalidUTF8(byteOffset: Int)
    case tooLong
}

/// Reads lines from a file descriptor (standard input), byte by byte in chunks,
/// strictly as UTF-8, so invalid input is refused rather than silently repaired.
public struct FileDescriptorLineSource: LineSource {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var finished = false
    static let maximumLineBytes = 64 * 1024

    public init(descriptor: Int32 = STDIN_FILENO) { self.descriptor = descriptor }

    public mutating func readLine() throws -> String? {
        while true {
            if let newline = buffer.firstIndex(of: 10) {
                var line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if line.last == 13 { line.removeLast() }
                return try Self.decode(line)
            }
            if buffer.count > Self.maximumLineBytes {
                buffer.removeAll()
                throw LineSourceError.tooLong
            }
            if finished {
                guard !buffer.isEmpty else { return nil }
                let line = buffer
                buffer.removeAll()
                return try Self.decode(line)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { Foundation.read(descriptor, $0.baseAddress, 4096) }
            if count < 0 {
                if errno == EINTR { continue }
                finished = true
            } else if count == 0 {
                finished = true
            } else {
                buffer.append(contentsOf: chunk[..<count])
            }
        }
    }

    static func decode(_ bytes: [UInt8]) throws -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while case .scalarValue(let scalar) = decoder.decode(&iterator) { offset += UTF8.width(scalar) }
        throw LineSourceError.invalidUTF8(byteOffset: offset)
    }
}

/// Lines given up front (for tests).
public struct ArrayLineSource: LineSource {
    private var lines: [String]
    public init(_ lines: [String]) { self.lines = lines }
    public mutating func readLine() throws -> String? { lines.isEmpty ? nil : lines.removeFirst() }
}

/// A stall's signing session: prompts for each field the manifest declares,
/// validates, confirms, records, clears the screen, next — until end of input.
public struct KioskSession {
    /// What a session did.
    public struct Tally: Sendable, Codable, Equatable {
        public var added = 0
        public var duplicates = 0
        public var discarded = 0
        /// Signatures in the ledger at the end.
        public var count: Int64 = 0
    }

    let manifest: Manifest
    let ledger: Ledger
    let clock: Clock
    let source: String
    let collector: String?
    /// Clear the screen between signers (only on a terminal).
    let clearsScreen: Bool
    /// Write each answer after its prompt (when input is piped, nothing else shows it).
    let echoesInput: Bool
    let write: (String) -> Void

    public init(manifest: Manifest, ledger: Ledger, clock: Clock, source: String, collector: String?,
                clearsScreen: Bool, echoesInput: Bool = false, write: @escaping (String) -> Void) {
        self.manifest = manifest
        self.ledger = ledger
        self.clock = clock
        self.source = source
        self.collector = collector
        self.clearsScreen = clearsScreen
        self.echoesInput = echoesInput
        self.write = write
    }

    private struct EndOfInput: Error {}

    /// Runs until `input` ends; returns the tally. Ledger errors end the session by throwing.
    public func run(input: inout some LineSource) throws -> Tally {
        var tally = Tally()
        tally.count = try ledger.signatureCount()
        if let collector {
            _ = try SignatureInput.checkText(collector, field: "collector (--by)", limit: SignatureLimits.label)
        }
        write("\(manifest.title) — \(Number.grouped(tally.count)) of \(Number.grouped(Int64(manifest.goal))) signatures\n")
        write("Press Ctrl-D to end the session.\n\n")
        while true {
            do {
                var signature = SignatureInput(name: "", email: "", source: source, collector: collector)
                signature.name = try ask("Name", input: &input) { try SignatureInput.validatedName($0) }
                signature.email = try ask("Email", input: &input) { raw in
                    _ = try SignatureInput.validatedEmail(raw)
                    return TextField.clean(raw)
                }
                for field in manifest.fields {
                    var prompt = field.label ?? field.name
                    if let options = field.options { prompt += " (\(options.joined(separator: ", ")))" }
                    if !field.required { prompt += " [optional]" }
                    let value = try ask(prompt, input: &input) { try SignatureInput.validatedField($0, field) ?? "" }
                    if !value.isEmpty { signature.fields[field.name] = value }
                }
                for consent in manifest.consents {
                    if try askYesNo("\(consent.text)? [y/N]", default: false, input: &input) {
                        signature.consents.append(consent.key)
                    }
                }
                let valid = try signature.validated(against: manifest)
                write("\n  \(valid.name) <\(valid.email)>")
                let details = (valid.publicFields.merging(valid.personalFields) { a, _ in a }).sorted { $0.key < $1.key }
                for (key, value) in details { write(", \(key): \(value)") }
                write("\n")
                guard try askYesNo("Sign now? [Y/n]", default: true, input: &input) else {
                    tally.discarded += 1
                    clear()
                    write("Discarded; nothing was recorded.\n\n")
                    continue
                }
                let outcome = try ledger.append(valid, at: clock.now())
                clear()
                switch outcome {
                case .added(_, let count):
                    tally.added += 1
                    tally.count = count
                    write("✓ Signed — thank you! \(Number.grouped(count)) of \(Number.grouped(Int64(manifest.goal))).\n\n")
                case .duplicate(let first, let count):
                    tally.duplicates += 1
                    tally.count = count
                    write("This address already signed on \(first.prefix(10)) — thank you!\n\n")
                }
            } catch is EndOfInput {
                clear()
                write("\nSession ended: \(tally.added) added, \(tally.duplicates) duplicate\(tally.duplicates == 1 ? "" : "s"), \(tally.discarded) discarded; \(Number.grouped(tally.count)) signature\(tally.count == 1 ? "" : "s") in all.\n")
                return tally
            }
        }
    }

    private func clear() {
        // Erase the screen and the scrollback, so the next signer cannot read the last one.
        if clearsScreen { write("\u{1B}[H\u{1B}[2J\u{1B}[3J") }
    }

    /// Asks until `validate` accepts the answer; end of input throws EndOfInput.
    private func ask(_ prompt: String, input: inout some LineSource, validate: (String) throws -> String) throws -> String {
        while true {
            write("\(prompt): ")
            let line: String
            do {
                guard let read = try input.readLine() else { throw EndOfInput() }
                line = read
                if echoesInput { write(line + "\n") }
            } catch let error as LineSourceError {
                write("\n  ! " + (error == .tooLong ? "that line is too long" : "that was not valid UTF-8 text") + "; please type it again\n")
                continue
            }
            do {
                return try validate(line)
            } catch let error as MusterError {
                write("  ! \(error.message)\n")
            }
        }
    }

    private func askYesNo(_ prompt: String, default defaultAnswer: Bool, input: inout some LineSource) throws -> Bool {
        let answer = try ask(prompt, input: &input) { raw in
            let text = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if text.isEmpty { return defaultAnswer ? "y" : "n" }
            if ["y", "yes", "o", "oui", "j", "ja", "s", "si", "sí"].contains(text) { return "y" }
            if ["n", "no", "non", "nein"].contains(text) { return "n" }
            throw MusterError.badInput("please answer y or n")
        }
        return answer == "y"
    }
}
