/// muster's default HTML layout: one readable column with inline CSS (mail clients
/// drop `<style>` blocks) and a footer with the unsubscribe link.
public enum HTMLLayout {
    /// Wraps a CommonMark fragment. All arguments except `fragment` are escaped here.
    public static func wrap(_ fragment: String, subject: String, campaignTitle: String, sender: MailAddress,
                            unsubscribeHref: String) -> String {
        let from = htmlEscape(sender.displayName ?? sender.address)
        let href = SlotTable.isSafeURL(unsubscribeHref) ? htmlEscape(unsubscribeHref) : "#"
        return """
        <!DOCTYPE html>
        <html>
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(htmlEscape(subject))</title>
        </head>
        <body style="margin:0; padding:0; background:#f4f4f5;">
        <div style="max-width:600px; margin:0 auto; padding:24px 28px; background:#ffffff; color:#1f2328; font-family:-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; font-size:16px; line-height:1.55;">
        \(fragment)
        </div>
        <div style="max-width:600px; margin:0 auto; padding:12px 28px 24px; color:#6e7781; font-family:-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; font-size:12px; line-height:1.5;">
        Sent by \(from) about \u{201C}\(htmlEscape(campaignTitle))\u{201D}. <a href="\(href)" style="color:#6e7781;">Unsubscribe</a>
        </div>
        </body>
        </html>

        """
    }
}
