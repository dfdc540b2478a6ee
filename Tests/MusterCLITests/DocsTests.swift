import Foundation
import Testing

/// The documentation, checked against the built binary (issue 11, item 6). Each test runs
/// one script from scripts/ with python3 (standard library only) and the binary under
/// test, and fails with the script's report:
///
/// - `check_docs.py`: every command, option and `--json` key is in docs/reference.md, and
///   every link in README.md, CONTRIBUTING.md and docs/ resolves inside the repository;
/// - `check_walkthrough.py`: the README's walkthrough runs as written on a copy of the
///   repository's files;
/// - `test_verify_ledger.py`: the independent verifier written from docs/ledger-format.md
///   agrees with `muster verify` on real and tampered ledgers.
@Suite struct DocsTests {
    static let scripts = MusterBinary.packageRoot.appendingPathComponent("scripts")

    /// Runs `scripts/<name> MUSTER` and returns its result.
    static func script(_ name: String) throws -> RunResult {
        try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", scripts.appendingPathComponent(name).path, MusterBinary.url.path],
                        in: MusterBinary.packageRoot)
    }

    @Test func referenceNamesEveryCommandOptionAndJSONKeyAndLinksResolve() throws {
        let result = try Self.script("check_docs.py")
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("--json keys named"), "\(result)")
    }

    @Test func readmeWalkthroughRunsAsWritten() throws {
        let result = try Self.script("check_walkthrough.py")
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("ran as written"), "\(result)")
    }

    @Test func independentVerifierAgreesWithMusterVerify() throws {
        let result = try Self.script("test_verify_ledger.py")
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.contains("both verifiers agree on each"), "\(result)")
    }
}
