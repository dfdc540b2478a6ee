import Foundation
import Testing

/// Reliability rows "concurrent signing" and "concurrent sign during import and blast".
@Suite(.serialized) struct ConcurrencyReliabilityTests {
    /// Runs `script` under bash with `arguments`; stdout and stderr go to files returned.
    static func startScript(_ script: String, _ arguments: [String], in box: Sandbox, name: String,
                            environment: [String: String] = [:]) throws -> (Process, out: URL, err: URL) {
        let out = box.path("\(name).out"), err = box.path("\(name).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, name] + arguments
        process.currentDirectoryURL = box.root
        process.environment = ProcessInfo.processInfo.environment
            .merging(["MUSTER": MusterBinary.url.path, "NO_COLOR": "1"]) { $1 }
            .merging(environment) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()
        return (process, out, err)
    }

    /// Signs each address given, timing every `sign`: prints "<exit> <nanoseconds>" per line.
    static let signLoop = """
        for email in "$@"; do
          start=$(date +%s%N)
          "$MUSTER" sign --name "Volunteer signer" --email "$email" --field region=Lyon >/dev/null
          status=$?
          echo "$status $(( $(date +%s%N) - start ))"
        done
        """

    @Test func eightProcessesSigningWithSharedAddressesCountEachSignerOnce() throws {
        let perProcess = Reliability.scale(full: 1_000, ci: 60)
        let box = try Sandbox.withCampaign()
        // Every tenth signature of every process uses an address all processes share.
        var expected = Set<String>()
        var batches: [[String]] = []
        for worker in 0..<8 {
            let emails = (0..<perProcess).map { index in
                index % 10 == 0 ? "shared\(index / 10)@example.org" : "worker\(worker)-\(index)@example.org"
            }
            expected.formUnion(emails)
            batches.append(emails)
        }
        let (workers, wall) = try Reliability.time { () throws -> [(Process, out: URL, err: URL)] in
            let started = try batches.enumerated().map { try Self.startScript(Self.signLoop, $1, in: box, name: "signer\($0)") }
            for (process, _, _) in started { process.waitUntilExit() }
            return started
        }
        var latencies: [Double] = []
        for (process, out, err) in workers {
            #expect(process.terminationStatus == 0)
            let stderr = try String(contentsOf: err, encoding: .utf8)
            #expect(stderr.isEmpty, "a sign reported: \(stderr)")
            for line in try String(contentsOf: out, encoding: .utf8).split(separator: "\n") {
                let parts = line.split(separator: " ")
                #expect(parts.first == "0", "a sign exited \(parts.first ?? "?")")
                latencies.append(Double(parts.last ?? "0").map { $0 / 1e9 } ?? 0)
            }
        }
        #expect(latencies.count == 8 * perProcess)
        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        let object = try verify.json()
        #expect(object["count"] as? Int == expected.count, "one signature per distinct address")
        #expect(object["entries"] as? Int == expected.count)
        let sorted = latencies.sorted()
        Reliability.record("concurrent signing", "8 × \(perProcess) signs, \(expected.count) distinct: count exact, verify ok; "
            + "\(Int(Double(expected.count) / wall)) adds/s, median \(Reliability.seconds(sorted[sorted.count / 2])), slowest \(Reliability.seconds(sorted.last ?? 0))")
    }

    @Test(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd"))
    func signingWhileAnImportAndABlastRunLosesNothing() throws {
        let importRows = Reliability.scale(full: 100_000, ci: 10_000)
        let blastSize = Reliability.scale(full: 2_000, ci: 300)
        let box = try MailTests.workspace(signers: [])
        let fixture = MusterBinary.url.deletingLastPathComponent().appendingPathComponent("muster-fixture")
        try #require(try Sandbox.run(fixture, [box.root.path, "fair-rates", "\(blastSize)"], in: box.root).status == 0)
        try box.write("big.csv", Reliability.signersCSV(importRows, prefix: "imported"))
        let relay = try TestRelay(in: box)

        // The volunteer at the stall keeps signing people up until both jobs are done.
        let stall = """
            i=0
            while [ ! -e stop ]; do
              "$MUSTER" sign --name "Stall signer" --email "stall$i@example.org" --field region=Lyon >/dev/null 2>>stall-errors || echo "FAILED $i" >&2
              i=$((i+1))
            done
            echo $i
            """
        let signer = try Self.startScript(stall, [], in: box, name: "stall")
        let importer = try box.start(["import", "big.csv"])
        let blast = try box.start(["mail", "send", "thanks", "--yes", "--connections", "4", "--limit", "\(blastSize)"],
                                  environment: ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"])
        importer.waitUntilExit()
        blast.waitUntilExit()
        try box.write("stop", "")
        signer.0.waitUntilExit()

        #expect(importer.terminationStatus == 0, "the import failed")
        #expect(blast.terminationStatus == 0, "the blast failed")
        let stallErrors = (try? String(contentsOf: box.path("stall-errors"), encoding: .utf8)) ?? ""
        #expect(!stallErrors.contains("locked") && !stallErrors.contains("busy"), "\(stallErrors)")
        #expect(try String(contentsOf: signer.err, encoding: .utf8).isEmpty, "a sign at the stall failed: \(stallErrors)")
        let signed = Int(try String(contentsOf: signer.out, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(signed > 0, "the stall signed while the jobs ran")

        let verify = try box.run(["verify", "--json"]).json()
        #expect(verify["ok"] as? Bool == true)
        #expect(verify["count"] as? Int == blastSize + importRows + signed, "nothing lost")
        let status = try box.run(["mail", "status", "thanks", "--json"]).json()
        let sent = status["sent"] as? Int ?? -1
        let copies = Dictionary(grouping: try relay.received(), by: { $0.to.first ?? "" }).mapValues(\.count)
        #expect(sent == blastSize)
        #expect(copies.count == sent, "every row marked sent reached the relay")
        #expect(copies.values.allSatisfy { $0 == 1 }, "nobody mailed twice")
        Reliability.record("concurrent sign during import and blast", "\(signed) signs at the stall during a \(importRows)-row import and a \(sent)-message blast: none failed or saw a lock; verify ok, count exact")
    }
}
