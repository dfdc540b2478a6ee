import Foundation
import Testing

/// The reliability suite (issue 5, RELIABILITY.md): how big each run is, and the
/// figures each test reports.
///
/// `swift test` (CI) runs every row at a smaller scale; `make reliability` sets
/// `MUSTER_RELIABILITY=full`, runs the release binary at the sizes of the table, and
/// collects the figures written to `MUSTER_FIGURES` into RELIABILITY.md.
enum Reliability {
    static let full = ProcessInfo.processInfo.environment["MUSTER_RELIABILITY"] == "full"

    /// `full` in `make reliability`, `ci` otherwise.
    static func scale(full: Int, ci: Int) -> Int { Self.full ? full : ci }

    /// Records one figure for `row` of the table (printed, and appended to `MUSTER_FIGURES`).
    static func record(_ row: String, _ figure: String) {
        print("reliability: \(row): \(figure)")
        guard let path = ProcessInfo.processInfo.environment["MUSTER_FIGURES"], !path.isEmpty else { return }
        let line = (try? JSONSerialization.data(withJSONObject: ["row": row, "figure": figure, "scale": full ? "full" : "ci"], options: [.sortedKeys])) ?? Data()
        lock.withLock {
            guard let handle = FileHandle(forWritingAtPath: path) ?? {
                _ = FileManager.default.createFile(atPath: path, contents: nil)
                return FileHandle(forWritingAtPath: path)
            }() else { return }
            handle.seekToEndOfFile()
            handle.write(line + Data("\n".utf8))
            try? handle.close()
        }
    }

    private static let lock = NSLock()

    /// Wall time of `body`, in seconds.
    static func time<T>(_ body: () throws -> T) rethrows -> (T, Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        let value = try body()
        return (value, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// A CSV of `count` distinct signers (name, email, region), written to `path`.
    static func signersCSV(_ count: Int, prefix: String = "p") -> String {
        var text = "name,email,region\n"
        text.reserveCapacity(count * 40)
        for i in 0..<count { text += "Person \(i),\(prefix)\(i)@example.org,\(["Lyon", "Paris", "Lille"][i % 3])\n" }
        return text
    }

    /// Seconds as "1.23 s" or "456 ms".
    static func seconds(_ value: Double) -> String {
        value >= 1 ? String(format: "%.2f s", value) : String(format: "%.0f ms", value * 1000)
    }
}
