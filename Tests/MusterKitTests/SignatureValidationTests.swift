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
}
