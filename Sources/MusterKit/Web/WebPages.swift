import Foundation
import Mustache

/// The sign page's templates, `templates/web/*.mustache` and `style.css`: the
/// workspace's own copy of each file first, the built-in one otherwise (read once, when
/// the server starts).
struct WebTemplates: Sendable {
    static let pages = ["header", "footer", "index", "petition", "message", "confirm", "unsubscribe"]
    let library: MustacheLibrary
    let stylesheet: String

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
    }

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
    /// Error messages by form parameter (`name`, `email`, `field.region`, `comment`).
    var errors: [String: String] = [:]
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

    init(campaign: Campaign, manifest: Manifest) throws {
        self.campaign = campaign
        self.manifest = manifest
        let markdown = (try? String(contentsOf: campaign.petitionURL, encoding: .utf8)) ?? ""
        self.petitionHTML = SafeMarkdown.html(markdown)
        self.desk = try LedgerDesk(campaign: campaign)
        self.links = try desk.sync { try $0.unsubscribeLinks() }
    }

    /// Closed once the deadline day (UTC) is over.
    func isClosed(at date: Date) -> Bool {
        guard let deadline = manifest.deadline else { return false }
        return Timestamp.day(date) > deadline
    }
}

/// Mustache contexts for the pages (plain dictionaries: the fastest for swift-mustache).
enum PageContext {
    static func base(title: String, siteName: String) -> [String: Any] {
        ["lang": "en", "page_title": title, "site_name": siteName]
    }

    static func index(sites: [(CampaignSite, LedgerStanding)], siteName: String, now: Date) -> [String: Any] {
        var context = base(title: siteName, siteName: siteName)
        context["has_campaigns"] = !sites.isEmpty
        context["campaigns"] = sites.map { site, standing -> [String: Any] in
            ["slug": site.slug, "title": site.manifest.title, "count": Number.grouped(standing.count),
             "goal": Number.grouped(Int64(site.manifest.goal)), "closed": site.isClosed(at: now)]
        }
        return context
    }

    static func petition(_ site: CampaignSite, standing: LedgerStanding, form: SignForm, csrf: String, siteName: String, now: Date) -> [String: Any] {
        let manifest = site.manifest
        var context = base(title: manifest.title, siteName: siteName)
        let goal = Int64(manifest.goal)
        context["slug"] = site.slug
        context["title"] = manifest.title
        context["petition_html"] = site.petitionHTML
        context["count"] = Number.grouped(standing.count)
        context["goal"] = Number.grouped(goal)
        context["goal_raw"] = String(goal)
        context["count_progress"] = String(min(standing.count, goal))
        context["percent"] = String(goal > 0 ? standing.count * 100 / goal : 0)
        context["has_milestones"] = !manifest.milestones.isEmpty
        context["milestones"] = manifest.milestones.map { milestone -> [String: Any] in
            var item: [String: Any] = ["at": Number.grouped(Int64(milestone.at)), "one": milestone.at == 1,
                                       "reached": standing.count >= Int64(milestone.at)]
            if let label = milestone.label { item["label"] = label }
            return item
        }
        if let deadline = manifest.deadline { context["deadline"] = deadline }
        context["closed"] = site.isClosed(at: now)
        context["csrf"] = csrf

        var inputs: [[String: Any]] = []
        func input(_ param: String, label: String, value: String, required: Bool, type: String = "text",
                   autocomplete: String = "off", options: [String]? = nil, textarea: Bool = false) {
            var item: [String: Any] = ["param": param, "id": "in-" + param.replacingOccurrences(of: ".", with: "-"),
                                       "label": label, "value": value, "required": required, "type": type,
                                       "autocomplete": autocomplete]
            if let error = form.errors[param] { item["error"] = error }
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
        input("name", label: "Your name", value: form.name, required: true, autocomplete: "name")
        input("email", label: "Your email address", value: form.email, required: true, type: "email", autocomplete: "email")
        for field in manifest.fields {
            input("field." + field.name, label: field.label ?? field.name, value: form.fields[field.name] ?? "",
                  required: field.required, options: field.options)
        }
        input("comment", label: "Comment (optional)", value: form.comment, required: false, textarea: true)
        context["inputs"] = inputs
        context["has_consents"] = !manifest.consents.isEmpty
        context["consents"] = manifest.consents.map { consent -> [String: Any] in
            ["param": "consent." + consent.key, "id": "in-consent-" + consent.key, "text": consent.text,
             "checked": form.consents.contains(consent.key)]
        }
        let fieldErrors = form.errors.keys.filter { $0 != "form" }.count
        context["has_errors"] = !form.errors.isEmpty
        context["has_field_errors"] = fieldErrors > 0
        if let formError = form.errors["form"] { context["form_error"] = formError }
        context["error_count"] = String(fieldErrors)
        context["error_plural"] = fieldErrors == 1 ? "" : "s"
        return context
    }

    static func message(heading: String, paragraphs: [String], back: (href: String, text: String)? = nil, siteName: String) -> [String: Any] {
        var context = base(title: heading, siteName: siteName)
        context["heading"] = heading
        context["paragraphs"] = paragraphs
        if let back {
            context["back_href"] = back.href
            context["back_text"] = back.text
        }
        return context
    }
}
