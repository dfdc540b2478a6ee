import CCmark
import Foundation
import Mustache

/// The person a message goes to, with the values their template can use.
public struct MailRecipient: Sendable {
    /// Full name, as signed (`{{name}}`).
    public var name: String
    /// Email address as stored; validated and IDNA-encoded when the message is rendered.
    public var email: String
    /// Extra manifest fields (`{{region}}`…); a `first_name` entry overrides the derived one.
    public var fields: [String: String]
    /// This recipient's one-click unsubscribe URL (`https://…`), when the workspace has one.
    public var unsubscribeURL: String?
    /// Values muster computes for this message (`receipt_checkpoint`, `receipt_entry`);
    /// like the built-in names, they win over fields of the same name.
    public var variables: [String: String]
    /// The blast's authenticated token for this (campaign, template, recipient)
    /// (`MailToken`): the Message-ID becomes `muster.<token>@<sender domain>` and, with
    /// `MessageSettings.verpAddress`, the envelope sender carries it too. Without one the
    /// Message-ID is the older unkeyed hash (test sends, `muster serve`'s mail).
    public var mailToken: String?

    /// Creates a recipient.
    public init(name: String, email: String, fields: [String: String] = [:], unsubscribeURL: String? = nil,
                variables: [String: String] = [:]) {
        self.name = name
        self.email = email
        self.fields = fields
        self.unsubscribeURL = unsubscribeURL
        self.variables = variables
    }

    /// The first word of the name (`{{first_name}}`), unless a field sets it.
    public var firstName: String {
        if let field = fields["first_name"] { return field }
        let word = name.drop(while: { $0 == " " || $0 == "\t" }).prefix(while: { $0 != " " && $0 != "\t" })
        return word.isEmpty ? name : String(word)
    }
}

/// The campaign facts a template can use as `campaign.*`.
public struct CampaignMailInfo: Sendable {
    /// The campaign slug (used for Message-ID; not a template variable).
    public var slug: String
    /// `campaign.title`.
    public var title: String
    /// `campaign.count`: signatures so far.
    public var count: Int
    /// `campaign.goal`.
    public var goal: Int?
    /// `campaign.deadline`, as written in the manifest (e.g. `2027-03-31`).
    public var deadline: String?
    /// `campaign.days_left`, computed by the caller from its clock.
    public var daysLeft: Int?
    /// `campaign.milestone`: the label (or number) of the milestone just reached, if any.
    public var milestone: String?
    /// The `From` mailbox (manifest `sender`).
    public var sender: MailAddress

    /// Names usable after `campaign.` in templates.
    public static let variableNames = ["title", "count", "goal", "percent", "deadline", "days_left", "milestone"]

    /// Creates the campaign facts.
    public init(slug: String, title: String, count: Int, goal: Int? = nil, deadline: String? = nil,
                daysLeft: Int? = nil, milestone: String? = nil, sender: MailAddress) {
        self.slug = slug
        self.title = title
        self.count = count
        self.goal = goal
        self.deadline = deadline
        self.daysLeft = daysLeft
        self.milestone = milestone
        self.sender = sender
    }

    /// `campaign.percent`: count × 100 / goal, rounded down; 0 without a goal.
    public var percent: Int {
        guard let goal, goal > 0 else { return 0 }
        return count * 100 / goal
    }
}

/// Workspace-level settings that shape every message.
public struct MessageSettings: Sendable {
    /// The mailbox that receives `mailto:` unsubscribe requests (`List-Unsubscribe`).
    public var unsubscribeMailbox: MailAddress
    /// The envelope sender (bounce address, MAIL FROM); defaults to the campaign sender.
    public var envelopeFrom: MailAddress?
    /// Default `Reply-To` when the template sets none.
    public var replyTo: MailAddress?
    /// Wrap the HTML part in muster's default layout (on by default).
    public var useDefaultLayout: Bool
    /// The layout footer's words (the campaign's language; English by default).
    public var layoutWords: LayoutWords = .english
    /// Sign each message with this DKIM key (`dkim:` in muster.yaml); nil: unsigned.
    public var dkim: DKIMSigner?
    /// VERP (`smtp.verp` in muster.yaml): the bounce address, e.g. `bounces@example.org`;
    /// each message with a `mailToken` is sent with envelope sender `bounces+<token>@example.org`.
    public var verpAddress: String?

