import Foundation
import Testing

/// The sign page in a text browser: Debian's lynx reads the petition and the
/// confirmation page of a running server, and signs and confirms with its own POSTs
/// (issue 12: "works … in a text browser").
@Suite(.enabled(if: Lynx.path != nil, "lynx is not installed (scripts/setup installs it in test mode)"))
struct ServeTextBrowserTests {
    /// `texts` each found in `page`, in this order.
    static func inOrder(_ page: String, _ texts: [String]) -> String? {
        var rest = page[...]
        for text in texts {
            guard let range = rest.range(of: text) else { return "'\(text)' missing or out of order in:\n\(page)" }
            rest = rest[range.upperBound...]
        }
        return nil
    }

    @Test func lynxReadsTheFormInOrderSignsAndConfirms() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n") // no relay: the token stays readable
        let server = try ServerProcess(box)
        let url = server.base + "/c/fair-rates"
        let page = try Lynx.run(["-dump", "-nolist", url])
        let problem = Self.inOrder(page, [
            "Fair rates <for> translators", "0 of 10 signatures", "Sign this petition",
            "Fields marked (required) must be filled in.",
            "Your name (required) ____", "Your email address (required) ____", "Your region (required) ____",
            "profession", "Comment (optional)", "Optional", "[ ] Keep me informed", "(BUTTON) Sign",
            "We will email you a link",
        ])
        #expect(problem == nil, "\(problem ?? "")")
        #expect(!page.contains("profession (required)"), "only required fields are marked")

        // Sign as lynx does: the form's token read from the page, the form POSTed by lynx
        // (no Origin, no Sec-Fetch-Site: the token is what vouches for it).
        let source = try Lynx.run(["-source", url])
        let range = try #require(source.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression))
        let token = String(source[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        let form = String(decoding: ServeSignTests.encode([("csrf", token), ("name", "Ana Lima"), ("email", "ana@example.org"),
                                                           ("field.region", "Lyon"), ("consent.updates", "yes")]), as: UTF8.self)
        let signed = try Lynx.run(["-dump", "-nolist", "-post_data", url + "/sign"], input: form + "\n---\n")
        #expect(signed.contains("Check your inbox") && signed.contains("Your signature counts once you open the link"), "\(signed)")
        let mailToken = try ServeSignTests.rows(box, "SELECT mail_token FROM pending")
        #expect(mailToken.count == 22, "one pending row: \(mailToken)")

        let confirmURL = server.base + "/confirm/" + mailToken
        let confirm = try Lynx.run(["-dump", "-nolist", confirmURL])
        #expect(Self.inOrder(confirm, ["Confirm your signature", "You are signing", "(BUTTON) Confirm my signature",
                                       "Opening this page changes nothing"]) == nil, "\(confirm)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries") == "0", "reading the page changed nothing")
        // The button's form has no field; lynx's -post_data sends a GET for empty data, so
        // one field the server ignores makes it the POST the button sends.
        let confirmed = try Lynx.run(["-dump", "-nolist", "-post_data", confirmURL], input: "button=1\n---\n")
        #expect(confirmed.contains("Thank you: your signature counts") && confirmed.contains("1 of 10 signatures so far"), "\(confirmed)")
        #expect(try ServeSignTests.rows(box, "SELECT kind, json_extract(body, '$.source') FROM entries") == "signature|web")
        #expect(try Lynx.run(["-dump", "-nolist", url]).contains("1 of 10 signatures"))
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func anHTTP10ClientIsAnsweredAndTheConnectionClosed() throws {
        // lynx speaks HTTP/1.0 and reads until the server closes: the server must close
        // after answering, not keep the connection until its deadline.
        let box = try Sandbox.withCampaign()
        let server = try ServerProcess(box, environment: ["MUSTER_SERVE_HEAD_TIMEOUT": "600"])
        let socket = try LoopbackSocket(port: server.port)
        try socket.send("GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        let answer = try socket.readToClose()
        #expect(answer.hasPrefix("HTTP/1.1 200") && answer.hasSuffix("\r\n\r\nok\n"), "\(answer)")
        #expect(answer.lowercased().contains("\r\nconnection: close\r\n"), "the answer says the connection ends: \(answer)")
        // A keep-alive client keeps its connection for a second request.
        let kept = try LoopbackSocket(port: server.port)
        try kept.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let both = try kept.readToClose()
        #expect(both.components(separatedBy: "HTTP/1.1 200").count == 3, "\(both)")
        #expect(both.lowercased().components(separatedBy: "connection: close").count == 2, "only the last answer ends it: \(both)")
    }
}

/// Debian's lynx, run with a private configuration-free environment.
enum Lynx {
    static let path: String? = ["/usr/bin/lynx", "/usr/local/bin/lynx"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func run(_ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(path))
        process.arguments = ["-noreferer", "-accept_all_cookies", "-display_charset=utf-8", "-width=100"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TERM"] = "dumb"
        environment["LANG"] = "C.UTF-8"
        process.environment = environment
        let output = Pipe(), stdin = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A plain TCP connection to the server on loopback.
final class LoopbackSocket {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 60, tv_usec: 0) // a safety net, not a measurement
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ServeTestError("cannot connect to 127.0.0.1:\(port)") }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw ServeTestError("short write") }
    }

    /// Everything until the server closes (a read time-out is an error: still open).
    func readToClose() throws -> String {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count == 0 { return String(decoding: data, as: UTF8.self) }
            guard count > 0 else { throw ServeTestError("the connection stayed open: \(String(decoding: data, as: UTF8.self))") }
            data += buffer[0..<count]
        }
    }

    deinit { close(fd) }
}
