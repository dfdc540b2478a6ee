import Foundation
import Testing

/// `muster serve`, slice 1: the server, its pages and its log, through the real binary
/// on a loopback port (issue 12).
@Suite struct ServePageTests {
    static let manifest = """
        title: "Fair rates <for> translators"
        goal: 10
        deadline: 2099-12-31
        milestones:
          - at: 1
            label: "First one"
          - at: 5
        fields:
          - name: region
            label: "Your region"
            required: true
          - name: profession
            options: [translator, interpreter, other]
        consent:
          updates: "Keep me informed"
        """

    @Test func healthStyleAndSecurityHeaders() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let server = try ServerProcess(box)
        let health = try server.get("/healthz")
        #expect(health.status == 200 && health.body == "ok\n", "\(health)")
        let css = try server.get("/style.css")
        #expect(css.status == 200 && css.headers["content-type"]?.hasPrefix("text/css") == true, "\(css)")
        for response in [health, css, try server.get("/c/fair-rates")] {
            let policy = try #require(response.headers["content-security-policy"], "\(response)")
            #expect(policy.contains("default-src 'none'") && policy.contains("frame-ancestors 'none'") && !policy.contains("unsafe"))
            #expect(response.headers["x-content-type-options"] == "nosniff")
            #expect(response.headers["set-cookie"] == nil)
        }
    }

    @Test func scaffoldedTitleHeadingIsNotShownTwice() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        try box.write("campaigns/fair-rates/petition.md", "# Fair rates <for> translators\n\nWe ask.\n")
        let server = try ServerProcess(box)
        let page = try server.get("/c/fair-rates").body
        #expect(page.components(separatedBy: "<h1>").count == 2, "one <h1>: the page's title\n\(page)")
        _ = server.stop()
        try box.write("campaigns/fair-rates/petition.md", "# Our demands\n\nWe ask.\n")
        let other = try ServerProcess(box).get("/c/fair-rates").body
        #expect(other.contains("<h1>Our demands</h1>"), "a first heading of the author's own is kept\n\(other)")
    }

    @Test func petitionPageShowsTextCountMilestonesAndForm() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        try box.write("campaigns/fair-rates/petition.md", "# Fair rates\n\nWe ask for **fair** rates.\n")
        let server = try ServerProcess(box)
        let page = try server.get("/c/fair-rates")
        #expect(page.status == 200, "\(page)")
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        let html = page.body
        #expect(html.contains("<strong>fair</strong>"), "petition.md rendered as CommonMark")
        #expect(html.contains("Fair rates &lt;for&gt; translators"), "the title is escaped")
        #expect(html.contains("<strong>0</strong> of 10 signatures"))
        #expect(html.contains(#"<progress max="10" value="0">"#))
        #expect(html.contains("1 signature: First one") && html.contains("5 signatures"))
        #expect(html.contains("Open until 2099-12-31"))
        #expect(html.contains(#"<form class="sign" method="post" action="/c/fair-rates/sign""#))
        for name in ["name", "email", "field.region", "comment", "csrf"] {
            #expect(html.contains(#"name="\#(name)""#), "the form has \(name)")
        }
        #expect(html.contains(#"<select id="in-field-profession" name="field.profession">"#))
        for option in ["translator", "interpreter", "other"] { #expect(html.contains(#"<option value="\#(option)">"#)) }
        #expect(html.contains(#"<label for="in-field-region">Your region <span class="req">(required)</span>"#))
        #expect(html.contains(#"name="field.region" type="text" value="" autocomplete="off" required"#))
        let consent = try #require(html.range(of: #"<input type="checkbox"[^>]*>"#, options: .regularExpression).map { String(html[$0]) })
        #expect(consent.contains(#"name="consent.updates""#) && !consent.contains("checked"), "consents start unticked: \(consent)")
        #expect(html.contains("Keep me informed"))
        // Nothing from other hosts, no script.
        #expect(html.range(of: #"(src|href|action)="(https?:)?//"#, options: .regularExpression) == nil)
        #expect(!html.contains("<script"))
    }

    @Test func rawHTMLAndScriptLinksInThePetitionAreNotTrusted() throws {
        let box = try Sandbox.withCampaign()
        try box.write("campaigns/fair-rates/petition.md", """
            # Title

            <script>alert("block")</script>

            Inline <img src=x onerror=alert(1)> and [a link](javascript:alert(2)) and <b>bold</b>.
            """)
        let server = try ServerProcess(box)
        let html = try server.get("/c/fair-rates").body
        #expect(!html.contains("<script") && !html.contains("<img") && !html.contains("<b>"), "\(html)")
        #expect(!html.contains("javascript:"), "\(html)")
        #expect(html.contains("&lt;script&gt;alert(&quot;block&quot;)&lt;/script&gt;"), "raw HTML shown as text")
        #expect(html.contains("&lt;img src=x onerror=alert(1)&gt;"))
    }

    @Test func countFollowsSignaturesMadeByTheCLIWhileServing() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        let server = try ServerProcess(box)
        #expect(try server.get("/c/fair-rates").body.contains("<strong>0</strong> of 10"))
        let signed = try box.run(["sign", "--name", "Ana Lima", "--email", "ana@example.org", "--field", "region=Lyon"])
        #expect(signed.status == 0, "\(signed)")
        let html = try server.get("/c/fair-rates").body
        #expect(html.contains("<strong>1</strong> of 10"), "\(html)")
        #expect(html.contains(#"<progress max="10" value="1">"#))
        #expect(html.contains("First one (reached)"))
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func closedCampaignShowsNoForm() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest.replacingOccurrences(of: "2099-12-31", with: "2020-01-31"))
        let server = try ServerProcess(box)
        let html = try server.get("/c/fair-rates").body
        #expect(html.contains("Closed on 2020-01-31") && html.contains("This petition is closed"))
        #expect(!html.contains("<form"))
    }

    @Test func indexListsCampaignsOrRedirectsToTheOnlyOne() throws {
        let box = try Sandbox.withCampaign()
        do {
            let server = try ServerProcess(box)
            let root = try server.get("/")
            #expect(root.status == 303 && root.headers["location"] == "/c/fair-rates", "\(root)")
        }
        #expect(try box.run(["new", "second-one", "--title", "Second & last", "--goal", "5"]).status == 0)
        let server = try ServerProcess(box)
        let root = try server.get("/")
        #expect(root.status == 200)
        #expect(root.body.contains(#"<a href="/c/fair-rates">Fair rates</a>"#), "\(root.body)")
        #expect(root.body.contains(#"<a href="/c/second-one">Second &amp; last</a>: 0 of 5"#), "\(root.body)")
        // -c serves only what it names.
        let only = try ServerProcess(box, ["-c", "second-one"])
        #expect(try only.get("/c/fair-rates").status == 404)
        #expect(try only.get("/c/second-one").status == 200)
    }

    @Test func unknownPagesAre404PagesAndTheLogHoldsNoPathOrAddress() throws {
        let box = try Sandbox.withCampaign()
        let server = try ServerProcess(box)
        let missing = try server.get("/c/nope?email=ana%40example.org")
        #expect(missing.status == 404 && missing.body.contains("Page not found"), "\(missing)")
        #expect(missing.headers["content-security-policy"] != nil)
        let elsewhere = try server.get("/secret/ana%40example.org")
        #expect(elsewhere.status == 404, "\(elsewhere)")
        #expect(try server.get("/c/fair-rates").status == 200)
        let (status, log) = server.stop()
        #expect(status == 0, "\(log)")
        #expect(log.contains("GET /c/{slug} 200") && log.contains("GET /c/{slug} 404"), "\(log)")
        #expect(log.contains("GET - 404"), "\(log)")
        #expect(!log.contains("ana") && !log.contains("nope") && !log.contains("127.0.0.1:\(server.port) "), "\(log)")
        #expect(log.contains("muster: stopped"), "\(log)")
    }

    @Test func workspaceTemplatesOverrideTheBuiltInOnes() throws {
        let box = try Sandbox.withCampaign()
        try box.write("templates/web/footer.mustache", "<p>Collectif maison</p></main></body></html>\n")
        try box.write("templates/web/style.css", "body { color: rebeccapurple; }\n")
        let server = try ServerProcess(box)
        #expect(try server.get("/c/fair-rates").body.contains("<p>Collectif maison</p>"))
        #expect(try server.get("/style.css").body == "body { color: rebeccapurple; }\n")
    }

    @Test func badListenAddressesAreRefused() throws {
        let box = try Sandbox.withCampaign()
        let bad = try box.run(["serve", "--listen", "localhost"])
        #expect(bad.status == 64 && bad.stderr.contains("--listen"), "\(bad)")
        let port = try box.run(["serve", "--listen", "127.0.0.1:70000"])
        #expect(port.status == 64 && port.stderr.contains("70000"), "\(port)")
        try box.write("muster.yaml", "serve:\n  listen: nowhere\n  trust_proxy: [127.0.0.1, proxy.example]\n  base_url: ftp://x\n")
        let settings = try box.run(["serve"])
        #expect(settings.status == 65, "\(settings)")
        #expect(settings.stderr.contains("muster.yaml:2") && settings.stderr.contains("'listen'"), "\(settings.stderr)")
        #expect(settings.stderr.contains("muster.yaml:3") && settings.stderr.contains("proxy.example"), "\(settings.stderr)")
        #expect(settings.stderr.contains("muster.yaml:4") && settings.stderr.contains("base_url"), "\(settings.stderr)")
        try box.write("muster.yaml", "serve:\n  listen: 127.0.0.1:0\n")
        let unknown = try box.run(["serve", "-c", "nope"])
        #expect(unknown.status == 64, "\(unknown)")
    }

    @Test func aPortInUseIsAClearFailure() throws {
        let box = try Sandbox.withCampaign()
        let first = try ServerProcess(box)
        let second = try box.run(["serve", "--listen", "127.0.0.1:\(first.port)"])
        #expect(second.status == 1 && second.stderr.contains("cannot serve on 127.0.0.1:\(first.port)"), "\(second)")
    }
}
