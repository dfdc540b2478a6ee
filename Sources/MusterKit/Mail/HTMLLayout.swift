import Synchronization

/// The words of the layout's footer, in the campaign's language (`web: language:`):
/// `mail_footer` and `mail_unsubscribe` of `templates/web/<lang>.yaml`, which a workspace
/// can override like every text a signer reads.
public struct LayoutWords: Sendable, Hashable {
    /// The `lang` of the `<html>` element.
    public var language: String
    /// "Sent by {{sender}} about “{{title}}”." (plain text: the layout escapes it).
    public var footer: String
    /// The unsubscribe link's text.
    public var unsubscribe: String

    public init(language: String, footer: String, unsubscribe: String) {
        self.language = language
        self.footer = footer
        self.unsubscribe = unsubscribe
    }

    /// The built-in English words.
    public static let english = LayoutWords(language: "en", footer: "Sent by {{sender}} about \u{201C}{{title}}\u{201D}.",
                                            unsubscribe: "Unsubscribe")

    /// The words of `language`'s catalogue in `workspace` (its own file's entries first).
    static func of(_ language: WebLanguage, workspace: Workspace) throws -> LayoutWords {
        LayoutWords(try WebCatalogue(language, workspace: workspace))
    }

    /// The words of a catalogue already read (`muster serve` reads it for its pages).
    init(_ catalogue: WebCatalogue) {
        self.init(language: catalogue.language.rawValue, footer: catalogue.text("mail_footer"),
                  unsubscribe: catalogue.text("mail_unsubscribe"))
    }
}

/// muster's default HTML layout: one readable column with inline CSS (mail clients
/// drop `<style>` blocks) and a footer with the unsubscribe link.
public enum HTMLLayout {
    /// Wraps a CommonMark fragment. All arguments except `fragment` are escaped here.
    public static func wrap(_ fragment: String, subject: String, campaignTitle: String, sender: MailAddress,
                            unsubscribeHref: String, words: LayoutWords = .english) -> String {
        let frame = Frame.for(campaignTitle: campaignTitle, sender: sender, words: words)
        let href = SlotTable.isSafeURL(unsubscribeHref) ? htmlEscape(unsubscribeHref) : "#"
        var html = ""
        html.reserveCapacity(frame.head.utf8.count + frame.body.utf8.count + frame.foot.utf8.count + fragment.utf8.count
                             + subject.utf8.count + href.utf8.count + 64)
        html += frame.head
        html += htmlEscape(subject)
        html += frame.body
        html += fragment
        html += frame.footer
        html += href
        html += frame.foot
        return html
    }

    /// The layout around the subject, the fragment and the link, for one campaign and sender
    /// (the same for every message of a blast, so the last one is kept).
    private struct Frame: Sendable {
        let head: String, body: String, footer: String, foot: String

        static func `for`(campaignTitle: String, sender: MailAddress, words: LayoutWords) -> Frame {
            if let cached = last.withLock({ $0?.title == campaignTitle && $0?.sender == sender && $0?.words == words ? $0?.frame : nil }) {
                return cached
            }
            let footerText = htmlEscape(WebCatalogue.fill(words.footer, ["sender": sender.displayName ?? sender.address,
                                                                        "title": campaignTitle]))
            let html = words.language == "en" ? "<html>" : "<html lang=\"\(htmlEscape(words.language))\">"
            let frame = Frame(head: """
                <!DOCTYPE html>
                \(html)
                <head>
                <meta charset="utf-8">
                <meta name="viewport" content="width=device-width, initial-scale=1">
                <title>
                """, body: """
                </title>
                </head>
                <body style="margin:0; padding:0; background:#f4f4f5;">
                <div style="max-width:600px; margin:0 auto; padding:24px 28px; background:#ffffff; color:#1f2328; font-family:-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; font-size:16px; line-height:1.55;">

                """, footer: """

                </div>
                <div style="max-width:600px; margin:0 auto; padding:12px 28px 24px; color:#6e7781; font-family:-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; font-size:12px; line-height:1.5;">
                \(footerText) <a href="
                """, foot: """
                " style="color:#6e7781;">\(htmlEscape(words.unsubscribe))</a>
                </div>
                </body>
                </html>

                """)
            last.withLock { $0 = (campaignTitle, sender, words, frame) }
            return frame
        }

        private static let last = Mutex<(title: String, sender: MailAddress, words: LayoutWords, frame: Frame)?>(nil)
    }
}
