import Foundation
import Testing
@testable import MusterKit

@Suite struct CanonicalBodyTests {
    @Test func typedWriterMatchesTheDictionaryEncoder() {
        let signature = ValidSignature(canonicalEmail: "ana@example.org", name: "Ana \"Q\" Lima", email: "Ana@Example.org",
                                       comment: "tab\tand é", publicFields: ["region": "Lyon", "profession": "other"],
                                       personalFields: ["languages": "EN>FR", "age": "40"], consents: ["organising", "updates"],
                                       source: "import", collector: "Sam")
        #expect(Ledger.canonical(.body, of: signature) == CanonicalJSON.encode([
            "source": "import", "collector": "Sam", "consent": ["organising", "updates"],
            "fields": ["region": "Lyon", "profession": "other"],
        ] as [String: Any]))
        #expect(Ledger.canonical(.personal, of: signature) == CanonicalJSON.encode([
            "name": "Ana \"Q\" Lima", "email": "Ana@Example.org", "comment": "tab\tand é",
            "fields": ["languages": "EN>FR", "age": "40"],
        ] as [String: Any]))
        let bare = ValidSignature(canonicalEmail: "b@example.org", name: "B", email: "b@example.org", comment: nil,
                                  publicFields: [:], personalFields: [:], consents: [], source: "cli", collector: nil)
        #expect(Ledger.canonical(.body, of: bare) == #"{"source":"cli"}"#)
        #expect(Ledger.canonical(.personal, of: bare) == #"{"email":"b@example.org","name":"B"}"#)
    }

    @Test func timestampsAreWrittenAsBefore() {
        for seconds in [0.0, 1.999, 951_782_400.5, 1_795_000_000.123, 4_102_444_799.999] {
            let date = Date(timeIntervalSince1970: seconds)
            let expected: String = {
                let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
                var whole = time_t(milliseconds / 1000)
                var parts = tm()
                gmtime_r(&whole, &parts)
                return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                              Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(milliseconds % 1000))
            }()
            #expect(Timestamp.format(date) == expected)
        }
    }
}

@Suite struct CSVReaderTests {
    func records(_ text: String) throws -> [[String]] {
        let folder = try TemporaryFolder()
        let reader = try CSVReader(url: try folder.write("x.csv", text))
        var out: [[String]] = []
        while let record = try reader.next() { out.append(record.fields) }
        return out
    }

    @Test func quotingAndLineEndings() throws {
        #expect(try records("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\r\n") == [["a", "b"], ["x, y", "say \"hi\""]])
        #expect(try records("a;b\n1;\"2\n3\"\n\n4;5") == [["a", "b"], ["1", "2\n3"], ["4", "5"]])
        #expect(try records("a\tb\r1\t2\r") == [["a", "b"], ["1", "2"]])
        #expect(try records("\u{FEFF}a,b\n,\n\"\"\n") == [["a", "b"], ["", ""], [""]])
        #expect(try records("a,b\nit\"s,ok\n") == [["a", "b"], ["it\"s", "ok"]])
    }

    /// Issue 10 item 12: physical line numbers after multiline cells, whatever the line endings.
    @Test func lineNumbersStayPhysicalAfterMultilineCells() throws {
        func lines(_ text: String) throws -> [Int] {
            let folder = try TemporaryFolder()
            let reader = try CSVReader(url: try folder.write("x.csv", text))
            var out: [Int] = []
            while let record = try reader.next() { out.append(record.line) }
            return out
        }
        #expect(try lines("a,b\n\"1\n2\n3\",x\ny,z\n") == [1, 2, 5])
        #expect(try lines("a,b\r\n\"1\r\n2\r\n3\",x\r\ny,z\r\n") == [1, 2, 5])
        #expect(try lines("a,b\r\"1\r2\r3\",x\ry,z\r") == [1, 2, 5])
        #expect(try lines("a,b\r\n\"1\r\n\r\n\",\"2\n3\"\r\ny,z\r\n") == [1, 2, 6])
    }

