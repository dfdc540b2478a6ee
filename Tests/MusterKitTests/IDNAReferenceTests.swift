import Foundation
import Testing
@testable import MusterKit

/// muster's domain names against an independent reference: Unicode's UTS #46
/// conformance cases and Python's `idna` package (Tests/support/idna_reference.py, from
/// the pinned sdist scripts/setup fetches). Missing reference files fail these tests.
///
/// Where muster and the reference disagree by design, the case must fall in one of the
/// classes below (in the README, "Who counts as one person"); anything else fails.
enum Disagreement: String, CaseIterable, Sendable {
    /// Valid for UTS #46 alone (IdnaTestV2 13.0 dropped its NV8 marks) but DISALLOWED by
    /// IDNA2008 (RFC 5892): muster (libidn2) and the reference both refuse.
    case idna2008Stricter
    /// IdnaTestV2 13.0 applies the bidi rule across labels (`0à.א`); RFC 5893 per label:
    /// muster and the reference both accept, with the same answer (the reference lists
    /// these as errors in the test file).
    case crossLabelBidi
    /// An all-ASCII label with `--` in positions 3-4 that is not `xn--`: such host names
    /// exist and receive mail; muster keeps them as typed, UTS #46 CheckHyphens refuses.
    case asciiDoubleHyphen
    /// Latin, Greek and Cyrillic letters mixed in one label: muster refuses (a spoof no
    /// registry allows); IDNA does not forbid it.
    case mixedScripts
    /// RFC 5892's CONTEXTO rules (middle dot, keraia, geresh, katakana middle dot) are
    /// for registries; libidn2 does not apply them at lookup, the reference does.
    case contextO
    /// A code point assigned after Unicode 12.0, the IDNA2008 table of libidn2 2.3.3
    /// (Debian 12): muster refuses it until Debian's libidn2 knows it.
    case newerUnicode
}

/// Runs the reference script and decodes its JSON.
enum IDNAReference {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Answer: Decodable, Sendable { let ascii: String?; let unicode: String?; let error: String? }
    struct Vector: Decodable, Sendable {
        let line: Int
        let source: String
        let status: String
        let expected: String?
        let reference_skips: Bool
        let reference: Answer
    }
    struct Vectors: Decodable, Sendable { let version: String; let cases: [Vector] }
    struct Generated: Decodable, Sendable { let kind: String; let domain: String; let ascii: String?; let unicode: String?; let error: String? }
    struct Differential: Decodable, Sendable { let version: String; let seed: Int; let cases: [Generated] }

    static func run<T: Decodable>(_ arguments: [String], as type: T.Type) throws -> T {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", packageRoot.appendingPathComponent("Tests/support/idna_reference.py").path] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ReferenceMissing(message: "idna_reference.py \(arguments.joined(separator: " ")) failed: \(message)")
        }
        return try JSONDecoder().decode(T.self, from: data)
    }

    struct ReferenceMissing: Error, CustomStringConvertible { let message: String; var description: String { message } }

    /// muster's answer for `domain`.
    static func muster(_ domain: String) -> Result<String, IDNA.Failure> {
        Result { () throws(IDNA.Failure) -> String in try IDNA.toASCII(domain) }
    }

    static func hasASCIIDoubleHyphenLabel(_ domain: String) -> Bool {
        IDNA.split(domain).contains { label in
            let text = String(String.UnicodeScalarView(label)).lowercased()
            return text.unicodeScalars.allSatisfy(\.isASCII) && text.count >= 4 && !text.hasPrefix("xn--")
                && Array(text.utf8)[2] == 0x2D && Array(text.utf8)[3] == 0x2D
        }
    }

    static func hasNewerThanUnicode12(_ domain: String) -> Bool {
        domain.unicodeScalars.contains { scalar in
            guard let age = scalar.properties.age else { return false }
            return age.major > 12
        }
    }

    /// A refusal of a code point (directly, or inside an xn-- label).
    static func isCharacterRefusal(_ failure: IDNA.Failure) -> Bool {
        switch failure {
        case .disallowed, .invalidALabel: return true
        default: return false
        }
    }

    static let contextOScalars: Set<UInt32> = [0x00B7, 0x0375, 0x05F3, 0x05F4, 0x30FB]
}

