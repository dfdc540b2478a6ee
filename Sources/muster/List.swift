import ArgumentParser
import MusterKit

extension Muster {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the campaigns with their count, goal and percentage.")

        @OptionGroup var workspaceOptions: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        struct Row: Encodable {
            let slug: String
            let title: String?
            let count: Int64
            let goal: Int?
            let percent: Double?
            let error: String?
        }

        struct Listing: Encodable {
            let campaigns: [Row]
        }

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(workspaceOptions)
                var rows: [Row] = []
                for slug in context.workspace.campaignSlugs() {
                    let campaign = Campaign(workspace: context.workspace, slug: slug)
                    let manifest: Manifest
                    do {
                        manifest = try campaign.loadManifest().0
                    } catch let error as MusterError {
                        rows.append(Row(slug: slug, title: nil, count: 0, goal: nil, percent: nil, error: error.message))
                        continue
                    }
                    do {
                        let count = try Ledger.open(campaign.ledgerURL, create: false)?.signatureCount() ?? 0
                        let percent = (Double(count) / Double(manifest.goal) * 1000).rounded() / 10
                        rows.append(Row(slug: slug, title: manifest.title, count: count, goal: manifest.goal, percent: percent, error: nil))
                    } catch let error as MusterError {
                        // A ledger that cannot be read (from a newer muster, unwritable…): say why.
                        rows.append(Row(slug: slug, title: manifest.title, count: 0, goal: manifest.goal, percent: nil, error: error.message))
                    }
                }
                if output.json { return Console.json(Listing(campaigns: rows)) }
                if rows.isEmpty {
                    Console.line("No campaigns yet. Create one with: muster new SLUG")
                    return
                }
                let slugWidth = rows.map(\.slug.count).max() ?? 0
                for row in rows {
                    let slug = row.slug.padding(toLength: slugWidth, withPad: " ", startingAt: 0)
                    if let goal = row.goal, let percent = row.percent {
                        Console.line("\(slug)  \(Number.grouped(row.count)) of \(Number.grouped(Int64(goal))) (\(Number.percent(percent)))  \(row.title ?? "")")
                    } else if row.goal != nil, let error = row.error {
                        Console.line("\(slug)  \(error)")
                    } else {
                        Console.line("\(slug)  invalid manifest: run muster check")
                    }
                }
            }
        }
    }
}
