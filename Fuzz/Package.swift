// swift-tools-version:6.0
// libFuzzer targets for MusterKit. Kept out of the root package so `swift build` and
// `swift test` never build them; `make fuzz` (scripts/fuzz) builds and runs them with
// `-sanitize=fuzzer,address`. See RELIABILITY.md.
import PackageDescription

let package = Package(
    name: "muster-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "muster", path: ".."),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer", .product(name: "MusterKit", package: "muster")]),
        .executableTarget(name: "FuzzManifest", dependencies: ["FuzzSupport", .product(name: "MusterKit", package: "muster")]),
        .executableTarget(name: "FuzzCSV", dependencies: ["FuzzSupport", .product(name: "MusterKit", package: "muster")]),
        .executableTarget(name: "FuzzTemplate", dependencies: ["FuzzSupport", .product(name: "MusterKit", package: "muster")]),
        .executableTarget(name: "FuzzHeader", dependencies: ["FuzzSupport", .product(name: "MusterKit", package: "muster")]),
    ],
    swiftLanguageModes: [.v6]
)
