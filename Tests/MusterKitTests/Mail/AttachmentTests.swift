import Foundation
import Testing
@testable import MusterKit

/// Splits a multipart body on `--boundary` lines: the parts between the first
/// delimiter and the close delimiter, each as (header lines, body).
private func multipartParts(_ body: String, boundary: String) -> [(headers: [String], body: String)] {
    let pieces = body.components(separatedBy: "--\(boundary)")
    guard pieces.count >= 3 else { return [] }
    return pieces.dropFirst().dropLast().map { piece in
        // Each part starts with the CRLF that ends the delimiter line and ends with the
        // CRLF that belongs to the next delimiter.
        var text = piece
        if text.hasPrefix("\r\n") { text.removeFirst() }
        if text.hasSuffix("\r\n") { text.removeLast() }
        let split = text.components(separatedBy: "\r\n\r\n")
        let headers = split[0].replacingOccurrences(of: "\r\n ", with: " ").components(separatedBy: "\r\n")
        return (headers, split.dropFirst().joined(separator: "\r\n\r\n"))
    }
}

private func boundary(in contentType: String) -> String? {
    guard let range = contentType.range(of: "boundary=\"") else { return nil }
    return String(contentType[range.upperBound...].prefix { $0 != "\"" })
}

private func headerBlock(_ message: String) -> (headers: [String], body: String) {
    let split = message.components(separatedBy: "\r\n\r\n")
    return (split[0].replacingOccurrences(of: "\r\n ", with: " ").components(separatedBy: "\r\n"),
            split.dropFirst().joined(separator: "\r\n\r\n"))
}

@Suite("Attachments: multipart/mixed, base64, Content-Disposition")
struct AttachmentMIMETests {
    static let csv = Array("name,region\r\nAna Lima,Lyon\r\n\"'=HYPERLINK(\"\"http://evil\"\")\",Paris\r\nZoé,Lyon\r\n".utf8)
        + Array(repeating: UInt8(ascii: "x"), count: 300)

    func message(html: String? = "<p>Dear Board</p>", attachments: [MIMEAttachment]) throws -> MIMEMessage {
        MIMEMessage(from: try MailAddress(parsing: "Fair Rates <hello@fairrates.example>"),
                    to: try MailAddress(parsing: "Agency Board <board@agencies.example>"),
                    subject: "Petition: 3 signatures", date: Date(timeIntervalSince1970: 1_800_000_000),
                    messageID: "muster.abc@fairrates.example", text: "Dear Board\n", html: html, attachments: attachments)
    }

