import ArgumentParser
import Foundation
import MusterKit

@main
struct Muster: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muster",
        abstract: "Run petitions and pressure campaigns on your own machine.",
        discussion: """
            A workspace is a folder with muster.yaml at its root; each campaign lives in
            campaigns/<slug>/ with its manifest, petition text, emails and signature
            ledger.

            Start here:
              muster init fair-rates-ws && cd fair-rates-ws
              muster new fair-rates --title "Fair rates for translators" --goal 1000
              muster sign --name "Ana Lima" --email ana@example.org --field region=Lyon
              muster report

            Exit codes: 0 success (a duplicate signature too), 1 failure, 64 usage,
            65 bad input data, 69 SMTP relay unreachable, 75 temporary failure.
            """,
        version: MusterKitVersion.string,
        subcommands: [
            Init.self, New.self, List.self, Check.self,
            Sign.self, Import.self, Export.self, Merge.self, Forget.self, Unsubscribe.self, Dedupe.self, Verify.self, Report.self, Review.self,
            Checkpoint.self, Receipt.self, Witness.self,
            Mail.self, Inbox.self, Smtp.self, Serve.self,
        ]
    )

    static func main() {
        // Under a file-size limit (`ulimit -f`) the kernel sends SIGXFSZ, which by default
        // kills the process mid-write; ignored, the write fails with EFBIG and muster
        // reports it and rolls back like any other full disk.
        signal(SIGXFSZ, SIG_IGN)
        main(nil)
    }
}
