import Foundation
import Testing
@testable import MusterKit

/// `receipt:` in a template's front matter and the variables it brings
/// (docs/mail.md, "Receipts in a thank-you mail").
@Suite struct ReceiptTemplateTests {
    static let source = """
        ---
        subject: "Your receipt, {{first_name}}"
        audience: consenting
        receipt: attach
        ---
        Entry {{receipt_entry}} of {{receipt_checkpoint}}; {{#receipt_entry}}yours{{/receipt_entry}}
        """

    @Test func receiptAttachIsParsedAndItsVariablesAreKnownOnlyWithIt() throws {
        let template = try EmailTemplate(source: Self.source, file: "emails/r.md")
        #expect(template.receipt == ReceiptRequest(mode: .attach, line: 4, column: 10))
        #expect(template.check(knownVariables: EmailTemplate.knownVariables(receipt: true)).isEmpty)
        let unknown = template.check(knownVariables: EmailTemplate.knownVariables()).map(\.message)
        #expect(unknown.contains("unknown variable 'receipt_entry'") && unknown.contains("unknown variable 'receipt_checkpoint'"), "\(unknown)")
        #expect(try EmailTemplate(source: EmailTemplateTests.thanks, file: "emails/t.md").receipt == nil)
    }

    @Test func aWrongValueOrAudienceIsAnErrorAtItsPlace() {
        for (front, expected) in [
            ("audience: signers\nreceipt: link", "emails/r.md:4:10: receipt must be 'attach' (each signer's receipt as the file receipt.json), not 'link'"),
            ("audience: signers\nreceipt: [attach]", "emails/r.md:4:10: receipt must be 'attach' (each signer's receipt as the file receipt.json)"),
            ("audience: targets\nreceipt: attach", "emails/r.md:4:10: receipt: attach is for signers (audience signers or consenting): decision makers have no receipt"),
        ] {
            let source = "---\nsubject: \"Hi\"\n\(front)\n---\nHi\n"
            #expect(throws: TemplateErrors.self) { try EmailTemplate(source: source, file: "emails/r.md") }
            do {
                _ = try EmailTemplate(source: source, file: "emails/r.md")
            } catch {
                #expect(error.diagnostics.map(\.description) == [expected])
            }
        }
    }

    @Test func computedValuesWinOverAFieldOfTheSameName() throws {
        let template = try EmailTemplate(source: Self.source, file: "emails/r.md")
        let recipient = MailRecipient(name: "Ana Lima", email: "ana@example.org",
                                      fields: ["receipt_entry": "forged", "region": "Lyon"],
                                      variables: ["receipt_entry": "7", "receipt_checkpoint": "412 entries, root 8y1SLNr2MoRyxzSR"])
        let content = renderContent(template: template, recipient: recipient, campaign: TemplateRenderingTests.campaign,
                                    unsubscribe: ListUnsubscribe(mailto: TemplateRenderingTests.settings.unsubscribeMailbox), layout: false)
        #expect(content.text == "Entry 7 of 412 entries, root 8y1SLNr2MoRyxzSR; yours")
        // Empty (a sample signer): the section is skipped.
        var sample = recipient
        sample.variables["receipt_entry"] = ""
        let empty = renderContent(template: template, recipient: sample, campaign: TemplateRenderingTests.campaign,
                                  unsubscribe: ListUnsubscribe(mailto: TemplateRenderingTests.settings.unsubscribeMailbox), layout: false)
        #expect(empty.text == "Entry  of 412 entries, root 8y1SLNr2MoRyxzSR; ")
    }
}
