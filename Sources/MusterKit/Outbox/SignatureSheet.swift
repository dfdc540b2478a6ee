import Foundation

/// `attach_signatures:` in a `targets` template: the petition's signers, as a CSV file
/// attached to the "deliver the petition" email.
///
/// `attach_signatures: csv` attaches `name` and every non-personal field of the manifest
/// (e.g. `region`); a list (`attach_signatures: [name, region]`) chooses the columns.
/// Only names, `signed_at` and non-personal fields may be attached — never addresses,
/// comments or personal fields — and forgotten signers are left out.
public struct SignatureSheetRequest: Sendable, Equatable {
    /// A column asked for, with where it is written in the template (1-based).
    public struct Column: Sendable, Equatable {
        public var name: String
        public var line: Int
        public var column: Int

        public init(name: String, line: Int, column: Int) {
            self.name = name
            self.line = line
            self.column = column
        }
    }

    /// The columns asked for; nil for the default set.
    public var columns: [Column]?
    /// Where the `attach_signatures` value is in the file (1-based line and column).
    public var line: Int
    public var column: Int

    public init(columns: [Column]?, line: Int, column: Int) {
        self.columns = columns
        self.line = line
        self.column = column
    }
}

/// Building and checking the signature sheet.
public enum SignatureSheet {
    /// Columns that are not manifest fields but may be attached.
    static let builtInColumns = ["name", "signed_at"]

    /// The columns a sheet may hold for this manifest: `name`, `signed_at` and the
    /// non-personal fields (categories such as a region, kept after `forget`).
    public static func allowedColumns(_ manifest: Manifest) -> [String] {
        builtInColumns + manifest.fields.filter { !$0.personal }.map(\.name)
    }

    /// The columns `request` resolves to: its list, or `name` plus every non-personal field.
    public static func columns(_ request: SignatureSheetRequest, manifest: Manifest) -> [String] {
        request.columns?.map(\.name) ?? ["name"] + manifest.fields.filter { !$0.personal }.map(\.name)
    }

    /// Every problem with `request` in the template at `file`, for `muster check`.
    public static func check(_ request: SignatureSheetRequest, audience: EmailAudience, file: String,
                             manifest: Manifest) -> [Diagnostic] {
        var found: [Diagnostic] = []
        if audience != .targets {
            found.append(Diagnostic(file: file, line: request.line, column: request.column,
                                    message: "attach_signatures is only for 'audience: targets': it would send every signer's name to each \(audience.rawValue == "signers" ? "signer" : "recipient")"))
        }
        let allowed = allowedColumns(manifest)
        let choices = allowed.joined(separator: ", ")
        for entry in request.columns ?? [] where !allowed.contains(entry.name) {
            let message: String
            if entry.name == "email" {
                message = "attach_signatures: 'email' cannot be attached: signers' addresses are never sent to targets (columns: \(choices))"
            } else if entry.name == "comment" {
                message = "attach_signatures: 'comment' is personal data and cannot be attached (columns: \(choices))"
            } else if manifest.fields.contains(where: { $0.name == entry.name && $0.personal }) {
                message = "attach_signatures: '\(entry.name)' is personal data and cannot be attached (columns: \(choices); a manifest field with 'personal: false' may be)"
            } else {
                message = "attach_signatures: unknown column '\(entry.name)' (columns: \(choices))"
            }
            found.append(Diagnostic(file: file, line: entry.line, column: entry.column, message: message))
        }
        return found
    }

    /// The sheet as spreadsheet-safe CSV (RFC 4180, CRLF, formula cells neutralised as
    /// `muster export` does): a header row, then one row per signer whose personal data
    /// is still there (forgotten signers are left out), in signing order.
    public static func csv(columns: [String], ledger: Ledger) throws -> (bytes: [UInt8], rows: Int) {
        let writer = CSVWriter(neutralisesFormulas: true)
        try writer.write(columns)
        var rows = 0
        try ledger.forEachSignature { signature in
            guard signature.personal != nil else { return }
            rows += 1
            try writer.write(columns.map { Exporter.value(of: $0, in: signature) })
        }
        return (writer.bytes, rows)
    }

    /// The attachment for `request`: `<slug>-signatures.csv`, `text/csv; charset=utf-8`.
    public static func attachment(_ request: SignatureSheetRequest, campaign: Campaign, manifest: Manifest,
                                  ledger: Ledger) throws -> MIMEAttachment {
        let columns = columns(request, manifest: manifest)
        let allowed = allowedColumns(manifest)
        // `muster check` and template loading refuse these first; this is the last guard.
        guard columns.allSatisfy(allowed.contains) else {
            throw MusterError.badInput("attach_signatures: only \(allowed.joined(separator: ", ")) may be attached")
        }
        let sheet = try csv(columns: columns, ledger: ledger)
        return MIMEAttachment(mediaType: "text/csv", charset: "utf-8", filename: "\(campaign.slug)-signatures.csv", data: sheet.bytes)
    }
}
