import Foundation
import Testing
@testable import MusterKit

func sampleManifest() -> Manifest {
    Manifest(
        title: "Fair rates", goal: 100, deadline: "2027-03-31", sender: nil,
        milestones: [.init(at: 10, label: nil), .init(at: 50, label: "Half")],
        quorums: nil, targets: [],
        fields: [
            .init(name: "region", label: nil, required: true, options: nil, personal: false),
            .init(name: "profession", label: nil, required: false, options: ["translator", "interpreter"], personal: false),
            .init(name: "phone", label: nil, required: false, options: nil, personal: true),
        ],
        consents: [.init(key: "updates", text: "Keep me informed")])
}

@Suite struct SignatureValidationTests {
    let manifest = sampleManifest()

    func message(_ input: SignatureInput) -> String? {
        do {
            _ = try input.validated(against: manifest)
            return nil
        } catch let error as MusterError {
            #expect(error.status == .badInput)
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func validSignatureIsSplitIntoPublicAndPersonal() throws {
        let input = SignatureInput(name: "  Ana Lima ", email: "Ana@Example.org", comment: "solidarity",
                                   fields: ["region": "Lyon", "profession": "TRANSLATOR", "phone": "0600"],
                                   consents: ["updates"], source: "cli", collector: "Sam")
        let valid = try input.validated(against: manifest)
        #expect(valid.name == "Ana Lima")
        #expect(valid.canonicalEmail == "ana@example.org")
        #expect(valid.email == "Ana@Example.org")
        #expect(valid.publicFields == ["region": "Lyon", "profession": "translator"])
        #expect(valid.personalFields == ["phone": "0600"])
        #expect(valid.consents == ["updates"])
    }

    @Test func badInputNamesFieldAndValue() {
        let base = SignatureInput(name: "Ana", email: "ana@example.org", fields: ["region": "Lyon"])
        var input = base
        input.name = "   "
        #expect(message(input) == "name is required")
        input = base
        input.name = "Eve\r\nBcc: x@evil.test"
        #expect(message(input) == "name contains a carriage return (CR) at character 4; use a single line of plain text")
        input = base
        input.name = String(repeating: "x", count: 201)
        #expect(message(input) == "name is 201 characters long; the limit is 200")
        input = base
        input.email = "ana@localhost"
        #expect(message(input) == "email 'ana@localhost' has an invalid domain (it needs a dot, as in example.org)")
        input = base
        input.email = "ana@example.org\r\nRCPT TO:<x@evil.test>"
        #expect(message(input) == "email 'ana@example.org\\r\\nRCPT TO:<x@evil.test>' contains a line break or control character")
        input = base
        input.fields = [:]
        #expect(message(input) == "region is required")
        input = base
        input.fields["profession"] = "lawyer"
        #expect(message(input) == "profession 'lawyer' is not one of: translator, interpreter")
        input = base
        input.fields["shoe_size"] = "42"
        #expect(message(input) == "unknown field 'shoe_size'; this campaign's fields are region, profession, phone")
        input = base
        input.consents = ["newsletter"]
        #expect(message(input) == "unknown consent 'newsletter'; this campaign asks for updates")
        input = base
        input.name = "bad\u{FFFD}utf8"
        #expect(message(input) == "name contains invalid UTF-8 (U+FFFD) at character 4; use a single line of plain text")
    }

    // Issue 10 item 12: a comment is free text with paragraphs; everything else stays one line.
    @Test func commentsKeepTheirLineBreaksNormalisedToLF() throws {
        func comment(_ raw: String) throws -> String? {
            try SignatureInput(name: "Ana", email: "ana@example.org", comment: raw, fields: ["region": "Lyon"])
                .validated(against: manifest).comment
        }
        #expect(try comment("First paragraph.\r\n\r\nSecond one.") == "First paragraph.\n\nSecond one.")
        #expect(try comment("old Mac\rline\nunix\r\nwindows") == "old Mac\nline\nunix\nwindows")
        #expect(try comment("\r\n\n  Why I sign:\n- fair pay\n\n \r\n") == "Why I sign:\n- fair pay")
        #expect(try comment("\r\n \n") == nil)
        #expect(try comment("Zoe\u{301} signs\nagain") == "Zoé signs\nagain")
        // A line break counts as one character toward the 2,000 limit, CRLF included.
        let full = String(repeating: "ab\r\n", count: 666) + "ab"
        #expect(try comment(full)?.count == 2_000)
        #expect(message(SignatureInput(name: "Ana", email: "ana@example.org", comment: full + "c", fields: ["region": "Lyon"]))
                == "comment is 2001 characters long; the limit is 2000")
    }

    @Test func commentsStillRefuseOtherControlCharacters() {
        func refusal(_ raw: String) -> String? {
            message(SignatureInput(name: "Ana", email: "ana@example.org", comment: raw, fields: ["region": "Lyon"]))
        }
        let tail = "; a comment may hold line breaks but no other control character"
        #expect(refusal("a\tb") == "comment contains a tab at character 2" + tail)
        #expect(refusal("one\r\ntwo\u{1B}[2J") == "comment contains the control character U+001B at character 8" + tail)
        #expect(refusal("x\u{0}") == "comment contains a NUL byte at character 2" + tail)
        #expect(refusal("line\u{2028}separator") == "comment contains the control character U+2028 at character 5" + tail)
        #expect(refusal("\u{202E}txt.exe") == "comment contains the control character U+202E at character 1" + tail)
        #expect(refusal("bad\u{FFFD}") == "comment contains invalid UTF-8 (U+FFFD) at character 4" + tail)
        #expect(refusal("\u{85}next line") == "comment contains the control character U+0085 at character 1" + tail)
    }

    @Test func lineBreaksAreStillRefusedEverywhereElse() {
        let base = SignatureInput(name: "Ana", email: "ana@example.org", fields: ["region": "Lyon"], source: "cli")
        var input = base
        input.name = "Ana\nLima"
        #expect(message(input) == "name contains a line feed (LF) at character 4; use a single line of plain text")
        input = base
        input.fields["region"] = "Lyon\rNorth"
        #expect(message(input) == "region contains a carriage return (CR) at character 5; use a single line of plain text")
        input = base
        input.source = "stall\n2"
        #expect(message(input) == "source contains a line feed (LF) at character 6; use a single line of plain text")
        input = base
        input.collector = "Sam\r\n"
        #expect(message(input) == "collector (--by) contains a carriage return (CR) at character 4; use a single line of plain text")
        input = base
        input.email = "ana@example.org\n"
        #expect(message(input)?.hasPrefix("email 'ana@example.org\\n'") == true)
    }
}
