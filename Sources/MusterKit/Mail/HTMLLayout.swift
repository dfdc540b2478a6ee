import Synchronization

/// muster's default HTML layout: one readable column with inline CSS (mail clients
/// drop `<style>` blocks) and a footer with the unsubscribe link.
public enum HTMLLayout {
    /// Wraps a CommonMark fragment. All arguments except `fragment` are escaped here.
    public static func wrap(_ fragment: String, subject: String, campaignTitle: String, sender: MailAddress,
                            unsubscribeHref: String) -> String {
        let frame = Frame.for(campaignTitle: campaignTitle, sender: sender)
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

        static func `for`(campaignTitle: String, sender: MailAddress) -> Frame {
            if let cached = last.withLock({ $0?.title == campaignTitle && $0?.sender == sender ? $0?.frame : nil }) { return cached }
            let from = htmlEscape(sender.displayName ?? sender.address)
            let frame = Frame(head: """
                <!DOCTYPE html>
                <html>
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
                Sent by \(from) about \u{201C}\(htmlEscape(campaignTitle))\u{201D}. <a href="
                """, foot: """
                " style="color:#6e7781;">Unsubscribe</a>
                </div>
                </body>
                </html>

                """)
            last.withLock { $0 = (campaignTitle, sender, frame) }
            return frame
        }

        private static let last = Mutex<(title: String, sender: MailAddress, frame: Frame)?>(nil)
    }
}
