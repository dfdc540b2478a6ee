import Foundation
import Testing

/// docs/ledger-format.md's "Tables" lists the schema muster writes: every table with its
/// columns in order, and every index, as a new ledger has them (the `pending` table of
/// the sign page included).
@Suite struct LedgerFormatDocTests {
    @Test func theDocumentedSchemaIsTheOneMusterWrites() throws {
        let doc = try String(contentsOf: MusterBinary.packageRoot.appendingPathComponent("docs/ledger-format.md"), encoding: .utf8)
        let section = try #require(doc.components(separatedBy: "\n## Tables\n").dropFirst().first)
        let sql = try #require(section.components(separatedBy: "```sql\n").dropFirst().first?.components(separatedBy: "\n```").first)
        var documented: [String: [String]] = [:], indexes: Set<String> = []
        var table: String?
        for line in sql.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let code = line.components(separatedBy: "--")[0].trimmingCharacters(in: .whitespaces)
            if code.hasPrefix("CREATE TABLE ") {
                let name = code.dropFirst("CREATE TABLE ".count).prefix { $0 != " " && $0 != "(" }
                documented[String(name)] = []
                if let open = code.firstIndex(of: "("), code.hasSuffix(";") {
                    // One line: `CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL);`
                    let inner = code[code.index(after: open)..<code.lastIndex(of: ")")!]
                    documented[String(name)] = inner.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces).prefix { $0 != " " }) }
                } else {
                    table = String(name)
                }
            } else if code.hasPrefix("CREATE INDEX ") || code.hasPrefix("CREATE UNIQUE INDEX ") {
                let words = code.split(separator: " ")
                indexes.insert(String(words[code.hasPrefix("CREATE UNIQUE") ? 3 : 2]))
            } else if code.hasPrefix(")") {
                table = nil
            } else if let current = table, let word = code.split(separator: " ").first, !["PRIMARY", "UNIQUE"].contains(word) {
                documented[current]!.append(String(word))
            }
        }
        #expect(documented["pending"]?.suffix(3) == ["client_key", "domain", "held"], "\(documented)")

        let box = try Sandbox.withCampaign()
        #expect(try box.run(["sign", "--name", "Ana", "--email", "ana@example.org", "--field", "region=Lyon"]).status == 0)
        func query(_ sql: String) throws -> [String] {
            let result = try box.sqlite("campaigns/fair-rates/ledger.sqlite", sql)
            try #require(result.status == 0, "\(result)")
            return result.stdout.split(separator: "\n").map(String.init)
        }
        let tables = try query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        #expect(Set(tables) == Set(documented.keys), "tables: ledger \(tables), doc \(documented.keys.sorted())")
        for name in tables {
            let columns = try query("SELECT name FROM pragma_table_info('\(name)') ORDER BY cid")
            #expect(columns == documented[name], "\(name): ledger \(columns), doc \(documented[name] ?? [])")
        }
        let made = try query("SELECT name FROM sqlite_schema WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'")
        #expect(Set(made) == indexes, "indexes: ledger \(made.sorted()), doc \(indexes.sorted())")
    }
}
