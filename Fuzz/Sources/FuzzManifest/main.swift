import Foundation
import FuzzSupport
import MusterKit

// One input = the bytes of a `campaign.yaml`. Besides crashes, libFuzzer's -timeout and
// -rss_limit_mb turn a slow or memory-hungry manifest (YAML bombs) into a finding.
func fuzzManifest(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = Data(buffer: bytes(data, count))
    let (manifest, diagnostics) = Manifest.load(data: input, displayPath: "campaign.yaml")
    require(manifest != nil || diagnostics.contains { $0.severity == .error }, "no manifest and no error")
    if manifest != nil {
        require(!diagnostics.contains { $0.severity == .error }, "a manifest returned with errors")
    }
    for diagnostic in diagnostics {
        require(diagnostic.line >= 1 && diagnostic.column >= 1, "diagnostic without a position: \(diagnostic)")
    }
    return 0
}

runFuzzer(fuzzManifest)
