/// One problem found in an email template, located by file, line and column.
public struct TemplateDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// Whether the problem stops the template from being used.
    public enum Severity: String, Sendable { case error, warning }

    /// The file as it should be shown to the user (e.g. `campaigns/x/emails/thanks.md`).
    public var file: String
    /// 1-based line in the file.
    public var line: Int
    /// 1-based column (in Unicode scalars).
    public var column: Int
    /// Short, lower-case message.
    public var message: String
    /// Error or warning.
    public var severity: Severity

    /// Creates a diagnostic.
    public init(file: String, line: Int, column: Int, message: String, severity: Severity = .error) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.severity = severity
    }

    /// `file:line:column: message` (warnings read `file:line:column: warning: message`).
    public var description: String {
        severity == .error ? "\(file):\(line):\(column): \(message)" : "\(file):\(line):\(column): warning: \(message)"
    }
}

/// Every problem found in a template, thrown together so the user sees them all at once.
public struct TemplateErrors: Error, Sendable, CustomStringConvertible {
    /// All diagnostics, errors and warnings, in file order.
    public var diagnostics: [TemplateDiagnostic]

    /// Creates the error from its diagnostics.
    public init(_ diagnostics: [TemplateDiagnostic]) { self.diagnostics = diagnostics }

    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
