import Foundation
import Testing
@testable import MusterKit

/// The default HTML mail layout's footer, in the campaign's language.
@Suite struct HTMLLayoutTests {
    static let sender = try! MailAddress(parsing: "Tarifs <bonjour@tarifs.example>")

    @Test func englishIsTheDefaultAndTheFrenchCatalogueTranslatesTheFooter() throws {
        let english = HTMLLayout.wrap("<p>Hi</p>", subject: "S", campaignTitle: "Fair <rates>", sender: Self.sender,
                                      unsubscribeHref: "https://x.example/u/t")
        #expect(english.contains("<html>\n") && english.contains("Sent by Tarifs about \u{201C}Fair &lt;rates&gt;\u{201D}."))
        #expect(english.contains(#"<a href="https://x.example/u/t" style="color:#6e7781;">Unsubscribe</a>"#))

        let box = try TemporaryFolder()
        let workspace = Workspace(root: box.url)
        let french = try LayoutWords.of(.fr, workspace: workspace)
        let html = HTMLLayout.wrap("<p>Bonjour</p>", subject: "S", campaignTitle: "Un <juste> tarif", sender: Self.sender,
                                   unsubscribeHref: "https://x.example/u/t", words: french)
        #expect(html.contains(#"<html lang="fr">"#), "\(html)")
        #expect(html.contains("Envoyé par Tarifs au sujet de «\u{00A0}Un &lt;juste&gt; tarif\u{00A0}»."), "\(html)")
        #expect(html.contains(">Se désabonner</a>") && !html.contains("Unsubscribe") && !html.contains("Sent by"))
        // The frame is cached per campaign, sender and words: English again after French.
        let again = HTMLLayout.wrap("<p>Hi</p>", subject: "S", campaignTitle: "Un <juste> tarif", sender: Self.sender,
                                    unsubscribeHref: "https://x.example/u/t")
        #expect(again.contains("Sent by") && !again.contains("Envoyé"))
    }

    @Test func aWorkspaceCatalogueOverridesTheFooter() throws {
        let box = try TemporaryFolder()
        let workspace = Workspace(root: box.url)
        try box.write("templates/web/fr.yaml", "mail_footer: \"De la part de {{sender}} <b>\"\n")
        let words = try LayoutWords.of(.fr, workspace: workspace)
        #expect(words.footer == "De la part de {{sender}} <b>" && words.unsubscribe == "Se désabonner")
        let html = HTMLLayout.wrap("", subject: "S", campaignTitle: "T", sender: Self.sender, unsubscribeHref: "#", words: words)
        #expect(html.contains("De la part de Tarifs &lt;b&gt; <a href="), "the organizer's text is escaped: \(html)")
    }
}
