import Foundation
import Testing

/// `muster serve` in English and French, chosen per campaign (`web: language:`): the
/// pages, the validation messages and the server's mail, through the real binary, real
/// HTTP and the aiosmtpd sink (issue 12).
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct ServeLanguageTests {
    static func post(_ server: ServerProcess, _ slug: String, _ pairs: [(String, String)], headers: [String: String] = [:]) throws -> HTTPResult {
        let html = try server.get("/c/\(slug)").body
        let range = try #require(html.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression))
        let token = String(html[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        var all = headers
        all["Content-Type"] = "application/x-www-form-urlencoded"
        all["Origin"] = server.base
        return try server.request("/c/\(slug)/sign", method: "POST", headers: all, body: ServeSignTests.encode([("csrf", token)] + pairs))
    }

    /// The mail the sink received for `address`.
    static func mail(_ relay: TestRelay, to address: String) throws -> (subject: String, text: String, html: String, defects: [String]) {
        var found: (subject: String, text: String, html: String, defects: [String])?
        try ServeConfirmTests.eventually("the mail to \(address)") {
            guard let index = try relay.received().firstIndex(where: { $0.to == [address] }) else { return false }
            found = try relay.parsed(index)
            return true
        }
        return try #require(found)
    }

    @Test func aFrenchCampaignBesideAnEnglishOneOnTheSameServer() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        let relay = try TestRelay(in: box)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: \(relay.url)\n  starttls: never\n")
        // `muster new --language fr` scaffolds a French campaign, its confirmation mail included.
        let made = try box.run(["new", "juste-tarif", "--title", "Un juste tarif", "--goal", "2000", "--language", "fr"])
        #expect(made.status == 0, "\(made)")
        let manifest = try String(contentsOf: box.path("campaigns/juste-tarif/campaign.yaml"), encoding: .utf8)
        #expect(manifest.contains("web:\n  language: fr\n") && manifest.contains(#"label: "Votre ville ou région""#), "\(manifest)")
        let scaffolded = try String(contentsOf: box.path("campaigns/juste-tarif/emails/confirm.md"), encoding: .utf8)
        #expect(scaffolded.contains("subject: \"Merci de confirmer votre signature") && scaffolded.contains("{{confirm_url}}"), "\(scaffolded)")
        #expect(!box.exists("campaigns/juste-tarif/emails/confirm.fr.md") && !box.exists("campaigns/juste-tarif/petition.md.fr"))
        #expect(try String(contentsOf: box.path("campaigns/juste-tarif/petition.md"), encoding: .utf8).contains("Ce que nous demandons"))
        // A second French campaign without emails/confirm.md: the built-in French mail.
        #expect(try box.run(["new", "autre", "--language", "fr"]).status == 0)
        try FileManager.default.removeItem(at: box.path("campaigns/autre/emails/confirm.md"))
        #expect(try box.run(["check"]).status == 0)
        // An English campaign scaffolded the usual way stays English.
        #expect(!(try String(contentsOf: box.path("campaigns/fair-rates/emails/confirm.md"), encoding: .utf8)).contains("Merci"))

        let server = try ServerProcess(box)
        let french = try server.get("/c/juste-tarif").body
        for text in [#"<html lang="fr">"#, "Signer cette pétition", #"Votre nom <span class="req">(obligatoire)</span>"#,
                     "Votre adresse e-mail", "Commentaire (facultatif)", #"<button type="submit">Signer</button>"#,
                     "<strong>0</strong> signatures sur 2\u{202F}000", "Cette page ne charge rien"] {
            #expect(french.contains(text), "\(text) in \(french)")
        }
        for english in ["Sign this petition", "Your name", "(required)", "signatures so far", "This page loads"] {
            #expect(!french.contains(english), "no English '\(english)' on the French page")
        }
        let english = try server.get("/c/fair-rates").body
        #expect(english.contains(#"<html lang="en">"#) && english.contains("Sign this petition") && english.contains("<strong>0</strong> of 10"))
        #expect(!english.contains("Signer") && !english.contains("obligatoire"))

        // Validation errors beside their fields, in the campaign's language.
        let invalid = try Self.post(server, "juste-tarif", [("name", ""), ("email", "ana@@exemple"), ("field.region", "Lyon")])
        #expect(invalid.status == 422, "\(invalid)")
        #expect(invalid.body.contains("Veuillez corriger les 2 problèmes ci-dessous."), "\(invalid.body)")
        #expect(invalid.body.contains(#"<p class="error" id="in-name-error">Ce champ est obligatoire.</p>"#), "\(invalid.body)")
        #expect(invalid.body.contains("Veuillez saisir une adresse e-mail valide") && invalid.body.contains(#"value="ana@@exemple""#))
        #expect(!invalid.body.contains("is required") && !invalid.body.contains("Please"), "no English message: \(invalid.body)")
        let englishInvalid = try Self.post(server, "fair-rates", [("name", "Ana"), ("email", ""), ("field.region", "Lyon")])
        #expect(englishInvalid.status == 422 && englishInvalid.body.contains("Please correct the problem below.")
                && englishInvalid.body.contains("This field is required."), "\(englishInvalid.body)")
        let badToken = try server.request("/c/juste-tarif/sign", method: "POST",
                                          headers: ["Content-Type": "application/x-www-form-urlencoded", "Origin": server.base],
                                          body: ServeSignTests.encode([("name", "Ana"), ("email", "ana@exemple.fr"), ("field.region", "Lyon")]))
        #expect(badToken.status == 422 && badToken.body.contains("Ce formulaire était trop ancien"), "\(badToken.body)")
        #expect(try ServeConfirmTests.ledgerRows(box, "juste-tarif", "SELECT count(*) FROM pending") == "0")

        // A valid form: the French "check your inbox", the French mail, the French pages after it.
        let sent = try Self.post(server, "juste-tarif", [("name", "Zoé Martin"), ("email", "zoe@exemple.fr"), ("field.region", "Lyon")])
        #expect(sent.status == 200 && sent.body.contains("<h1>Consultez votre boîte mail</h1>") && sent.body.contains("Retour à la pétition"), "\(sent.body)")
        let mail = try Self.mail(relay, to: "zoe@exemple.fr")
        #expect(mail.subject == "Merci de confirmer votre signature : Un juste tarif", "\(mail)")
        #expect(mail.text.hasPrefix("Bonjour Zoé,") && mail.text.contains("« Confirmer ma signature »"), "\(mail.text)")
        #expect(mail.html.contains(#"<html lang="fr">"#) && mail.html.contains("Envoyé par") && mail.html.contains("Se désabonner</a>"),
                "the layout in French: \(mail.html)")
        #expect(!mail.html.contains("Unsubscribe") && !mail.html.contains("Sent by") && mail.defects.isEmpty, "no English layout: \(mail.html)")
        let path = try ServeConfirmTests.confirmPath(mail.text)
        let page = try server.get(path)
        #expect(page.body.contains(#"<html lang="fr">"#) && page.body.contains("Confirmez votre signature")
                && page.body.contains("Confirmer ma signature</button>") && page.body.contains("Vous signez « Un juste tarif »"), "\(page.body)")
        let pressed = try server.request(path, method: "POST", headers: ["Origin": server.base])
        #expect(pressed.status == 200 && pressed.body.contains("Merci : votre signature compte")
                && pressed.body.contains("1 signatures sur 2\u{202F}000 à ce jour."), "\(pressed.body)")
        #expect(try server.get(path).body.contains("Votre signature est comptée"))
        // The same address again: the French "already signed" mail.
        #expect(try Self.post(server, "juste-tarif", [("name", "Zoé"), ("email", "zoe@exemple.fr"), ("field.region", "Lyon")]).status == 200)
        try ServeConfirmTests.eventually("the already-signed mail") { try relay.received().filter { $0.to == ["zoe@exemple.fr"] }.count == 2 }
        let already = try relay.parsed(try #require(relay.received().lastIndex { $0.to == ["zoe@exemple.fr"] }))
        #expect(already.subject == "Vous avez déjà signé : Un juste tarif" && already.text.contains("Nous sommes 1 à ce jour"), "\(already)")

        // The campaign without its own confirm.md: the built-in French mail.
        #expect(try Self.post(server, "autre", [("name", "Léa"), ("email", "lea@exemple.fr"), ("field.region", "Lyon")]).status == 200)
        #expect(try Self.mail(relay, to: "lea@exemple.fr").subject.hasPrefix("Merci de confirmer votre signature : "))
        // And the English campaign's mail stays English.
        #expect(try Self.post(server, "fair-rates", [("name", "Ana"), ("email", "ana@example.org"), ("field.region", "Lyon")])
                .body.contains("Check your inbox"))
        let englishMail = try Self.mail(relay, to: "ana@example.org")
        #expect(englishMail.subject.hasPrefix("Please confirm your signature") && englishMail.html.contains("Unsubscribe"), "\(englishMail)")

        // Pages of no campaign: the visitor's Accept-Language among the campaigns' languages.
        let index = try server.request("/", headers: ["Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"])
        #expect(index.body.contains(#"<html lang="fr">"#) && index.body.contains("<h1>Pétitions</h1>") && index.body.contains("1 signatures sur 2\u{202F}000"), "\(index.body)")
        #expect(try server.get("/").body.contains("<h1>Petitions</h1>"))
        let lost = try server.request("/confirm/" + String(repeating: "A", count: 22), headers: ["Accept-Language": "fr"])
        #expect(lost.status == 404 && lost.body.contains("Ce lien ne fonctionne pas"), "\(lost.body)")
        #expect(try server.request("/nowhere", headers: ["Accept-Language": "de, en;q=0.3"]).body.contains("Page not found"))
    }

    @Test func aBadLanguageIsRefusedWithItsFileAndLine() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest + "\nweb:\n  language: de\n")
        for command in [["serve"], ["check"]] {
            let result = try box.run(command)
            #expect(result.status == 65, "\(command): \(result)")
            #expect(result.stderr.contains("campaigns/fair-rates/campaign.yaml:17") && result.stderr.contains("'language' must be one of en, fr, not 'de'"),
                    "\(command): \(result.stderr)")
        }
        let new = try box.run(["new", "other", "--language", "klingon"])
        #expect(new.status == 64 && new.stderr.contains("--language must be one of en, fr; got 'klingon'"), "\(new)")
        #expect(!box.exists("campaigns/other"))
    }

    @Test func theWorkspacesCatalogueWinsAndIsChecked() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest + "\nweb:\n  language: fr\n")
        try box.write("templates/web/fr.yaml", "sign_button: \"Je signe\"\ncheck_inbox:\n  heading: \"Regardez vos messages\"\n")
        do {
            let server = try ServerProcess(box)
            let page = try server.get("/c/fair-rates").body
            #expect(page.contains(#"<button type="submit">Je signe</button>"#) && page.contains("Signer cette pétition"), "the other texts stay built in")
            let sent = try Self.post(server, "fair-rates", [("name", "Zoé"), ("email", "zoe@exemple.fr"), ("field.region", "Lyon")])
            #expect(sent.body.contains("<h1>Regardez vos messages</h1>") && sent.body.contains("Nous avons envoyé un e-mail"), "\(sent.body)")
        }
        try box.write("templates/web/fr.yaml", "sign_button: \"Je signe\"\nsign_buton: \"typo\"\n")
        let typo = try box.run(["serve"])
        #expect(typo.status == 65 && typo.stderr.contains("templates/web/fr.yaml:2") && typo.stderr.contains("sign_buton"), "\(typo)")
    }
}
