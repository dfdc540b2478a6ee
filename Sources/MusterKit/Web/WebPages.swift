import Foundation
import Mustache

/// The sign page's templates, `templates/web/*.mustache` and `style.css`, and its texts
/// in each language (`templates/web/en.yaml`, `fr.yaml`): the workspace's own copy of
/// each file first, the built-in one otherwise (read once, when the server starts).
struct WebTemplates: Sendable {
    static let pages = ["header", "footer", "index", "petition", "message", "confirm", "unsubscribe"]
    let library: MustacheLibrary
    let stylesheet: String
    let catalogues: [WebLanguage: WebCatalogue]

    init(workspace: Workspace) throws {
        var library = MustacheLibrary()
        for name in Self.pages {
            let path = "web/\(name).mustache"
            let text = try TemplateSource.text(for: path, workspace: workspace)
            do {
                try library.register(text, named: name)
            } catch {
                throw MusterError.badInput("templates/\(path) is not a valid Mustache template: \(error)")
            }
        }
        self.library = library
        self.stylesheet = try TemplateSource.text(for: "web/style.css", workspace: workspace)
        var catalogues: [WebLanguage: WebCatalogue] = [:]
        for language in WebLanguage.allCases { catalogues[language] = try WebCatalogue(language, workspace: workspace) }
        self.catalogues = catalogues
    }

    func catalogue(_ language: WebLanguage) -> WebCatalogue { catalogues[language]! }

    func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }
}

/// What a signer typed into the sign form, kept to show it again beside the errors.
struct SignForm: Sendable {
    var name = ""
    var email = ""
    var comment = ""
    var fields: [String: String] = [:]
    var consents: Set<String> = []
    /// Problems by form parameter (`name`, `email`, `field.region`, `comment`; `form`
    /// for the form's token).
    var errors: [String: FieldError] = [:]

    /// Nothing typed and nothing to say: the form as a new visitor sees it.
    var isEmpty: Bool {
        name.isEmpty && email.isEmpty && comment.isEmpty && fields.isEmpty && consents.isEmpty && errors.isEmpty
    }
}

/// One campaign as `muster serve` shows it.
final class CampaignSite: Sendable {
    let campaign: Campaign
    let manifest: Manifest
    /// `petition.md` as HTML (raw HTML escaped), rendered once at start.
    let petitionHTML: String
    let desk: LedgerDesk
    /// Checks the campaign's unsubscribe links.
    let links: UnsubscribeLinks

    var slug: String { campaign.slug }
    var language: WebLanguage { manifest.web.language }

    init(campaign: Campaign, manifest: Manifest) throws {
        self.campaign = campaign
        self.manifest = manifest
        let markdown = (try? String(contentsOf: campaign.petitionURL, encoding: .utf8)) ?? ""
        self.petitionHTML = SafeMarkdown.html(markdown, title: manifest.title)
        self.desk = try LedgerDesk(campaign: campaign)
        self.links = try desk.sync { try $0.unsubscribeLinks() }
    }

    /// Closed once the deadline day (UTC) is over, or at `web: closes:`.
    func isClosed(at date: Date) -> Bool {
        if let closes = manifest.web.closes, date >= closes.instant { return true }
        guard let deadline = manifest.deadline else { return false }
        return Timestamp.day(date) > deadline
    }

    /// Before `web: open:`: the form is not shown yet and takes nothing.
    func isNotOpen(at date: Date) -> Bool {
        manifest.web.opens.map { date < $0.instant } ?? false
    }

    /// The form's last day or instant as shown: the earlier of the deadline and `closes`.
    var closesShown: String? {
        let deadline = manifest.deadline.flatMap { day in Timestamp.parse(day).map { (day, $0.addingTimeInterval(86_400)) } }
        switch (deadline, manifest.web.closes) {
        case let ((day, end)?, closes?): return closes.instant < end ? closes.shown : day
        case let ((day, _)?, nil): return day
        case let (nil, closes?): return closes.shown
        case (nil, nil): return nil
        }
    }
}

/// Mustache contexts for the pages (plain dictionaries: the fastest for swift-mustache).
enum PageContext {
    /// What every page has: `lang`, the title, the site's name and the catalogue's
    /// plain texts as `t` (`{{t.sign_button}}`).
    static func base(title: String?, _ texts: WebCatalogue) -> [String: Any] {
        let siteName = texts.text("site_name")
        return ["lang": texts.language.rawValue, "page_title": title ?? siteName, "site_name": siteName, "t": texts.all]
    }

