import Dispatch
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// `muster serve`: the collective's own sign page over a workspace's campaigns.
///
/// Built on Hummingbird 2 (SwiftNIO). Every response carries a strict
/// Content-Security-Policy (nothing from other hosts, no script, no framing); every
/// request is logged as one line with no personal data: the time, the method, the
/// route's pattern (never the path as sent, which may hold a token), the status and the
/// time taken.
public struct WebServer: Sendable {
    public struct Configuration: Sendable {
        public var workspace: Workspace
        /// The campaigns to serve, with their manifests.
        public var campaigns: [(Campaign, Manifest)]
        public var listen: ListenAddress
        public var settings: ServeSettings
        public var clock: any Clock
        /// The workspace's settings (the sender of the server's mail).
        public var workspaceSettings: WorkspaceSettings
        /// The relay for confirmation mail (libcurl, as blasts); nil: the mail waits.
        public var transport: BlastTransportFactory?
        /// The first retry's wait after the relay deferred or could not be reached.
        public var mailBackoff: Double
        /// Seconds for a request's head, and then its body, to arrive.
        public var headTimeout: Double = 20
        public var bodyTimeout: Double = 20

        var limits: ConnectionGuard.Limits {
            .init(headTimeout: .milliseconds(Int64(headTimeout * 1000)), bodyTimeout: .milliseconds(Int64(bodyTimeout * 1000)),
                  maxBodyBytes: WebServer.maxBodyBytes)
        }

        public init(workspace: Workspace, campaigns: [(Campaign, Manifest)], listen: ListenAddress, settings: ServeSettings,
                    clock: any Clock, workspaceSettings: WorkspaceSettings,
                    transport: BlastTransportFactory? = nil, mailBackoff: Double = 60) {
            self.workspace = workspace
            self.campaigns = campaigns
            self.listen = listen
            self.settings = settings
            self.clock = clock
            self.workspaceSettings = workspaceSettings
            self.transport = transport
            self.mailBackoff = mailBackoff
        }
    }

    /// Seconds a connection may stay idle (no byte read or written) before it is closed.
    static let idleTimeout: Int64 = 30
    /// The largest request head (request line and headers) accepted.
    static let maxHeaderBytes = 16 * 1024

    let configuration: Configuration
    let sites: [String: CampaignSite]
    let order: [String]
    let templates: WebTemplates
    let formToken = FormToken()
    let mailer: ConfirmationMailer
    let checkInboxPages = RenderedOnce<String>()
    let countPages = RenderedOnce<[String]>()
    let petitionPages = LatestPages()
    /// Why some mail will wait (no relay, no sender), for the operator at start.
    public let warnings: [String]
    /// The origin of `serve.base_url` (`https://host[:port]`), which POSTs must come
    /// from; nil without one (then the Host they were sent to). Parsed once, at start.
    let baseOrigin: String?

