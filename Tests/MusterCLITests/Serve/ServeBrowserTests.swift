import Foundation
import Testing

/// `muster serve`, slice 6: the whole path in a real browser (Debian's Chromium through
/// chromium-driver and Selenium), with axe-core on every kind of page, driven by
/// Tests/support/browser_e2e.py against the real binary and the aiosmtpd sink (issue 12).
@Suite(.enabled(if: BrowserTools.available, "needs chromium, chromium-driver, selenium and axe-selenium-python (scripts/setup installs them in test mode)"))
struct ServeBrowserTests {
    static func script(_ arguments: [String], in box: Sandbox) throws -> RunResult {
        let path = MusterBinary.packageRoot.appendingPathComponent("Tests/support/browser_e2e.py").path
        return try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", path] + arguments, in: box.root)
    }

    @Test func signConfirmDuplicateExpiredAndUnsubscribeInABrowser() throws {
        let box = try Sandbox.withCampaign()
        let relay = try TestRelay(in: box)
        let yaml = "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: \(relay.url)\n  starttls: never\n"
        try box.write("campaigns/fair-rates/emails/news.md", "---\nsubject: \"News\"\naudience: signers\n---\nNews.\n")
        for (name, email) in [("Bo", "bo@example.org"), ("Dee", "dee@example.org")] {
            try #require(box.run(["sign", "--name", name, "--email", email, "--field", "region=Lyon"]).status == 0)
        }
        // Two signers' unsubscribe links, as a blast would carry them with an https base_url.
        try box.write("muster.yaml", yaml + "serve:\n  base_url: https://sign.example\n")
        try #require(box.run(["mail", "send", "news", "--dry-run", "--out", "preview"]).status == 0)
        var links: [String: String] = [:]
        for file in try FileManager.default.contentsOfDirectory(atPath: box.path("preview").path) where file.hasSuffix(".eml") {
            let raw = try String(contentsOf: box.path("preview/" + file), encoding: .utf8)
            let to = raw.contains("bo@example.org") ? "bo" : "dee"
            let range = try #require(raw.range(of: #"/u/[A-Za-z0-9_-]{64}"#, options: .regularExpression))
            links[to] = String(raw[range])
        }
        // The browser posts from the loopback address, which is then this server's own.
        try box.write("muster.yaml", yaml)
        var server = try ServerProcess(box)
        let shots = ProcessInfo.processInfo.environment["MUSTER_SCREENSHOTS_DIR"].map { URL(fileURLWithPath: $0) } ?? box.path("shots")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let run = try Self.script(["main", server.base, relay.spool.path, shots.path, try #require(links["bo"]), try #require(links["dee"])], in: box)
        #expect(run.status == 0, "\(run)\n\(server.logText)")
        for name in ["petition-1280", "petition-390", "errors-1280", "confirm-390", "unsubscribe-390"] {
            let png = try Data(contentsOf: shots.appendingPathComponent(name + ".png"))
            #expect(png.count > 1000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "\(name).png")
        }
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'optout'") == "2", "the button and the one-click POST")
        #expect(try ServeSignTests.rows(box, "SELECT json_extract(body, '$.source') FROM entries WHERE kind = 'signature' ORDER BY seq") == "cli\ncli\nweb")
        let pending = try #require(run.stdout.split(separator: "\n").last { $0.hasPrefix("pending ") }).dropFirst("pending ".count)
        _ = server.stop()

        // Eight days later the unconfirmed signer's link has expired.
        let later = ISO8601DateFormatter().string(from: Date(timeIntervalSinceNow: 8 * 86_400))
        server = try ServerProcess(box, environment: ["MUSTER_NOW": later])
        let expired = try Self.script(["expired", server.base, String(pending)], in: box)
        #expect(expired.status == 0, "\(expired)")
        _ = server.stop()
        #expect(try box.run(["verify"]).status == 0)
    }
}

/// Whether the browser tests can run here.
enum BrowserTools {
    static let available: Bool = {
        guard TestRelay.available, FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver") else { return false }
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", "import selenium, axe_selenium_python"]
        check.standardError = FileHandle.nullDevice
        try? check.run()
        check.waitUntilExit()
        return check.terminationStatus == 0
    }()
}