    /// Creates settings.
    public init(unsubscribeMailbox: MailAddress, envelopeFrom: MailAddress? = nil, replyTo: MailAddress? = nil,
                useDefaultLayout: Bool = true) {
        self.unsubscribeMailbox = unsubscribeMailbox
        self.envelopeFrom = envelopeFrom
        self.replyTo = replyTo
        self.useDefaultLayout = useDefaultLayout
    }
}

/// A message ready for the transport: the SMTP envelope and the exact octets.
public struct RenderedMessage: Sendable {
    /// MAIL FROM address (ASCII, validated).
    public var envelopeFrom: String
    /// RCPT TO address (validated, IDN domain as `xn--`; the local part may be UTF-8).
    public var envelopeTo: String
    /// The message, CRLF line endings, ready for DATA.
    public var bytes: [UInt8]
    /// The Message-ID (without angle brackets), stable per (campaign, template, recipient).
    public var messageID: String
    /// The rendered subject (decoded), for plans and logs.
    public var subject: String
}

/// The three rendered texts of a message before MIME encoding.
public struct RenderedContent: Sendable, Equatable {
    /// Subject, one line.
    public var subject: String
    /// text/plain: the Mustache-rendered Markdown source.
    public var text: String
    /// text/html: CommonMark HTML of the same source, values HTML-escaped, in the layout.
    public var html: String
}

/// Renders `template` for one recipient into a complete message.
///
/// Values from signers are inserted after Mustache and Markdown have run, so they are
/// never interpreted as either, and they are HTML-escaped in the HTML part. CR, LF or
/// NUL reaching a header or the envelope is refused with `MessageError.forbiddenCharacter`.
/// The recipient's local part may be UTF-8 (RFC 6531); such a message can only go
/// through a relay that offers SMTPUTF8, which the transport checks.
public func renderMessage(template: EmailTemplate, recipient: MailRecipient, campaign: CampaignMailInfo,
                          settings: MessageSettings, date: Date = Date(),
                          attachments: [MIMEAttachment] = []) throws(MessageError) -> RenderedMessage {
    let to = try MailAddress(displayName: recipient.name, address: recipient.email, header: "To", allowUTF8LocalPart: true)
    let envelopeFrom = settings.envelopeFrom ?? campaign.sender
    try refuseLineBreaks(envelopeFrom.address, header: "MAIL FROM")
    let unsubscribe = ListUnsubscribe(mailto: settings.unsubscribeMailbox, url: recipient.unsubscribeURL)
    if let url = recipient.unsubscribeURL { try MIMEMessage.validateUnsubscribeURL(url) }
    let content = renderContent(template: template, recipient: recipient, campaign: campaign, unsubscribe: unsubscribe,
                                layout: settings.useDefaultLayout, words: settings.layoutWords)
    let messageID = recipient.mailToken.map { "muster.\($0)@\(campaign.sender.domain)" }
        ?? MIMEMessage.stableMessageID(campaign: campaign.slug, template: template.name, recipient: to.address, domain: campaign.sender.domain)
    var envelopeAddress = envelopeFrom.address
    if let verp = settings.verpAddress, let token = recipient.mailToken {
        envelopeAddress = VERP.address(base: verp, token: token)
        try refuseLineBreaks(envelopeAddress, header: "MAIL FROM")
    }
    let message = MIMEMessage(from: campaign.sender, to: to, replyTo: template.replyTo ?? settings.replyTo,
                              subject: content.subject, date: date, messageID: messageID,
                              listUnsubscribe: unsubscribe,
                              listID: ListID(title: campaign.title, slug: campaign.slug, domain: campaign.sender.domain),
                              text: content.text, html: content.html, attachments: attachments)
    var bytes = try message.serialized()
    if let dkim = settings.dkim {
        do {
            bytes = try dkim.sign(bytes, at: date)
        } catch {
            throw .dkim(error.description)
        }
    }
    return RenderedMessage(envelopeFrom: envelopeAddress, envelopeTo: to.address, bytes: bytes,
                           messageID: messageID, subject: content.subject)
}