    /// Opens every campaign's ledger (creating and migrating it as the CLI does) and
    /// reads the templates (the mail ones included); throws before anything listens.
    public init(_ configuration: Configuration) throws {
        self.configuration = configuration
        var sites: [String: CampaignSite] = [:]
        var mailSites: [ConfirmationMailer.Site] = []
        var warnings: [String] = []
        if configuration.settings.baseURL == nil {
            warnings.append("serve.base_url is not set in muster.yaml: links in mail point to the address the server listens on, and blasts carry no one-click unsubscribe link of this server")
        }
        if configuration.transport == nil {
            warnings.append("no SMTP relay (smtp.url in muster.yaml, or MUSTER_SMTP_URL): confirmation mail waits in the ledgers until one is set")
        }
        // The pages' templates and catalogues, parsed once: the mail's layout words are
        // the campaign's catalogue's too.
        let templates = try WebTemplates(workspace: configuration.workspace)
        for (campaign, manifest) in configuration.campaigns {
            let site = try CampaignSite(campaign: campaign, manifest: manifest)
            sites[campaign.slug] = site
            let (mail, problem) = try SiteMail.load(campaign: campaign, manifest: manifest, settings: configuration.workspaceSettings,
                                                    catalogue: templates.catalogue(manifest.web.language))
            if let problem { warnings.append("\(campaign.slug): \(problem): its confirmation mail waits in the ledger") }
            mailSites.append(.init(slug: campaign.slug, title: manifest.title, goal: manifest.goal, deadline: manifest.deadline,
                                   desk: site.desk, mail: mail))
        }
        self.sites = sites
        self.order = configuration.campaigns.map(\.0.slug)
        if let base = configuration.settings.baseURL, let components = URLComponents(string: base),
           let scheme = components.scheme, let host = components.host {
            self.baseOrigin = "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
        } else {
            self.baseOrigin = nil
        }
        self.templates = templates
        self.warnings = warnings
        self.mailer = ConfirmationMailer(sites: mailSites, transportFactory: configuration.transport, baseURL: configuration.settings.baseURL ?? "",
                                         clock: configuration.clock, backoff: configuration.mailBackoff)
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish. `ready` is
    /// called once with the address actually bound (the port chosen when 0 was asked).
    /// Blocks the calling thread.
    public func run(ready: @escaping @Sendable (ListenAddress) -> Void) throws {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        let server = self
        Task.detached {
            do { try await server.serve(ready: ready) } catch { outcome.error = error }
            done.signal()
        }
        done.wait()
        if let error = outcome.error {
            if let error = error as? MusterError { throw error }
            throw MusterError.failure("cannot serve on \(configuration.listen): \(error)")
        }
    }

    private final class Outcome: @unchecked Sendable {
        // Written by the server task before it signals, read after the wait.
        var error: (any Error)?
    }

    func serve(ready: @escaping @Sendable (ListenAddress) -> Void) async throws {
        var logger = Logger(label: "muster.serve")
        logger.logLevel = .critical
        let host = configuration.listen.host
        let limits = configuration.limits
        let http = HTTP1Channel.Configuration(
            additionalChannelHandlers: [ConnectionGuard(limits)],
            idleTimeout: .seconds(Self.idleTimeout),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: Self.maxHeaderBytes, maxHeaderListSize: Self.maxHeaderBytes, maxHeaderFieldCount: 100))
        let app = Application(
            router: buildRouter(),
            server: .http1(configuration: http),
            configuration: .init(address: .hostname(host, port: configuration.listen.port), serverName: nil),
            onServerRunning: { channel in
                let bound = ListenAddress(host: host, port: channel.localAddress?.port ?? 0)
                self.mailer.start(baseURL: self.configuration.settings.baseURL ?? "http://\(bound)")
                ready(bound)
            },
            logger: logger)
        defer { mailer.stop() }
        // Says when a stop was asked for (Hummingbird's service group does the stopping:
        // no new connection; requests in flight, and their commits, finish first).
        let notices = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { WebLog.line("stopping: finishing the requests in flight") }
            source.resume()
            return source
        }
        defer { notices.forEach { $0.cancel() } }
        try await app.runService()
    }

    func buildRouter() -> Router<WebRequestContext> {
        let router = Router(context: WebRequestContext.self)
        router.add(middleware: PageMiddleware(server: self))
        router.get("/healthz") { _, _ in try await self.health() }
        router.get("/style.css") { _, _ in
            Self.response(.ok, self.templates.stylesheet, type: "text/css; charset=utf-8", cache: "public, max-age=300")
        }
        router.get("/") { request, _ in try await self.index(request) }
        router.get("/c/:slug") { _, context in
            let site = try self.site(context)
            return try await self.petition(site, form: SignForm(), status: .ok)
        }
        router.post("/c/:slug/sign") { request, context in
            let site = try self.site(context)
            return try await self.sign(site, request: request, peer: context.peer)
        }
        router.get("/c/:slug/count.json") { _, context in
            try await self.countJSON(try self.site(context))
        }
        router.get("/c/:slug/badge.svg") { _, context in
            try await self.badge(try self.site(context))
        }
        router.get("/confirm/:token") { request, context in
            try await self.confirmPage(context.parameters.get("token") ?? "", request: request)
        }
        router.post("/confirm/:token") { request, context in
            try await self.confirm(context.parameters.get("token") ?? "", request: request)
        }
        router.get("/u/:token") { request, context in
            try await self.unsubscribePage(context.parameters.get("token") ?? "", request: request)
        }
        router.post("/u/:token") { request, context in
            try await self.unsubscribe(context.parameters.get("token") ?? "", request: request)
        }
        return router
    }

    /// The largest form body accepted (a comment is at most 2,000 characters).
    static let maxFormBytes = 64 * 1024
    /// The largest body of any request: the connection is closed beyond it.
    static let maxBodyBytes = 1024 * 1024

    /// `POST /c/<slug>/sign`: a valid form becomes a pending signature and a queued mail;
    /// the answer is the same "check your inbox" page whether the address is new, already
    /// signed, or was sent a mail in the last day.
    func sign(_ site: CampaignSite, request: Request, peer: String? = nil) async throws -> Response {
        let now = configuration.clock.now()
        let texts = templates.catalogue(site.language), back = ("/c/\(site.slug)", "back_petition")
        if let refusal = crossSiteRefusal(request, texts) { return refusal }
        guard !site.isClosed(at: now) else { return message(.forbidden, texts, "closed", back: back) }
        if let opens = site.manifest.web.opens, site.isNotOpen(at: now) {
            return message(.forbidden, texts, "not_open", ["date": opens.shown], back: back)
        }
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            return message(.unsupportedMediaType, texts, "unexpected_form", back: back)
        }
        var tooLarge: Response { message(.contentTooLarge, texts, "too_large", back: back) }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.maxFormBytes { return tooLarge }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxFormBytes)
        } catch is NIOTooManyBytesError {
            return tooLarge
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return tooLarge
        }
        let pairs = FormBody.decode(Array(buffer: body))
        var form = SignForm(pairs: pairs, manifest: site.manifest)
        let token = pairs.first { $0.0 == "csrf" }?.1 ?? ""
        let signature = form.validate(against: site.manifest)
        if !formToken.isValid(token, slug: site.slug, at: now) {
            form.errors["form"] = FieldError("error_form_token")
        }
        guard form.errors.isEmpty, let signature else {
            return try await petition(site, form: form, status: .unprocessableContent)
        }
        // The client's address is used here only, to be hashed under the ledger's key.
        let client = ClientAddress.resolve(peer: peer, forwardedFor: request.headers[values: .init("X-Forwarded-For")!],
                                           trusted: configuration.settings.trustedProxies)
        let limits = site.manifest.web
        // Answered once the transaction holding the row has committed (group commit).
        let outcome = try await site.desk.write { ledger in
            try ledger.addPendingRow(signature, slug: site.slug, at: now, client: client, limits: limits)
        }
        if case .queued = outcome { mailer.wake() }
        // The same page for every form of a campaign: rendered once.
        let page = checkInboxPages.value(site.slug) {
            let (heading, paragraphs) = texts.page("check_inbox", [:])
            return templates.render("message", PageContext.message(heading: heading, paragraphs: paragraphs,
                                                                   back: (back.0, texts.text(back.1)), texts))
        }
        return Self.response(.ok, page, type: "text/html; charset=utf-8")
    }

    // MARK: - Embedding

    /// How long embedders (and caches between) may keep `count.json` and the badge.
    static let embedCache = "public, max-age=5"

    /// `GET /c/<slug>/count.json`: `count`, `goal`, `percent`, `head` and `updated_at`
    /// (the newest entry's time, null before the first), the same for every visitor.
    func countJSON(_ site: CampaignSite) async throws -> Response {
        let standing = try await site.desk.standing()
        let goal = Int64(site.manifest.goal)
        var object: [String: Any] = ["count": standing.count, "goal": goal, "percent": goal > 0 ? standing.count * 100 / goal : 0,
                                     "head": standing.head]
        object["updated_at"] = standing.updatedAt ?? NSNull()
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        var response = Self.response(.ok, String(decoding: data, as: UTF8.self) + "\n", type: "application/json", cache: Self.embedCache)
        response.headers[.accessControlAllowOrigin] = "*"
        return response
    }

    /// `GET /c/<slug>/badge.svg`: "N signed" and a bar of the goal, for other websites.
    func badge(_ site: CampaignSite) async throws -> Response {
        let standing = try await site.desk.standing()
        var response = Self.response(.ok, Badge.svg(count: standing.count, goal: Int64(site.manifest.goal)),
                                     type: "image/svg+xml", cache: Self.embedCache)
        response.headers[.init("Cross-Origin-Resource-Policy")!] = "cross-origin"
        return response
    }

    // MARK: - Confirmation

    /// The campaign whose ledger knows `token` as a confirmation token, and what it is.
    /// Tokens are hashed with the campaign's slug, so at most one can.
    func pendingSite(_ token: String) async throws -> (CampaignSite, Ledger.PendingLookup)? {
        let now = configuration.clock.now()
        for slug in order {
            let site = sites[slug]!
            let found = try await site.desk.perform { ledger in try ledger.lookupPending(token: token, slug: slug, at: now) }
            if found != .unknown { return (site, found) }
        }
        return nil
    }

    func unknownLink(_ request: Request) -> Response {
        message(.notFound, texts(for: request), "unknown_link", back: ("/", "see_petitions"))
    }

    /// `GET /confirm/<token>`: one button; changes nothing (mail scanners open links).
    func confirmPage(_ token: String, request: Request) async throws -> Response {
        guard let (site, state) = try await pendingSite(token) else { return unknownLink(request) }
        let texts = templates.catalogue(site.language), back = ("/c/\(site.slug)", "see_petition")
        if state == .confirmed {
            let standing = try await site.desk.standing()
            return message(.ok, texts, "counted", Self.countValues(site, standing.count, texts), back: back)
        }
        var context = PageContext.message(heading: texts.text("confirm_heading"), paragraphs: [], texts)
        context["intro"] = texts.text("confirm_intro", ["title": site.manifest.title])
        context["token"] = token
        return html(.ok, "confirm", context)
    }

    /// `POST /confirm/<token>`: the pending signature enters the ledger (source `web`);
    /// pressing again, or reloading, changes nothing more.
    func confirm(_ token: String, request: Request) async throws -> Response {
        // One open campaign: its ledger is the only one that can know the token, so the
        // look-up happens inside the write (one turn of the ledger's writer, instead of a
        // read that waits behind one commit and then a write behind the next). The answers
        // are the same: the refusal of another site's POST first, 404 for an unknown token.
        if order.count == 1, let site = sites[order[0]], !site.isClosed(at: configuration.clock.now()) {
            let texts = templates.catalogue(site.language)
            if let refusal = crossSiteRefusal(request, texts) { return refusal }
            return try await confirm(token, site: site, texts: texts, request: request)
        }
        guard let (site, _) = try await pendingSite(token) else {
            return crossSiteRefusal(request, texts(for: request)) ?? unknownLink(request)
        }
        let texts = templates.catalogue(site.language), back = ("/c/\(site.slug)", "see_petition")
        if let refusal = crossSiteRefusal(request, texts) { return refusal }
        guard !site.isClosed(at: configuration.clock.now()) else { return message(.forbidden, texts, "closed", back: back) }
        return try await confirm(token, site: site, texts: texts, request: request)
    }

    /// Appends the pending signature of `token` to `site`'s ledger, and the page that says so.
    private func confirm(_ token: String, site: CampaignSite, texts: WebCatalogue, request: Request) async throws -> Response {
        let back = ("/c/\(site.slug)", "see_petition")
        let now = configuration.clock.now()
        let slug = site.slug
        let outcome = try await site.desk.write { ledger in try ledger.confirmPendingRow(token: token, slug: slug, at: now) }
        switch outcome {
        case .confirmed(_, let count):
            return countMessage(site, texts, "confirmed", count, back: back)
        case .alreadyConfirmed(let count):
            return countMessage(site, texts, "counted", count, back: back)
        case .duplicate(let count):
            return countMessage(site, texts, "duplicate", count, back: back)
        case .unknown:
            return unknownLink(request)
        }
    }

    // MARK: - Unsubscribe

    /// The campaign whose ledger made `token`, and the fingerprint it names.
    func unsubscribeSite(_ token: String) -> (CampaignSite, String)? {
        for slug in order {
            let site = sites[slug]!
            if let fingerprint = site.links.fingerprint(token: token, slug: slug) { return (site, fingerprint) }
        }
        return nil
    }

    func unknownUnsubscribeLink(_ request: Request) -> Response {
        message(.notFound, texts(for: request), "unknown_unsubscribe_link", back: ("/", "see_petitions"))
    }

    /// `GET /u/<token>`: one button; changes nothing.
    func unsubscribePage(_ token: String, request: Request) async throws -> Response {
        guard let (site, fingerprint) = unsubscribeSite(token) else { return unknownUnsubscribeLink(request) }
        let texts = templates.catalogue(site.language)
        if try await site.desk.perform({ try $0.isOptedOut(fingerprintHex: fingerprint) }) {
            return message(.ok, texts, "unsubscribed", ["title": site.manifest.title], back: ("/c/\(site.slug)", "see_petition"))
        }
        var context = PageContext.message(heading: texts.text("unsubscribe_heading"), paragraphs: [], texts)
        context["intro"] = texts.text("unsubscribe_intro", ["title": site.manifest.title])
        context["token"] = token
        return html(.ok, "unsubscribe", context)
    }

    /// `POST /u/<token>`: the button, or a mail provider's RFC 8058 one-click POST (body
    /// `List-Unsubscribe=One-Click`, sent without an `Origin`): appends an opt-out;
    /// idempotent. A POST with another site's `Origin` is refused like every form.
    func unsubscribe(_ token: String, request: Request) async throws -> Response {
        guard let (site, fingerprint) = unsubscribeSite(token) else {
            return crossSiteRefusal(request, texts(for: request)) ?? unknownUnsubscribeLink(request)
        }
        let texts = templates.catalogue(site.language)
        if let refusal = crossSiteRefusal(request, texts) { return refusal }
        let now = configuration.clock.now()
        _ = try await site.desk.perform { try $0.unsubscribe(fingerprintHex: fingerprint, at: now) }
        return message(.ok, texts, "unsubscribed", ["title": site.manifest.title], back: ("/c/\(site.slug)", "see_petition"))
    }

    /// Stands for the count in a page rendered once (`countMessage`): random digits
    /// between two control characters, which no title or text holds and HTML escaping
    /// leaves as they are.
    static let countMarker = "\u{1}\(UInt64.random(in: 0...UInt64.max))\u{1}"

    /// `message(.ok, texts, key, countValues(…), back:)`, without rendering the template
    /// for every confirmation: the page is rendered once per campaign and key with a
    /// marker where the count goes, and each answer puts the count there (digits and a
    /// group separator, which HTML escaping leaves as they are).
    func countMessage(_ site: CampaignSite, _ texts: WebCatalogue, _ key: String, _ count: Int64,
                      back: (href: String, text: String)) -> Response {
        let parts = countPages.value("\(site.slug)\u{0}\(key)") {
            var values = Self.countValues(site, 0, texts)
            values["count_sentence"] = texts.text("count_sentence", ["count": Self.countMarker,
                                                                     "goal": Number.grouped(Int64(site.manifest.goal), texts.language)])
            let (heading, paragraphs) = texts.page(key, values)
            let page = templates.render("message", PageContext.message(heading: heading, paragraphs: paragraphs,
                                                                       back: (back.href, texts.text(back.text)), texts))
            return page.components(separatedBy: Self.countMarker)
        }
        return Self.response(.ok, parts.joined(separator: Number.grouped(count, texts.language)), type: "text/html; charset=utf-8")
    }

    /// The campaign's title and "N of GOAL signatures so far." for a message page.
    static func countValues(_ site: CampaignSite, _ count: Int64, _ texts: WebCatalogue) -> [String: String] {
        let sentence = texts.text("count_sentence", ["count": Number.grouped(count, texts.language),
                                                     "goal": Number.grouped(Int64(site.manifest.goal), texts.language)])
        return ["title": site.manifest.title, "count_sentence": sentence]
    }

    /// The language of a page that belongs to no campaign (the index, a link that does
    /// not work): the campaigns' language when they share one, else the visitor's
    /// `Accept-Language` among theirs, else English.
    func texts(for request: Request?) -> WebCatalogue {
        let offered = order.reduce(into: [WebLanguage]()) { list, slug in
            let language = sites[slug]!.language
            if !list.contains(language) { list.append(language) }
        }
        if offered.count == 1 { return templates.catalogue(offered[0]) }
        let header = request?.headers[.acceptLanguage]
        return templates.catalogue(WebLanguage.preferred(header, among: offered) ?? .en)
    }

    /// A 403 page when a POST comes from another site: its `Origin` is not this server
    /// (`serve.base_url`, or the Host it was sent to), or, without `Origin`, its
    /// `Sec-Fetch-Site` says cross-site. Browsers that send neither (text browsers)
    /// still need the form's token.
    func crossSiteRefusal(_ request: Request, _ texts: WebCatalogue) -> Response? {
        // Rendered only when it is the answer (this runs for every form).
        var refusal: Response { message(.forbidden, texts, "cross_site", back: ("/", "see_petitions")) }
        if let origin = request.headers[.origin] {
            var allowed: [String] = []
            if let baseOrigin {
                allowed.append(baseOrigin)
            } else if let authority = request.head.authority {
                allowed.append("http://\(authority)")
            }
            return allowed.contains(origin.lowercased()) ? nil : refusal
        }
        if let site = request.headers[.init("Sec-Fetch-Site")!], !["same-origin", "none"].contains(site) { return refusal }
        return nil
    }

    // MARK: - Pages

    func site(_ context: WebRequestContext) throws -> CampaignSite {
        guard let slug = context.parameters.get("slug"), let site = sites[slug] else { throw HTTPError(.notFound) }
        return site
    }

    func health() async throws -> Response {
        var problems: [String] = []
        for slug in order {
            if let problem = await sites[slug]!.desk.writableProblem() { problems.append("\(slug): \(problem)") }
        }
        if problems.isEmpty { return Self.response(.ok, "ok\n", type: "text/plain; charset=utf-8") }
        return Self.response(.serviceUnavailable, problems.joined(separator: "\n") + "\n", type: "text/plain; charset=utf-8")
    }

    func index(_ request: Request) async throws -> Response {
        if order.count == 1 {
            return Response(status: .seeOther, headers: [.location: "/c/\(order[0])", .cacheControl: "no-store"])
        }
        var listed: [(CampaignSite, LedgerStanding)] = []
        for slug in order {
            let site = sites[slug]!
            listed.append((site, try await site.desk.standing()))
        }
        let now = configuration.clock.now()
        return html(.ok, "index", PageContext.index(sites: listed, texts(for: request), now: now))
    }

    func petition(_ site: CampaignSite, form: SignForm, status: HTTPResponse.Status) async throws -> Response {
        let standing = try await site.desk.standing()
        let now = configuration.clock.now()
        let csrf = formToken.issue(slug: site.slug, at: now)
        let render = {
            self.templates.render("petition", PageContext.petition(site, standing: standing, form: form, csrf: csrf,
                                                                   self.templates.catalogue(site.language), now: now))
        }
        guard status == .ok, form.isEmpty else { return Self.response(status, render(), type: "text/html; charset=utf-8") }
        // An empty form's page depends only on the campaign, the second (its form token and
        // the dates shown) and the count: rendered once for all who ask within that second.
        let page = petitionPages.latest("\(site.slug)\u{0}\(csrf)\u{0}\(standing.head)\u{0}\(standing.count)", render: render)
        return Self.response(.ok, page, type: "text/html; charset=utf-8")
    }

    /// A page of the catalogue's `key` (its heading and paragraphs, with `values`), and
    /// a link back (its text a key of the catalogue).
    func message(_ status: HTTPResponse.Status, _ texts: WebCatalogue, _ key: String, _ values: [String: String] = [:],
                 back: (href: String, text: String)? = nil) -> Response {
        let (heading, paragraphs) = texts.page(key, values)
        return html(status, "message", PageContext.message(heading: heading, paragraphs: paragraphs,
                                                           back: back.map { ($0.href, texts.text($0.text)) }, texts))
    }

    func html(_ status: HTTPResponse.Status, _ template: String, _ context: [String: Any]) -> Response {
        Self.response(status, templates.render(template, context), type: "text/html; charset=utf-8")
    }

    static func response(_ status: HTTPResponse.Status, _ body: String, type: String, cache: String = "no-store") -> Response {
        Response(status: status, headers: [.contentType: type, .cacheControl: cache],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Security headers, error pages and the one log line of every request.
struct PageMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext
    let server: WebServer

    /// No script at all, styles and images from this site only, forms posted here only,
    /// never framed.
    static let contentSecurityPolicy =
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError {
            response = page(for: error.status, request)
        } catch {
            response = server.message(.internalServerError, server.texts(for: request), "server_error")
            WebLog.line("error \(Self.kind(of: error))")
        }
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        // Not `no-referrer`: with it, browsers send `Origin: null` on the forms' POSTs, and
        // the Origin check could not tell this site from another. `same-origin` gives
        // other sites nothing (no token in a /confirm/ URL leaks) and this one its Origin.
        response.headers[.init("Referrer-Policy")!] = "same-origin"
        response.headers[.init("X-Frame-Options")!] = "DENY"
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1_000_000
        // The route's pattern (`/c/{slug}`); "-" when no route matched.
        let route = context.endpointPath.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "-"
        WebLog.line("\(request.method.rawValue) \(route) \(response.status.code) \(WebLog.milliseconds(elapsed))ms")
        return response
    }

    func page(for status: HTTPResponse.Status, _ request: Request) -> Response {
        let texts = server.texts(for: request)
        switch status {
        case .notFound:
            return server.message(.notFound, texts, "not_found", back: ("/", "see_petitions"))
        default:
            return server.message(status, texts, "bad_request", ["status": String(status.code)])
        }
    }

    /// The error's type, never its text (which could quote what a signer typed).
    static func kind(of error: any Error) -> String {
        if let error = error as? MusterError { return "muster-\(error.status.rawValue)" }
        return String(describing: type(of: error))
    }
}

