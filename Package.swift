// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "qpk",
    products: [
        .executable(name: "qpk", targets: ["qpk"]),
        .library(name: "QPKCore", targets: ["QPKCore"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Quantize", targets: ["Quantize"]),
        .library(name: "Convert", targets: ["Convert"]),
        .library(name: "Inspect", targets: ["Inspect"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib",
            providers: [.apt(["zlib1g-dev"])]),
        // Value types every layer shares; links no C library.
        .target(name: "QPKCore"),
        .target(
            name: "Formats",
            dependencies: ["QPKCore", "CHDF5", "CZlib", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Quantize", dependencies: ["QPKCore"]),
        .target(name: "Convert", dependencies: ["QPKCore", "Formats", "Quantize"]),
        .target(name: "Inspect", dependencies: ["QPKCore", "Formats", "Quantize"]),
        .executableTarget(
            name: "qpk",
            dependencies: [
                "QPKCore", "Formats", "Quantize", "Convert", "Inspect",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "FormatsTests", dependencies: ["QPKCore", "Formats"]),
        .testTarget(name: "QuantizeTests", dependencies: ["QPKCore", "Quantize", "Formats"]),
        .testTarget(name: "ConvertTests", dependencies: ["QPKCore", "Convert", "Quantize", "Formats"]),
        .testTarget(
            name: "InspectTests", dependencies: ["QPKCore", "Inspect", "Quantize", "Formats"],
            exclude: ["Support/numpy_expected.py"]),
        .testTarget(name: "CLITests", dependencies: ["QPKCore", "Formats"]),
    ]
)