    @Test("text and HTML first, then the CSV as a base64 attachment with a file name")
    func structure() throws {
        let attachment = MIMEAttachment(mediaType: "text/csv", charset: "utf-8", filename: "fair-rates-signatures.csv", data: Self.csv)
        let raw = try message(attachments: [attachment]).serialized()
        let text = String(decoding: raw, as: UTF8.self)
        #expect(hasOnlyCRLFAndShortLines(raw))
        let (headers, body) = headerBlock(text)
        let contentType = try #require(headers.first { $0.hasPrefix("Content-Type:") })
        #expect(contentType.hasPrefix("Content-Type: multipart/mixed;"))
        #expect(headers.filter { $0.hasPrefix("MIME-Version: 1.0") }.count == 1)
        let outer = try #require(boundary(in: contentType))
        #expect(body.hasSuffix("\r\n--\(outer)--\r\n"))
        let parts = multipartParts(body, boundary: outer)
        try #require(parts.count == 2)

        // First: the multipart/alternative, text/plain then text/html.
        let alternativeType = try #require(parts[0].headers.first { $0.hasPrefix("Content-Type:") })
        #expect(alternativeType.hasPrefix("Content-Type: multipart/alternative;"))
        let inner = try #require(boundary(in: alternativeType))
        #expect(!inner.hasPrefix(outer) && !outer.hasPrefix(inner), "neither boundary may be a prefix of the other")
        let alternatives = multipartParts(parts[0].body, boundary: inner)
        #expect(alternatives.map { $0.headers.first ?? "" } == ["Content-Type: text/plain; charset=utf-8", "Content-Type: text/html; charset=utf-8"])

        // Then: the attachment.
        let csvPart = parts[1]
        #expect(csvPart.headers == [
            "Content-Type: text/csv; charset=utf-8; name=\"fair-rates-signatures.csv\"",
            "Content-Transfer-Encoding: base64",
            "Content-Disposition: attachment; filename=\"fair-rates-signatures.csv\"",
        ])
        let lines = csvPart.body.components(separatedBy: "\r\n")
        #expect(lines.dropLast().allSatisfy { $0.count == 76 }, "base64 in lines of 76 characters")
        #expect(lines.last!.count <= 76 && !lines.last!.isEmpty)
        #expect(Data(base64Encoded: lines.joined()).map { [UInt8]($0) } == Self.csv)
    }

    @Test("Python's email package reads the same structure and decodes the CSV exactly")
    func pythonReadsIt() throws {
        let attachment = MIMEAttachment(mediaType: "text/csv", charset: "utf-8", filename: "fair-rates-signatures.csv", data: Self.csv)
        for html in ["<p>Dear Board</p>", nil] as [String?] {
            let folder = try TemporaryFolder()
            let file = folder.url.appendingPathComponent("m.eml")
            try Data(try message(html: html, attachments: [attachment]).serialized()).write(to: file)
            let parsed = try PythonParsedMessage(file: file)
            #expect(parsed.defects.isEmpty, "\(parsed.defects)")
            #expect(parsed.content_type == "multipart/mixed")
            #expect(parsed.parts.map(\.content_type) == (html == nil ? ["text/plain", "text/csv"] : ["text/plain", "text/html", "text/csv"]))
            let csv = try #require(parsed.parts.last)
            #expect(csv.disposition == "attachment")
            #expect(csv.filename == "fair-rates-signatures.csv")
            #expect(csv.text == String(decoding: Self.csv, as: UTF8.self))
            #expect(parsed.parts[0].text.replacingOccurrences(of: "\r\n", with: "\n") == "Dear Board\n", "the text keeps its last line break")
        }
    }

    @Test("without attachments the message is unchanged: multipart/alternative at the top")
    func noAttachments() throws {
        let text = String(decoding: try message(attachments: []).serialized(), as: UTF8.self)
        #expect(text.contains("Content-Type: multipart/alternative;"))
        #expect(!text.contains("multipart/mixed"))
        #expect(!text.contains("Content-Disposition"))
    }

    @Test("a non-ASCII file name is written with RFC 2231; unsafe ones are refused")
    func fileNames() throws {
        #expect(try MIMEAttachment.parameter("filename", "a b.csv") == "filename=\"a b.csv\"")
        #expect(try MIMEAttachment.parameter("filename", "pétition 1.csv") == "filename*=utf-8''p%C3%A9tition%201.csv")
        #expect(try MIMEAttachment.parameter("filename", "say \"hi\".csv") == "filename*=utf-8''say%20%22hi%22.csv")
        for bad in ["", "a\r\nBcc: x@evil.test", "../etc/passwd", "a\\b", "a\u{202E}b.csv", String(repeating: "x", count: 201)] {
            #expect(throws: MessageError.self) { try MIMEAttachment.parameter("filename", bad) }
        }
        let evil = MIMEAttachment(mediaType: "text/csv\r\nBcc: x", filename: "a.csv", data: [])
        #expect(throws: MessageError.self) { try message(attachments: [evil]).serialized() }
        // Python decodes the RFC 2231 name back.
        let folder = try TemporaryFolder()
        let file = folder.url.appendingPathComponent("m.eml")
        let named = MIMEAttachment(mediaType: "text/csv", charset: "utf-8", filename: "pétition \"Lyon\".csv", data: Array("a\r\n".utf8))
        try Data(try message(attachments: [named]).serialized()).write(to: file)
        #expect(try PythonParsedMessage(file: file).parts.last?.filename == "pétition \"Lyon\".csv")
    }

    @Test("base64 lines", arguments: [0, 1, 56, 57, 58, 114, 1000])
    func base64Lines(_ count: Int) {
        let data = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let encoded = MIMEAttachment.base64Lines(data)
        let lines = encoded.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        #expect(!encoded.hasSuffix("\r\n"))
        #expect(Data(base64Encoded: lines.joined()).map { [UInt8]($0) } == data)
    }
}

