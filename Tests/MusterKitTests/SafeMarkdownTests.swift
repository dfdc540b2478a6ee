import Testing
@testable import MusterKit

/// `petition.md` on the sign page: raw HTML escaped, and the scaffold's `# title` not
/// shown a second time under the page's own `<h1>`.
@Suite struct SafeMarkdownTests {
    func headings(_ html: String) -> Int { html.components(separatedBy: "<h1>").count - 1 }

    @Test func leadingTitleHeadingIsDroppedOnlyWhenItSaysTheTitle() {
        let title = "Fair rates <for> translators"
        let same = SafeMarkdown.html("#  Fair   RATES <for> translators\n\nWe ask.\n", title: title)
        #expect(headings(same) == 0 && same.contains("<p>We ask.</p>"), "\(same)")
        let setext = SafeMarkdown.html("Fair rates <for> translators\n===\n\nWe ask.\n", title: title)
        #expect(headings(setext) == 0, "\(setext)")
        let other = SafeMarkdown.html("# Our demands\n\nWe ask.\n", title: title)
        #expect(headings(other) == 1 && other.contains("Our demands"), "a different first heading is the author's: kept")
        let later = SafeMarkdown.html("Intro.\n\n# Fair rates &lt;for&gt; translators\n", title: title)
        #expect(headings(later) == 1, "only a heading that opens the text is dropped")
        let second = SafeMarkdown.html("## Fair rates <for> translators\n", title: title)
        #expect(second.contains("<h2>"), "a level-2 heading is kept")
        let untitled = SafeMarkdown.html("# Fair rates <for> translators\n")
        #expect(headings(untitled) == 1, "without a title nothing is dropped")
    }

    @Test func rawHTMLInTheDroppedOrKeptTextStaysEscaped() {
        let html = SafeMarkdown.html("# <script>x</script>\n\n<script>alert(1)</script>\n", title: "other")
        #expect(!html.contains("<script>") && html.contains("&lt;script&gt;"), "\(html)")
    }
}