/// Values that are the same for every request, by key, rendered on first use: a page
/// (`RenderedOnce<String>`), or a page kept as the pieces around the places a value goes
/// (`RenderedOnce<[String]>`). Two requests that miss at once may both render; the
/// renderings are the same, and the last one stays.
final class RenderedOnce<Value: Sendable>: @unchecked Sendable {
    // `lock` guards `values`.
    private let lock = NSLock()
    private var values: [String: Value] = [:]

    func value(_ key: String, render: () -> Value) -> Value {
        lock.lock()
        if let value = values[key] { lock.unlock(); return value }
        lock.unlock()
        let value = render()
        lock.lock()
        values[key] = value
        lock.unlock()
        return value
    }
}

/// The last page rendered for each campaign, with the key it was rendered for: a page
/// asked again under the same key is not rendered again.
/// Not a `RenderedOnce`: its keys hold the form token and the count, which change every
/// second, so it keeps only the newest page of each campaign (replaced when the key
/// changes) where `RenderedOnce` would keep every page it ever rendered.
final class LatestPages: @unchecked Sendable {
    // `lock` guards `pages`.
    private let lock = NSLock()
    private var pages: [String: (key: String, page: String)] = [:]

    func latest(_ key: String, render: () -> String) -> String {
        let slug = String(key.prefix { $0 != "\u{0}" })
        lock.lock()
        if let cached = pages[slug], cached.key == key { lock.unlock(); return cached.page }
        lock.unlock()
        let page = render()
        lock.lock()
        pages[slug] = (key, page)
        lock.unlock()
        return page
    }
}

/// The server's log: one line per request on standard error, UTC time first.
enum WebLog {
    /// `milliseconds` with one decimal (`12.3`), without Foundation's `String(format:)`.
    static func milliseconds(_ milliseconds: Double) -> String {
        let tenths = Int((max(0, milliseconds) * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    static func line(_ text: String) {
        let line = "\(Timestamp.format(Date())) \(text)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { buffer in
            write(STDERR_FILENO, buffer.baseAddress, buffer.count - 1)
        }
    }
}

/// The request context: Hummingbird's core storage and the peer's IP address (for the
/// per-client limits only; never logged or stored).
public struct WebRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connected peer's IP address as text (the proxy's, behind one).
    public let peer: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress
    }
}
