import Foundation
import Testing
@testable import MusterKit

private func message(_ to: String) -> [UInt8] {
    Array("From: hello@fairrates.example\r\nTo: \(to)\r\nSubject: Hi\r\n\r\nBody line\r\n.leading dot\r\n".utf8)
}

/// Drives `multi` until every slot in `slots` has ended; returns the outcomes by slot.
private func drain(_ multi: CurlSMTPMulti, _ slots: Set<Int>) -> [Int: Result<SMTPReceipt, SMTPError>] {
    var outcomes: [Int: Result<SMTPReceipt, SMTPError>] = [:]
    let deadline = Date().addingTimeInterval(20)
    while outcomes.count < slots.count && Date() < deadline {
        for (slot, outcome) in multi.perform() { outcomes[slot] = outcome }
        if outcomes.count < slots.count { multi.wait(timeout: 0.1) }
    }
    return outcomes
}

@Suite("Several SMTP connections on one thread (libcurl multi) against aiosmtpd", .enabled(if: aiosmtpdAvailable, skipReason), .serialized)
struct CurlMultiTests {
    @Test("each slot keeps its own connection and sends in parallel; connections are reused")
    func parallelSlotsReuseConnections() throws {
        let server = try SMTPTestServer()
        let multi = try CurlSMTPMulti(settings: server.settings(), connections: 3)
        for round in 0..<4 {
            for slot in 0..<3 {
                try multi.start(slot: slot, from: "hello@fairrates.example", to: ["r\(round)-s\(slot)@example.org"],
                                message: message("r\(round)-s\(slot)@example.org"))
            }
            let outcomes = drain(multi, [0, 1, 2])
            #expect(outcomes.count == 3)
            for outcome in outcomes.values {
                guard case .success(let receipt) = outcome else { Issue.record("not sent: \(outcome)"); continue }
                #expect(receipt.replyCode == 250)
            }
        }
        let got = try server.received()
        #expect(got.count == 12)
        #expect(Set(got.flatMap(\.recipients)).count == 12)
        #expect(Set(got.map(\.peerPort)).count == 3, "three connections, each reused for four messages")
    }

    @Test("outcomes are per slot: a rejected recipient, a dropped connection and a sent message side by side")
    func outcomesPerSlot() throws {
        let server = try SMTPTestServer(["--reject-rcpt", "^bad", "--drop-after-dot", "^dropped"])
        let multi = try CurlSMTPMulti(settings: server.settings(), connections: 3)
        try multi.start(slot: 0, from: "hello@fairrates.example", to: ["good@example.org"], message: message("good@example.org"))
        try multi.start(slot: 1, from: "hello@fairrates.example", to: ["bad@example.org"], message: message("bad@example.org"))
        try multi.start(slot: 2, from: "hello@fairrates.example", to: ["dropped@example.org"], message: message("dropped@example.org"))
        let outcomes = drain(multi, [0, 1, 2])
        guard case .success? = outcomes[0] else { Issue.record("slot 0: \(String(describing: outcomes[0]))"); return }
        guard case .failure(.permanent(let rejected))? = outcomes[1] else { Issue.record("slot 1: \(String(describing: outcomes[1]))"); return }
        #expect(rejected.replyCode == 550)
        guard case .failure(.outcomeUnknown)? = outcomes[2] else { Issue.record("slot 2: \(String(describing: outcomes[2]))"); return }

        // The slots go on: the dropped one on a fresh connection.
        multi.useFreshConnection(slot: 2)
        try multi.start(slot: 1, from: "hello@fairrates.example", to: ["after1@example.org"], message: message("after1@example.org"))
        try multi.start(slot: 2, from: "hello@fairrates.example", to: ["after2@example.org"], message: message("after2@example.org"))
        let again = drain(multi, [1, 2])
        #expect(again.values.allSatisfy { if case .success = $0 { return true }; return false }, "\(again)")
        let accepted = try server.received().filter { $0.note == "accepted" }.flatMap(\.recipients)
        #expect(Set(accepted) == ["good@example.org", "after1@example.org", "after2@example.org"])
    }

    @Test("an envelope with CR/LF is refused before anything is handed to libcurl")
    func invalidEnvelope() throws {
        let server = try SMTPTestServer()
        let multi = try CurlSMTPMulti(settings: server.settings(), connections: 1)
        #expect { try multi.start(slot: 0, from: "hello@fairrates.example", to: ["x@example.org\r\nRCPT TO:<y@example.org>"], message: message("x")) }
            throws: { error in if case .invalidEnvelope = error as? SMTPError { return true } else { return false } }
        // The slot is still usable.
        try multi.start(slot: 0, from: "hello@fairrates.example", to: ["ok@example.org"], message: message("ok@example.org"))
        #expect(drain(multi, [0]).count == 1)
        #expect(try server.received().flatMap(\.recipients) == ["ok@example.org"])
    }
}