@Suite("attach_signatures: front matter, checks, and the sheet itself")
struct SignatureSheetTests {
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)

    func template(_ frontMatter: String, audience: String = "targets") throws(TemplateErrors) -> EmailTemplate {
        try EmailTemplate(source: "---\nsubject: \"Petition\"\naudience: \(audience)\n\(frontMatter)\n---\nDear {{name}}\n",
                          file: "emails/deliver.md")
    }

    func errors(_ frontMatter: String, audience: String = "targets") -> [String] {
        do {
            let parsed = try template(frontMatter, audience: audience)
            guard let request = parsed.attachSignatures else { return [] }
            return SignatureSheet.check(request, audience: parsed.audience, file: parsed.file, manifest: sampleManifest()).map(\.description)
        } catch {
            return error.diagnostics.map(\.asDiagnostic.description)
        }
    }

    @Test func frontMatterForms() throws {
        #expect(try template("").attachSignatures == nil)
        let csv = try #require(try template("attach_signatures: csv").attachSignatures)
        #expect(csv.columns == nil)
        #expect(SignatureSheet.columns(csv, manifest: sampleManifest()) == ["name", "region", "profession"])
        let list = try #require(try template("attach_signatures: [name, signed_at, region]").attachSignatures)
        #expect(SignatureSheet.columns(list, manifest: sampleManifest()) == ["name", "signed_at", "region"])
        #expect(list.columns?.map(\.column) == [21, 27, 38])
        #expect(try template("attach_signatures: csv").warnings.isEmpty, "a known key, not an unknown-key warning")
    }

    @Test func badValuesNameFileLineAndColumn() {
        #expect(errors("attach_signatures: yes") == [
            "emails/deliver.md:4:20: error: attach_signatures must be 'csv' (name and the manifest's non-personal fields) or a list of columns, e.g. [name, region], not 'yes'",
        ])
        #expect(errors("attach_signatures: []").first?.hasPrefix("emails/deliver.md:4:20: error: attach_signatures must be") == true)
        #expect(errors("attach_signatures:\n  - name\n  - name") == ["emails/deliver.md:6:5: error: attach_signatures lists 'name' twice"])
        #expect(errors("attach_signatures: [name, email, phone, comment, colour]") == [
            "emails/deliver.md:4:27: error: attach_signatures: 'email' cannot be attached: signers' addresses are never sent to targets (columns: name, signed_at, region, profession)",
            "emails/deliver.md:4:34: error: attach_signatures: 'phone' is personal data and cannot be attached (columns: name, signed_at, region, profession; a manifest field with 'personal: false' may be)",
            "emails/deliver.md:4:41: error: attach_signatures: 'comment' is personal data and cannot be attached (columns: name, signed_at, region, profession)",
            "emails/deliver.md:4:50: error: attach_signatures: unknown column 'colour' (columns: name, signed_at, region, profession)",
        ])
        #expect(errors("attach_signatures: csv", audience: "signers") == [
            "emails/deliver.md:4:20: error: attach_signatures is only for 'audience: targets': it would send every signer's name to each signer",
        ])
    }

    @Test("the sheet: names and non-personal fields, formulas neutralised, forgotten signers left out, no addresses")
    func sheet() throws {
        let folder = try TemporaryFolder()
        let manifest = sampleManifest()
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        let people: [(String, String, String)] = [
            ("Ana Lima", "ana@example.org", "Lyon"),
            ("=HYPERLINK(\"http://evil.test\",\"click\")", "eve@example.org", "+33 Paris"),
            ("Gone Person", "gone@example.org", "Lyon"),
            ("Zoé, \"la\" Grande", "zoe@bücher.example", "@Marseille"),
            ("Out", "out@example.org", "-Nice"),
        ]
        for (name, email, region) in people {
            let input = SignatureInput(name: name, email: email, fields: ["region": region, "phone": "0612"], consents: [])
            _ = try ledger.append(try input.validated(against: manifest), at: clock.now())
        }
        _ = try ledger.forget(canonicalEmail: "gone@example.org", at: clock.now())
        _ = try ledger.unsubscribe(canonicalEmail: "out@example.org", at: clock.now())
        let sheet = try SignatureSheet.csv(columns: ["name", "region"], ledger: ledger)
        #expect(sheet.rows == 4, "an unsubscribed signer still signed; a forgotten one is left out")
        let expected = "name,region\r\n"
            + "Ana Lima,Lyon\r\n"
            + "\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"click\"\")\",\"'+33 Paris\"\r\n"
            + "\"Zoé, \"\"la\"\" Grande\",\"'@Marseille\"\r\n"
            + "Out,\"'-Nice\"\r\n"
        #expect(String(decoding: sheet.bytes, as: UTF8.self) == expected)
        let text = String(decoding: sheet.bytes, as: UTF8.self)
        #expect(!text.contains("@example.org") && !text.contains("0612") && !text.contains("Gone"))
    }
}
