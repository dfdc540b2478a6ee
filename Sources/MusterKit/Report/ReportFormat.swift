import Foundation

/// The formats `muster report` writes.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// Bar charts in block characters; colour only when asked for (`styled`).
    case text
    case markdown
    /// The report's fields, sorted keys, pretty-printed.
    case json
    /// One self-contained file with SVG charts.
    case html
}

extension ProgressReport {
    /// The report written in `format`; `styled` colours the text form (for a terminal).
    public func rendered(as format: ReportFormat, styled: Bool = false) throws -> String {
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
        case .markdown:
            return renderMarkdown()
        case .html:
            return renderHTML()
        case .text:
            return renderText(styled: styled)
        }
    }
}
