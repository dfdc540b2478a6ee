import Foundation
import Testing

/// `muster serve`, slice 5: count.json and the badge, SIGTERM draining the requests in
/// flight, and the deadlines and limits that keep slow or greedy clients from pinning
/// the server (issue 12).
@Suite struct ServeOperationsTests {
    /// Runs Tests/support/http_client.py MODE PORT ARGS… and returns its output.
    final class Client {
        let process = Process()
        let input = Pipe()
        let output = LogBuffer()

        init(_ mode: String, _ server: ServerProcess, _ arguments: [String] = []) throws {
            let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/http_client.py")
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script.path, mode, String(server.port)] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardInput = input
            try process.run()
            let reader = pipe.fileHandleForReading, output = output
            Thread.detachNewThread {
                while true {
                    let data = reader.availableData
                    if data.isEmpty { break }
                    output.append(data)
                }
                output.close()
            }
        }

        /// Waits for the client to print something matching `done` (or to end).
        func wait(_ done: @escaping (String) -> Bool = { _ in false }) -> String {
            output.wait(until: Date(timeIntervalSinceNow: 180), done)
        }

        func send(_ line: String) { input.fileHandleForWriting.write(Data(line.utf8)) }

        deinit {
            if process.isRunning { process.terminate() }
        }
    }

    @Test func countJSONAndBadgeForOtherWebsites() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        for (email, at) in [("ana@example.org", "2026-11-20T09:00:00Z"), ("bo@example.org", "2026-11-21T10:30:00Z")] {
            #expect(try box.run(["sign", "--name", "A B", "--email", email, "--field", "region=Lyon"], environment: ["MUSTER_NOW": at]).status == 0)
        }
        let server = try ServerProcess(box)
        let count = try server.get("/c/fair-rates/count.json")
        #expect(count.status == 200 && count.headers["content-type"] == "application/json", "\(count)")
        #expect(count.headers["cache-control"] == "public, max-age=5" && count.headers["access-control-allow-origin"] == "*")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(count.body.utf8)) as? [String: Any])
        let verify = try box.run(["verify", "--json"]).json()
        #expect(object["count"] as? Int == 2 && object["goal"] as? Int == 10 && object["percent"] as? Int == 20, "\(object)")
        #expect(object["head"] as? String == verify["head"] as? String, "\(object) \(verify)")
        #expect(object["updated_at"] as? String == "2026-11-21T10:30:00.000Z")
        #expect(Set(object.keys) == ["count", "goal", "percent", "head", "updated_at"])

        let badge = try server.get("/c/fair-rates/badge.svg")
        #expect(badge.status == 200 && badge.headers["content-type"] == "image/svg+xml", "\(badge)")
        #expect(badge.headers["cache-control"] == "public, max-age=5" && badge.headers["cross-origin-resource-policy"] == "cross-origin")
        #expect(badge.body.hasPrefix("<svg ") && badge.body.contains(">2 signed</text>") && badge.body.contains(#"width="17""#), "\(badge.body)")
        #expect(!badge.body.contains("<script") && !badge.body.contains("href"), "no script, no link")
        // Another signature shows at once (the cache is the embedder's, not the server's).
        #expect(try box.run(["sign", "--name", "C D", "--email", "cy@example.org", "--field", "region=Lyon"]).status == 0)
        #expect(try server.get("/c/fair-rates/count.json").body.contains(#""count":3"#))
        #expect(try server.get("/c/nope/count.json").status == 404)
        #expect(try server.get("/c/nope/badge.svg").status == 404)
    }

    @Test func sigtermFinishesTheRequestInFlightAndItsCommit() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n")
        let server = try ServerProcess(box)
        let html = try server.get("/c/fair-rates").body
        let range = try #require(html.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression))
        let token = String(html[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        let body = String(decoding: ServeSignTests.encode([("csrf", token), ("name", "Ana Lima"), ("email", "ana@example.org"),
                                                           ("field.region", "Lyon")]), as: UTF8.self)
        // The client says "sent" only after the server's 100 Continue: the server has the
        // request's head, so the request is in flight (not a connection still unread,
        // which a drain may close).
        let client = try Client("split-post", server, ["/c/fair-rates/sign", body])
        let started = client.wait { $0.contains("sent") || $0.contains("no 100") }
        try #require(started.contains("sent"), "\(started)")
        server.process.terminate() // SIGTERM while the request is half received
        _ = server.waitForLog { $0.contains("stopping: finishing the requests in flight") }
        client.send("go\n")
        let answer = client.wait { $0.contains("HTTP/") || $0.contains("no response") }
        #expect(answer.contains("HTTP/1.1 200"), "the request in flight is answered: \(answer)\n\(server.logText)")
        let (status, log) = server.stop()
        #expect(status == 0, "\(log)")
        #expect(log.contains("muster: stopped"))
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending") == "1", "and its pending signature committed")
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func slowHeadsSlowBodiesAndEndlessBodiesAreCutOff() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        let server = try ServerProcess(box, environment: ["MUSTER_SERVE_HEAD_TIMEOUT": "1", "MUSTER_SERVE_BODY_TIMEOUT": "1"])
        // A head sent one header line at a time, never idle for long: closed at the deadline.
        let head = try Client("trickle-head", server).wait { $0.contains("closed") || $0.contains("timeout") }
        let lines = Int(head.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        #expect(head.hasPrefix("closed") && lines < 50, "by the deadline, long before the 100-header limit: \(head)")
        // A body sent one byte at a time: closed, nothing recorded.
        let body = try Client("trickle-body", server, ["/c/fair-rates/sign"]).wait { $0.contains("closed") || $0.contains("timeout") }
        #expect(body.hasPrefix("closed"), "\(body)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending") == "0")
        // A body that never ends: cut off after about a megabyte, not read to its end.
        let endless = try Client("endless-body", server, ["/u/" + String(repeating: "A", count: 64)])
            .wait { $0.contains("closed") || $0.contains("sent") }
        let sent = Int(endless.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1
        #expect(endless.hasPrefix("closed") && sent < 32 << 20, "\(endless)")
        // Meanwhile, and afterwards, everyone else is served.
        #expect(try server.get("/healthz").status == 200)
        // Quick clients are not affected by the short deadlines.
        #expect(try server.get("/c/fair-rates").status == 200)
    }
}

extension ServerProcess {
    /// Waits until the server's log satisfies `done` (or the server ends).
    func waitForLog(_ done: @escaping (String) -> Bool) -> String {
        logBuffer.wait(until: Date(timeIntervalSinceNow: 120), done)
    }
}

/// kill -9 under load: every "check your inbox" and every "your signature counts" that
/// reached a client stands for a durable row (issue 12, crash safety).
@Suite struct ServeCrashTests {
    static func ok(_ output: String) -> [Int] {
        output.split(separator: "\n").compactMap { $0.hasPrefix("ok ") ? Int($0.dropFirst(3)) : nil }
    }

    @Test func killDashNineLosesNoAcknowledgedSignature() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n") // no relay: tokens stay readable
        var server = try ServerProcess(box)
        let html = try server.get("/c/fair-rates").body
        let range = try #require(html.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression))
        let csrf = String(html[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        let emails = (0..<300).map { "load\($0)@example.org" }
        let listing = emails.map { email in
            "/c/fair-rates/sign\t" + String(decoding: ServeSignTests.encode([("csrf", csrf), ("name", "Load Test"), ("email", email),
                                                                           ("field.region", "Lyon")]), as: UTF8.self)
        }
        try box.write("sign.tsv", listing.joined(separator: "\n") + "\n")
        let signing = try ServeOperationsTests.Client("post-many", server, [box.path("sign.tsv").path])
        _ = signing.wait { Self.ok($0).count >= 30 || $0.contains("done") }
        kill(server.process.processIdentifier, SIGKILL)
        let signed = Self.ok(signing.wait { $0.contains("done") })
        #expect(signed.count >= 30)
        let stored = Set(try ServeSignTests.rows(box, "SELECT json_extract(data, '$.email') FROM pending").split(separator: "\n").map(String.init))
        let lost = signed.map { emails[$0] }.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "acknowledged but not stored: \(lost)")
        #expect(try box.run(["verify"]).status == 0)

        // The same while confirming.
        server = try ServerProcess(box)
        let rows = try ServeSignTests.rows(box, "SELECT id || ' ' || mail_token FROM pending WHERE mail_token IS NOT NULL ORDER BY id")
            .split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let ids = rows.map { $0[0] }, tokens = rows.map { $0[1] }
        try box.write("confirm.tsv", tokens.map { "/confirm/\($0)\tgo=1" }.joined(separator: "\n") + "\n")
        let confirming = try ServeOperationsTests.Client("post-many", server, [box.path("confirm.tsv").path])
        _ = confirming.wait { Self.ok($0).count >= max(1, tokens.count / 2) || $0.contains("done") }
        kill(server.process.processIdentifier, SIGKILL)
        let confirmed = Self.ok(confirming.wait { $0.contains("done") })
        let counted = Int(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'signature'")) ?? -1
        #expect(counted >= confirmed.count && !confirmed.isEmpty, "\(counted) counted, \(confirmed.count) told so")
        let open = try ServeSignTests.rows(box, "SELECT count(*) FROM pending WHERE confirmed_seq IS NULL AND id IN (\(confirmed.map { ids[$0] }.joined(separator: ",")))")
        #expect(open == "0", "every confirmation answered is in the ledger")
        #expect(try box.run(["verify"]).status == 0)
    }
}
