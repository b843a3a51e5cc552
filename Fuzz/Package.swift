// swift-tools-version:6.0
// libFuzzer targets for qpk's readers and validators. A separate package, so the main package's
// normal build never sees the sanitizer flags. Build (see README.md and the Makefile's `fuzz`):
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import PackageDescription

let package = Package(
    name: "qpk-fuzz",
    dependencies: [.package(name: "qpk", path: "..")],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "Formats", package: "qpk"),
                .product(name: "Quantize", package: "qpk"),
                .product(name: "Inspect", package: "qpk"),
            ]),
        .executableTarget(name: "FuzzSafetensors", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzShardedIndex", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzQPK", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzHDF5", dependencies: ["FuzzSupport"]),
        .executableTarget(name: "FuzzGGUF", dependencies: ["FuzzSupport"]),
    ]
)
