import CCmark
import Foundation

/// CommonMark to HTML for pages anyone can open: `petition.md` on the sign page.
///
/// Unlike mail (`markdownToHTML`, where the organizer's raw HTML is kept), raw HTML in
/// the text is not trusted here: every HTML block and inline tag is turned into text, so
/// `<script>` shows as the characters `<script>` instead of running. libcmark's safe mode
/// (no `CMARK_OPT_UNSAFE`) also empties `javascript:`, `vbscript:`, `file:` and most
/// `data:` link targets. Images from other hosts are left to the page's
/// Content-Security-Policy (`img-src 'self'`), which keeps them from loading.
public enum SafeMarkdown {
    /// `petition.md` as HTML. When `title` is given and the text opens with a level-1
    /// heading that says the same (as the scaffolded `petition.md` does: `# {{title}}`),
    /// that heading is left out: the page shows the manifest's title as its one `<h1>`.
    /// A first heading that says something else is kept.
    public static func html(_ markdown: String, title: String? = nil) -> String {
        let utf8 = Array(markdown.utf8)
        let options = muster_cmark_opt_default()
        let document: OpaquePointer? = utf8.withUnsafeBufferPointer { buffer in
            buffer.baseAddress.flatMap { base in
                base.withMemoryRebound(to: CChar.self, capacity: max(buffer.count, 1)) { cmark_parse_document($0, buffer.count, options) }
            } ?? cmark_parse_document("", 0, options)
        }
        guard let document else { return "" }
        defer { cmark_node_free(document) }
        escapeRawHTML(in: document)
        if let title { dropLeadingTitle(title, in: document) }
        guard let out = cmark_render_html(document, options) else { return "" }
        defer { free(out) }
        return String(cString: out)
    }

    /// Unlinks the document's first block when it is a level-1 heading whose text is
    /// `title` (compared with runs of white space collapsed, case-insensitively).
    private static func dropLeadingTitle(_ title: String, in document: OpaquePointer) {
        guard let first = cmark_node_first_child(document), cmark_node_get_type(first) == CMARK_NODE_HEADING,
              cmark_node_get_heading_level(first) == 1 else { return }
        var text = ""
        guard let iterator = cmark_iter_new(first) else { return }
        while true {
            let event = cmark_iter_next(iterator)
            if event == CMARK_EVENT_DONE { break }
            guard event == CMARK_EVENT_ENTER, let node = cmark_iter_get_node(iterator) else { continue }
            switch cmark_node_get_type(node) {
            case CMARK_NODE_TEXT, CMARK_NODE_CODE:
                text += cmark_node_get_literal(node).map { String(cString: $0) } ?? ""
            case CMARK_NODE_SOFTBREAK, CMARK_NODE_LINEBREAK:
                text += " "
            default:
                break
            }
        }
        cmark_iter_free(iterator)
        func normalized(_ s: String) -> String {
            s.split(whereSeparator: \.isWhitespace).joined(separator: " ").lowercased()
        }
        guard normalized(text) == normalized(title) else { return }
        cmark_node_unlink(first)
        cmark_node_free(first)
    }

    /// Replaces every raw HTML node under `root` by a text node holding the same
    /// characters (a block by a paragraph of it), so the renderer escapes them.
    private static func escapeRawHTML(in root: OpaquePointer) {
        var raw: [OpaquePointer] = []
        guard let iterator = cmark_iter_new(root) else { return }
        while true {
            let event = cmark_iter_next(iterator)
            if event == CMARK_EVENT_DONE { break }
            guard event == CMARK_EVENT_ENTER, let node = cmark_iter_get_node(iterator) else { continue }
            let type = cmark_node_get_type(node)
            if type == CMARK_NODE_HTML_BLOCK || type == CMARK_NODE_HTML_INLINE { raw.append(node) }
        }
        cmark_iter_free(iterator)
        for node in raw {
            let literal = cmark_node_get_literal(node).map { String(cString: $0) } ?? ""
            guard let text = cmark_node_new(CMARK_NODE_TEXT) else { continue }
            var trimmed = literal
            while trimmed.hasSuffix("\n") { trimmed.removeLast() }
            cmark_node_set_literal(text, trimmed)
            if cmark_node_get_type(node) == CMARK_NODE_HTML_BLOCK {
                guard let paragraph = cmark_node_new(CMARK_NODE_PARAGRAPH) else { cmark_node_free(text); continue }
                cmark_node_append_child(paragraph, text)
                cmark_node_replace(node, paragraph)
            } else {
                cmark_node_replace(node, text)
            }
            cmark_node_free(node)
        }
    }
}