@Suite(.serialized) struct IDNAReferenceTests {
    /// Every UTS #46 conformance case (ToASCII, non-transitional) through `IDNA.toASCII`.
    @Test func conformanceCasesFromIdnaTestV2() throws {
        let vectors = try IDNAReference.run(["vectors"], as: IDNAReference.Vectors.self)
        #expect(vectors.cases.count > 6000, "IdnaTestV2.txt has over 6,000 cases; got \(vectors.cases.count)")
        var agreed = 0
        var classes: [Disagreement: Int] = [:]
        for vector in vectors.cases {
            let ours = IDNAReference.muster(vector.source)
            let context = "IdnaTestV2.txt line \(vector.line): \(vector.source.unicodeScalars.map { $0.isASCII ? String($0) : IDNA.show($0) }.joined()) status \(vector.status)"
            switch (vector.expected, ours) {
            case (let expected?, .success(let ascii)):
                #expect(ascii == expected, "\(context): muster \(ascii), expected \(expected)")
                agreed += 1
            case (nil, .failure):
                agreed += 1
            case (.some, .failure(let failure)):
                if vector.reference.ascii == nil, case .disallowed = failure {
                    classes[.idna2008Stricter, default: 0] += 1
                } else if vector.reference.ascii == nil, case .invalidALabel = failure {
                    classes[.idna2008Stricter, default: 0] += 1
                } else if case .mixedScripts = failure, vector.reference.ascii != nil {
                    classes[.mixedScripts, default: 0] += 1
                } else if IDNAReference.hasNewerThanUnicode12(vector.reference.unicode ?? vector.source), IDNAReference.isCharacterRefusal(failure) {
                    classes[.newerUnicode, default: 0] += 1
                } else {
                    Issue.record("\(context): muster refuses (\(failure)), the conformance case and reference accept")
                }
            case (nil, .success(let ascii)):
                if vector.reference_skips, vector.reference.ascii == ascii, vector.status.contains("B") {
                    classes[.crossLabelBidi, default: 0] += 1
                } else if IDNAReference.hasASCIIDoubleHyphenLabel(vector.source), vector.reference.ascii == nil {
                    classes[.asciiDoubleHyphen, default: 0] += 1
                } else {
                    Issue.record("\(context): muster accepts as \(ascii), the conformance case expects an error")
                }
            }
        }
        // The classes this file exercises today: a class that disappears means the docs are stale.
        #expect(classes[.idna2008Stricter, default: 0] > 0 && classes[.crossLabelBidi, default: 0] > 0, "\(classes)")
        #expect(agreed > 6000, "agreed on \(agreed) of \(vectors.cases.count)")
    }

    /// A few thousand generated names: muster equals the reference for every valid one and
    /// refuses the invalid ones, except the documented classes.
    @Test func differentialAgainstPythonIdna() throws {
        let generated = try IDNAReference.run(["differential", "15", "3000"], as: IDNAReference.Differential.self)
        #expect(generated.cases.count == 3000)
        var classes: [Disagreement: Int] = [:]
        var validByKind: [String: Int] = [:], invalidByKind: [String: Int] = [:]
        for item in generated.cases {
            let ours = IDNAReference.muster(item.domain)
            let context = "\(item.kind) \(item.domain.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : IDNA.show($0) }.joined())"
            switch (item.ascii, ours) {
            case (let reference?, .success(let ascii)):
                #expect(ascii == reference, "\(context): muster \(ascii), reference \(reference)")
                validByKind[item.kind, default: 0] += 1
                // The address-level domain: the same, without the root dot, needing two labels.
                let bare = ascii.hasSuffix(".") ? String(ascii.dropLast()) : ascii
                if bare.contains(".") { #expect(try EmailAddress.canonicalDomain(item.domain) == bare, "\(context)") }
            case (nil, .failure):
                invalidByKind[item.kind, default: 0] += 1
                #expect(throws: EmailAddress.Problem.self, "\(context)") { try EmailAddress.canonicalDomain(item.domain) }
            case (.some, .failure(let failure)):
                if case .mixedScripts = failure {
                    classes[.mixedScripts, default: 0] += 1
                } else if IDNAReference.hasNewerThanUnicode12(item.unicode ?? item.domain), IDNAReference.isCharacterRefusal(failure) {
                    classes[.newerUnicode, default: 0] += 1
                } else {
                    Issue.record("\(context): muster refuses (\(failure)), the reference accepts as \(item.ascii ?? "")")
                }
            case (nil, .success(let ascii)):
                if IDNAReference.hasASCIIDoubleHyphenLabel(item.domain) {
                    classes[.asciiDoubleHyphen, default: 0] += 1
                } else if item.domain.unicodeScalars.contains(where: { IDNAReference.contextOScalars.contains($0.value) }) {
                    classes[.contextO, default: 0] += 1
                } else {
                    Issue.record("\(context): muster accepts as \(ascii), the reference refuses: \(item.error ?? "")")
                }
            }
        }
        // Every generator class produced both outcomes where it can, so the comparison is not vacuous.
        for kind in ["ascii", "fullwidth", "compat", "dots", "scripts", "mixed", "bidi", "long", "xn"] {
            #expect(validByKind[kind, default: 0] > 0, "no valid \(kind) names")
        }
        for kind in ["compat", "dots", "bidi", "long", "xn", "invalid", "joiners"] {
            #expect(invalidByKind[kind, default: 0] > 0, "no invalid \(kind) names")
        }
        for expected in [Disagreement.mixedScripts, .asciiDoubleHyphen, .contextO, .newerUnicode] {
            #expect(classes[expected, default: 0] > 0, "the documented class \(expected) did not occur: \(classes)")
        }
    }
}
