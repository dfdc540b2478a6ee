// muster-fixture: fills a campaign's ledger with synthetic signatures, for benchmarks.
// usage: muster-fixture WORKSPACE SLUG COUNT
// Every address is made up (@bench.example); nothing here is anyone's data.
import Foundation
import MusterKit

let arguments = CommandLine.arguments
guard arguments.count == 4, let count = Int(arguments[3]), count > 0 else {
    FileHandle.standardError.write(Data("usage: muster-fixture WORKSPACE SLUG COUNT\n".utf8))
    exit(64)
}
do {
    let workspace = Workspace(root: URL(fileURLWithPath: arguments[1]))
    let campaign = try workspace.resolveCampaign(arguments[2], workingDirectory: workspace.root)
    let (manifest, _) = try campaign.loadManifest()
    guard let ledger = try Ledger.open(campaign, create: true) else { exit(1) }
    let regions = manifest.field(named: "region")?.options ?? ["Lyon", "Paris", "Lille"]
    let start = Date().addingTimeInterval(-60 * 86_400)
    let step = 60 * 86_400 / Double(count)
    let chunk = 100_000
    var done = 0
    while done < count {
        let upper = min(count, done + chunk)
        let batch = try (done..<upper).map { index -> (ValidSignature, Date) in
            var fields: [String: String] = [:]
            for field in manifest.fields where field.required {
                fields[field.name] = field.name == "region" ? regions[index % regions.count] : (field.options?.first ?? "x")
            }
            let input = SignatureInput(name: "Bench Signer \(index)", email: "signer\(index)@bench.example",
                                       fields: fields, consents: index % 3 == 0 ? [] : manifest.consents.prefix(1).map(\.key),
                                       source: "fixture")
            return (try input.validated(against: manifest), start.addingTimeInterval(Double(index) * step))
        }
        try ledger.appendBatch { append in for (signature, date) in batch { _ = try append(signature, date) } }
        done = upper
    }
    print(try ledger.signatureCount())
} catch let error as MusterError {
    FileHandle.standardError.write(Data("muster-fixture: \(error.message)\n".utf8))
    exit(error.status.rawValue)
}