    static func index(sites: [(CampaignSite, LedgerStanding)], _ texts: WebCatalogue, now: Date) -> [String: Any] {
        var context = base(title: nil, texts)
        context["has_campaigns"] = !sites.isEmpty
        context["campaigns"] = sites.map { site, standing -> [String: Any] in
            ["slug": site.slug, "title": site.manifest.title,
             "count_line": texts.text("index_count", ["count": Number.grouped(standing.count, texts.language),
                                                      "goal": Number.grouped(Int64(site.manifest.goal), texts.language)]),
             "closed": site.isClosed(at: now)]
        }
        return context
    }

    static func petition(_ site: CampaignSite, standing: LedgerStanding, form: SignForm, csrf: String, _ texts: WebCatalogue, now: Date) -> [String: Any] {
        let manifest = site.manifest
        let language = texts.language
        var context = base(title: manifest.title, texts)
        let goal = Int64(manifest.goal)
        context["slug"] = site.slug
        context["title"] = manifest.title
        context["petition_html"] = site.petitionHTML
        context["count"] = Number.grouped(standing.count, language)
        context["count_of_goal"] = texts.text("count_of_goal", ["goal": Number.grouped(goal, language)])
        context["goal_raw"] = String(goal)
        context["count_progress"] = String(min(standing.count, goal))
        context["percent"] = String(goal > 0 ? standing.count * 100 / goal : 0)
        context["has_milestones"] = !manifest.milestones.isEmpty
        context["milestones"] = manifest.milestones.map { milestone -> [String: Any] in
            var item: [String: Any] = ["text": texts.text(milestone.at == 1 ? "milestone_one" : "milestone_other",
                                                          ["at": Number.grouped(Int64(milestone.at), language)]),
                                       "reached": standing.count >= Int64(milestone.at)]
            if let label = milestone.label { item["label"] = label }
            return item
        }
        let closed = site.isClosed(at: now)
        if let opens = manifest.web.opens, site.isNotOpen(at: now) {
            context["not_open"] = texts.text("not_open_notice", ["date": opens.shown])
        }
        if let until = site.closesShown {
            context["deadline_line"] = texts.text(closed ? "deadline_closed" : "deadline_open", ["date": until])
        }
        context["closed"] = closed
        context["no_form"] = closed || site.isNotOpen(at: now)
        context["csrf"] = csrf

        var inputs: [[String: Any]] = []
        func input(_ param: String, label: String, value: String, required: Bool, type: String = "text",
                   autocomplete: String = "off", options: [String]? = nil, textarea: Bool = false) {
            var item: [String: Any] = ["param": param, "id": "in-" + param.replacingOccurrences(of: ".", with: "-"),
                                       "label": label, "value": value, "required": required, "type": type,
                                       "autocomplete": autocomplete]
            if let error = form.errors[param] { item["error"] = texts.text(error.key, error.values) }
            if let options {
                item["is_select"] = true
                item["options"] = options.map { ["value": $0, "selected": $0 == value] as [String: Any] }
            } else if textarea {
                item["is_textarea"] = true
            } else {
                item["is_input"] = true
            }
            inputs.append(item)
        }
        input("name", label: texts.text("label_name"), value: form.name, required: true, autocomplete: "name")
        input("email", label: texts.text("label_email"), value: form.email, required: true, type: "email", autocomplete: "email")
        for field in manifest.fields {
            input("field." + field.name, label: field.label ?? field.name, value: form.fields[field.name] ?? "",
                  required: field.required, options: field.options)
        }
        input("comment", label: texts.text("label_comment"), value: form.comment, required: false, textarea: true)
        context["inputs"] = inputs
        context["has_consents"] = !manifest.consents.isEmpty
        context["consents"] = manifest.consents.map { consent -> [String: Any] in
            ["param": "consent." + consent.key, "id": "in-consent-" + consent.key, "text": consent.text,
             "checked": form.consents.contains(consent.key)]
        }
        let fieldErrors = form.errors.keys.filter { $0 != "form" }.count
        context["has_errors"] = !form.errors.isEmpty
        context["has_field_errors"] = fieldErrors > 0
        if let formError = form.errors["form"] { context["form_error"] = texts.text(formError.key, formError.values) }
        context["errors_summary"] = texts.text(fieldErrors == 1 ? "errors_summary_one" : "errors_summary_other",
                                               ["count": String(fieldErrors)])
        return context
    }

    static func message(heading: String, paragraphs: [String], back: (href: String, text: String)? = nil, _ texts: WebCatalogue) -> [String: Any] {
        var context = base(title: heading, texts)
        context["heading"] = heading
        context["paragraphs"] = paragraphs
        if let back {
            context["back_href"] = back.href
            context["back_text"] = back.text
        }
        return context
    }
}