/// The names every template can use besides the recipient's fields.
private let builtInNames: Set<String> = ["campaign.count", "campaign.days_left", "campaign.deadline", "campaign.goal", "campaign.milestone",
                                         "campaign.percent", "campaign.title", "email", "first_name", "name", "unsubscribe_mailto", "unsubscribe_url"]

/// Renders subject, text and HTML for one recipient (no MIME, no validation of headers).
public func renderContent(template: EmailTemplate, recipient: MailRecipient, campaign: CampaignMailInfo,
                          unsubscribe: ListUnsubscribe, layout: Bool = true, words: LayoutWords = .english) -> RenderedContent {
    // The built-in names win over fields of the same name; both lists in name order.
    var builtIn: [(String, String)] = [
        ("campaign.count", String(campaign.count)),
        ("campaign.days_left", campaign.daysLeft.map(String.init) ?? ""),
        ("campaign.deadline", campaign.deadline ?? ""),
        ("campaign.goal", campaign.goal.map(String.init) ?? ""),
        ("campaign.milestone", campaign.milestone ?? ""),
        ("campaign.percent", String(campaign.percent)),
        ("campaign.title", campaign.title),
        ("email", recipient.email),
        ("first_name", recipient.firstName),
        ("name", recipient.name),
        ("unsubscribe_mailto", unsubscribe.mailtoURI),
        ("unsubscribe_url", recipient.unsubscribeURL ?? ""),
    ]
    if !recipient.variables.isEmpty {
        builtIn = (builtIn.filter { recipient.variables[$0.0] == nil } + recipient.variables.map { ($0.key, $0.value) }).sorted { $0.0 < $1.0 }
    }
    let fields = recipient.fields.filter { !builtInNames.contains($0.key) && recipient.variables[$0.key] == nil }.sorted { $0.key < $1.key }
    var names: [String] = [], values: [String] = []
    names.reserveCapacity(builtIn.count + fields.count)
    values.reserveCapacity(builtIn.count + fields.count)
    var b = 0, f = 0
    while b < builtIn.count || f < fields.count {
        if f == fields.count || (b < builtIn.count && builtIn[b].0 < fields[f].key) {
            names.append(builtIn[b].0); values.append(builtIn[b].1); b += 1
        } else {
            names.append(fields[f].key); values.append(fields[f].value); f += 1
        }
    }
    let slots = SlotTable(sortedNames: names, values: values, prefix: template.slotPrefix)
    // Mustache and cmark see only tokens, so their output depends on nothing but which
    // values are empty: compute it once per such shape.
    let skeleton = template.skeletons.entry(for: slots.shapeKey) {
        let body = template.bodyTemplate.render(slots.context)
        return SkeletonCache.Entry(subject: slots.compile(template.subjectTemplate.render(slots.context), escape: .none),
                                   text: slots.compile(body, escape: .none),
                                   html: slots.compile(markdownToHTML(slots.prepareForMarkdown(body)), escape: .html))
    }
    let subject = slots.fill(skeleton.subject)
    let text = slots.fill(skeleton.text)
    let fragment = slots.fill(skeleton.html)
    let html = layout
        ? HTMLLayout.wrap(fragment, subject: subject, campaignTitle: campaign.title, sender: campaign.sender,
                          unsubscribeHref: recipient.unsubscribeURL ?? unsubscribe.mailtoURI, words: words)
        : fragment
    return RenderedContent(subject: subject, text: text, html: html)
}

/// CommonMark to HTML with libcmark. Raw HTML written by the organizer is kept
/// (`CMARK_OPT_UNSAFE`); signer values never reach cmark (see `SlotTable`).
public func markdownToHTML(_ markdown: String) -> String {
    let utf8 = Array(markdown.utf8)
    let html: String? = utf8.withUnsafeBufferPointer { buffer in
        buffer.baseAddress.flatMap { base in
            base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                guard let out = cmark_markdown_to_html(chars, buffer.count, muster_cmark_opt_unsafe()) else { return nil }
                defer { free(out) }
                return String(cString: out)
            }
        }
    }
    return html ?? ""
}