    @Test func invalidUTF8IsLocatedAfterAnEarlierMultilineCell() throws {
        let folder = try TemporaryFolder()
        let url = folder.url.appendingPathComponent("x.csv")
        try Data(Array("a,b\r\n\"one\r\ntwo\r\nthree\",ok\r\n\"para\r\npara\",\"x\r\n".utf8) + [0xC3, 0x28] + Array("\"\r\n".utf8)).write(to: url)
        let reader = try CSVReader(url: url)
        _ = try reader.next()
        _ = try reader.next()
        #expect(throws: CSVFileError(line: 7, message: "invalid UTF-8 (byte 0xC3) in column 2; save the file as UTF-8 and try again")) {
            _ = try reader.next()
        }
    }

    @Test func recordsAcrossBufferRefills() throws {
        // Over 1 MiB, so records straddle the reader's buffer refills.
        var text = "a,b,c\r\n"
        var expected: [[String]] = [["a", "b", "c"]]
        for index in 0..<40_000 {
            let row = ["plain \(index)", "it\"s \(index)\"", String(repeating: "y", count: index % 50) + (index % 7 == 0 ? ",\"\n" : "")]
            text += "\(row[0]),\(row[1]),\"\(row[2].replacingOccurrences(of: "\"", with: "\"\""))\"" + (index % 3 == 0 ? "\n" : "\r\n")
            expected.append(row)
        }
        #expect(try records(text) == expected)
    }

    @Test func datesAsExportsWriteThem() {
        let expected = Timestamp.parse("2026-11-02T14:03:22Z")
        #expect(ImportDate.parse("2026-11-02T14:03:22Z") == expected)
        #expect(ImportDate.parse("2026-11-02 14:03:22") == expected)
        #expect(ImportDate.parse("2026-11-02T15:03:22+01:00") == expected)
        #expect(ImportDate.parse("2026-11-02T09:03:22-0500") == expected)
        #expect(ImportDate.parse("11/2/2026 14:03:22") == expected)
        #expect(ImportDate.parse("2026-11-02 14:03") == Timestamp.parse("2026-11-02T14:03:00Z"))
        #expect(ImportDate.parse("2026-11-02") == Timestamp.parse("2026-11-02"))
        #expect(ImportDate.parse("yesterday") == nil)
        #expect(ImportDate.parse("13/45/2026") == nil)
    }

    @Test func headersAreRecognised() throws {
        let folder = try TemporaryFolder()
        let (manifest, _) = Manifest.load(try folder.write("m.yaml", "title: T\ngoal: 5\nfields:\n  - name: region\n"), displayPath: "m.yaml")
        let mapping = try ColumnMapping.make(header: ["First Name", "Last Name", "E-mail Address", "Region", "Signed On", "Zip"], manifest: manifest!, overrides: [])
        #expect(mapping.targets.map(\.description) == ["first_name", "last_name", "email", "region", "signed_at", "ignore"])
        #expect(Importer.redacted("email 'o'brien@x' has no @") == "email '…' has no @")
        #expect(Importer.redacted("unknown field 'x'; this campaign's fields are region") == "unknown field '…'; this campaign's fields are region")
    }
}

@Suite struct EmailFastPathTests {
    /// The byte-level fast path agrees with the full canonicalisation wherever it answers.
    @Test(arguments: ["ana@example.org", "Ana.Lima@Example.ORG", "a+b@x-y.example", "o'brien@mail.example", "first.last@sub.domain.example",
                      "a..b@example.org", ".a@example.org", "a.@example.org", "a@example", "a@-x.example", "a@x-.example", "a@x..example",
                      "a@example.org.", "\"q\"@example.org", "a@[127.0.0.1]", "a b@example.org", "@example.org", "a@", "a@b@example.org",
                      "zoé@example.org", "a@xn--bcher-kva.example", String(repeating: "a", count: 65) + "@example.org",
                      "a@" + String(repeating: "b", count: 64) + ".example", " ana@example.org"])
    func fastPathMatchesTheFullPath(address: String) {
        guard let fast = EmailAddress.plainASCIICanonical(address) else { return }
        // The full path, reached by a leading space (which the fast path refuses and the full path trims).
        let slow = try? EmailAddress.canonical(" " + address)
        #expect(fast == slow, "\(address)")
    }
}
