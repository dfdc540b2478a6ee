import Crypto
import Foundation

/// The volunteer's passphrase that ends a kiosk session, kept only as a salted digest.
public struct KioskPassphrase: Sendable {
    /// Shortest passphrase accepted, in characters.
    public static let minimumLength = 6
    private let salt: [UInt8]
    private let digest: [UInt8]

    public init(_ text: String) {
        var generator = SystemRandomNumberGenerator()
        salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        digest = Self.digest(text, salt: salt)
    }

    private static func digest(_ text: String, salt: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: salt + Array(text.precomposedStringWithCanonicalMapping.utf8)))
    }

    /// Whether `text` is the passphrase (compared in constant time).
    public func matches(_ text: String) -> Bool {
        zip(digest, Self.digest(text, salt: salt)).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// A stall's signing session, locked: prompts for each field the manifest declares,
/// the consents and an optional comment, validates, shows everything for
/// confirmation, records, clears the screen, next. Ctrl-C abandons the entry being
/// typed (counted as discarded if anything was typed) and starts over; Ctrl-D on
/// an empty Name line asks for the volunteer's passphrase, and only that passphrase
/// ends the session. SIGTERM or SIGHUP (via the console) end it too.
public struct KioskSession {
    /// What a session did.
    public struct Tally: Sendable, Codable, Equatable {
        public var added = 0
        public var duplicates = 0
        /// Entries declined at the confirmation, or abandoned half-typed.
        public var discarded = 0
        /// Confirmed entries the ledger could not take (e.g. disk full).
        public var not_recorded = 0
        /// Signatures in the ledger at the end.
        public var count: Int64 = 0
        public init() {}
    }

    /// How a session ended.
    public enum Ending: Equatable, Sendable {
        /// The volunteer typed the passphrase.
        case passphrase
        /// A signal (SIGTERM, SIGHUP) or the terminal going away.
        case signal(Int32)
    }

    /// Erases the screen and the scrollback, so nobody can read what came before.
    public static let clearScreen = "\u{1B}[H\u{1B}[2J\u{1B}[3J"

    let manifest: Manifest
    let ledger: Ledger
    let clock: Clock
    let source: String
    let collector: String?
    /// Pause after a wrong passphrase, doubled each time up to 30 s (seconds; tests may shorten it).
    let wrongPassphrasePause: Double

    public init(manifest: Manifest, ledger: Ledger, clock: Clock, source: String, collector: String?,
                wrongPassphrasePause: Double = 1) {
        self.manifest = manifest
        self.ledger = ledger
        self.clock = clock
        self.source = source
        self.collector = collector
        self.wrongPassphrasePause = wrongPassphrasePause
    }

    /// Asks the volunteer to choose the passphrase, typed twice, not shown.
    /// nil if they gave up (Ctrl-C, or Ctrl-D on an empty line); throws `Stop` on a signal.
    public static func choosePassphrase(console: inout some KioskConsole) throws(Stop) -> KioskPassphrase? {
        console.write("Choose the volunteer passphrase that will end this kiosk session (at least \(KioskPassphrase.minimumLength) characters; it is not shown).\n")
        while true {
            guard let first = try readSecret("Passphrase: ", console: &console) else { return nil }
            guard first.count >= KioskPassphrase.minimumLength else {
                console.write("  ! too short: at least \(KioskPassphrase.minimumLength) characters\n")
                continue
            }
            guard let second = try readSecret("Type it again: ", console: &console) else { return nil }
            if first == second { return KioskPassphrase(first) }
            console.write("  ! the two differ; choose again\n")
        }
    }

    /// A signal ended the session before it began.
    public struct Stop: Error { public let signal: Int32 }

    private static func readSecret(_ prompt: String, console: inout some KioskConsole) throws(Stop) -> String? {
        while true {
            switch console.read(prompt: prompt, secret: true) {
            case .line(let text): return text
            case .invalidUTF8: console.write("  ! that was not valid UTF-8 text; please type it again\n")
            case .interrupted, .endRequested: console.write("\n"); return nil
            case .terminated(let signal): throw Stop(signal: signal)
            }
        }
    }

    private enum Flow: Error {
        /// Start over (Ctrl-C); `discard` if a half-typed entry is abandoned.
        case restart(discard: Bool)
        case end(Ending)
    }

    /// Checks the session's own settings (the collector's name), before the terminal is locked.
    public func check() throws {
        if let collector {
            _ = try SignatureInput.checkText(collector, field: "collector (--by)", limit: SignatureLimits.label)
        }
        try ledger.ensureWritable()
    }

    /// Runs until the passphrase (or a signal) ends it; returns the tally and how it ended.
    /// Ledger errors on opening throw; a signature the ledger cannot take is reported
    /// on screen and the kiosk stays locked.
    public func run(console: inout some KioskConsole, passphrase: KioskPassphrase) throws -> (Tally, Ending) {
        try check()
        var tally = Tally()
        tally.count = try ledger.signatureCount()
        var failures = 0
        var notice: String?
        while true {
            console.write(Self.clearScreen)
            console.write("\(manifest.title) — \(Number.grouped(tally.count)) of \(Number.grouped(Int64(manifest.goal))) signatures\n")
            console.write("Ctrl-C starts over; nothing is recorded until you confirm.\n\n")
            if let text = notice { console.write(text + "\n\n") }
            notice = nil
            var started = false
            do {
                var signature = SignatureInput(name: "", email: "", source: source, collector: collector)
                signature.name = try ask("Name", console: &console, started: &started, first: true,
                                         passphrase: passphrase, failures: &failures) { try SignatureInput.validatedName($0) }
                signature.email = try ask("Email", console: &console, started: &started) { raw in
                    _ = try SignatureInput.validatedEmail(raw)
                    return TextField.clean(raw)
                }
                // A domain one slip from a common provider (gmial.com): ask before recording.
                if let corrected = Self.typoCorrection(signature.email),
                   try askYesNo("Did you mean \(corrected)? [y/N]", default: false, console: &console, started: &started) {
                    signature.email = corrected
                }
                for field in manifest.fields {
                    var prompt = field.label ?? field.name
                    if let options = field.options { prompt += " (\(options.joined(separator: ", ")))" }
                    if !field.required { prompt += " [optional]" }
                    let value = try ask(prompt, console: &console, started: &started) { try SignatureInput.validatedField($0, field) ?? "" }
                    if !value.isEmpty { signature.fields[field.name] = value }
                }
                for consent in manifest.consents {
                    if try askYesNo("\(consent.text)? [y/N]", default: false, console: &console, started: &started) {
                        signature.consents.append(consent.key)
                    }
                }
                let comment = try ask("Comment [optional]", console: &console, started: &started) { raw in
                    try SignatureInput.checkText(raw, field: "comment", limit: SignatureLimits.comment)
                }
                signature.comment = comment.isEmpty ? nil : comment
                let valid = try signature.validated(against: manifest)
                console.write("\nPlease check:\n  \(valid.name) <\(valid.email)>\n")
                let details = (valid.publicFields.merging(valid.personalFields) { a, _ in a }).sorted { $0.key < $1.key }
                for field in manifest.fields {
                    if let value = details.first(where: { $0.key == field.name })?.value {
                        console.write("  \(field.label ?? field.name): \(value)\n")
                    }
                }
                for consent in manifest.consents {
                    console.write("  \(consent.text): \(valid.consents.contains(consent.key) ? "yes" : "no")\n")
                }
                if let comment = valid.comment { console.write("  Comment: \(comment)\n") }
                guard try askYesNo("Sign now? [Y/n]", default: true, console: &console, started: &started) else {
                    tally.discarded += 1
                    notice = "Discarded; nothing was recorded."
                    continue
                }
                do {
                    switch try ledger.append(valid, at: clock.now()) {
                    case .added(_, let count):
                        tally.added += 1
                        tally.count = count
                        notice = "✓ Signed — thank you! \(Number.grouped(count)) of \(Number.grouped(Int64(manifest.goal)))."
                    case .duplicate(let first, let count):
                        tally.duplicates += 1
                        tally.count = count
                        notice = "This address already signed on \(first.prefix(10)) — thank you!"
                    }
                } catch let error as MusterError {
                    // The kiosk stays locked: only the volunteer's passphrase ends it.
                    tally.not_recorded += 1
                    notice = "! Not recorded: \(error.message). Please tell the volunteer."
                }
            } catch Flow.restart(let discard) {
                if discard {
                    tally.discarded += 1
                    notice = "Started over; nothing was recorded."
                }
            } catch let error as MusterError {
                // Each answer was checked as it was typed; this is the whole entry's last check.
                tally.discarded += 1
                notice = "! \(error.message); nothing was recorded."
            } catch Flow.end(let ending) {
                if started { tally.discarded += 1 }
                console.write(Self.clearScreen)
                return (tally, ending)
            }
        }
    }

    /// The typed address with its domain replaced by the provider it is one slip from,
    /// or nil (`TypoHint`). Only what the signer just typed is shown back.
    static func typoCorrection(_ typed: String) -> String? {
        guard let canonical = try? EmailAddress.canonical(typed),
              let at = canonical.lastIndex(of: "@"),
              let provider = TypoHint.suggestion(forDomain: String(canonical[canonical.index(after: at)...])),
              let typedAt = typed.lastIndex(of: "@") else { return nil }
        return String(typed[..<typedAt]) + "@" + provider
    }

    /// The line that ends a session's screen.
    public static func summary(_ tally: Tally) -> String {
        "Session ended: \(tally.added) added, \(tally.duplicates) duplicate\(tally.duplicates == 1 ? "" : "s"), \(tally.discarded) discarded"
            + (tally.not_recorded > 0 ? ", \(tally.not_recorded) not recorded" : "")
            + "; \(Number.grouped(tally.count)) signature\(tally.count == 1 ? "" : "s") in all.\n"
    }

    /// Asks until `validate` accepts the answer. At the first prompt, Ctrl-D on an
    /// empty line asks for the passphrase; elsewhere it is ignored.
    private func ask(_ prompt: String, console: inout some KioskConsole, started: inout Bool, first: Bool = false,
                     passphrase: KioskPassphrase? = nil, failures: inout Int,
                     validate: (String) throws -> String) throws(Flow) -> String {
        while true {
            switch console.read(prompt: "\(prompt): ", secret: false) {
            case .line(let line):
                if !line.isEmpty { started = true }
                do {
                    return try validate(line)
                } catch let error as MusterError {
                    console.write("  ! \(error.message)\n")
                } catch {
                    console.write("  ! \(error)\n")
                }
            case .invalidUTF8(let offset):
                started = true
                console.write("  ! that was not valid UTF-8 text (at byte \(offset + 1)); please type it again\n")
            case .interrupted(let hadText):
                throw Flow.restart(discard: started || hadText)
            case .endRequested:
                guard first, let passphrase else { continue }
                switch console.read(prompt: "Volunteer passphrase to end the session (Enter to go back): ", secret: true) {
                case .line(let text) where !text.isEmpty:
                    if passphrase.matches(text) { throw Flow.end(.passphrase) }
                    failures += 1
                    console.write("  ! wrong passphrase; the kiosk goes on\n")
                    let pause = min(wrongPassphrasePause * Double(1 << min(failures - 1, 5)), 30)
                    if pause > 0 { Thread.sleep(forTimeInterval: pause) }
                case .terminated(let signal):
                    throw Flow.end(.signal(signal))
                default:
                    console.write("\n")
                }
            case .terminated(let signal):
                throw Flow.end(.signal(signal))
            }
        }
    }

    private func ask(_ prompt: String, console: inout some KioskConsole, started: inout Bool,
                     validate: (String) throws -> String) throws(Flow) -> String {
        var unused = 0
        return try ask(prompt, console: &console, started: &started, failures: &unused, validate: validate)
    }

    private func askYesNo(_ prompt: String, default defaultAnswer: Bool, console: inout some KioskConsole,
                          started: inout Bool) throws(Flow) -> Bool {
        let answer = try ask(prompt, console: &console, started: &started) { raw in
            let text = raw.trimmingCharacters(in: .whitespaces).lowercased()
            if text.isEmpty { return defaultAnswer ? "y" : "n" }
            if ["y", "yes", "o", "oui", "j", "ja", "s", "si", "sí"].contains(text) { return "y" }
            if ["n", "no", "non", "nein"].contains(text) { return "n" }
            throw MusterError.badInput("please answer y or n")
        }
        return answer == "y"
    }
}
