// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "qpk",
    products: [
        .executable(name: "qpk", targets: ["qpk"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Quantize", targets: ["Quantize"]),
        .library(name: "Convert", targets: ["Convert"]),
        .library(name: "Inspect", targets: ["Inspect"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib",
            providers: [.apt(["zlib1g-dev"])]),
        .target(name: "Formats", dependencies: ["CHDF5", "CZlib"]),
        .target(name: "Quantize", dependencies: ["Formats"]),
        .target(name: "Convert", dependencies: ["Formats", "Quantize"]),
        .target(name: "Inspect", dependencies: ["Formats", "Quantize"]),
        .executableTarget(
            name: "qpk",
            dependencies: [
                "Formats", "Quantize", "Convert", "Inspect",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats"]),
        .testTarget(name: "QuantizeTests", dependencies: ["Quantize", "Formats"]),
        .testTarget(name: "ConvertTests", dependencies: ["Convert", "Quantize", "Formats"]),
        .testTarget(
            name: "InspectTests", dependencies: ["Inspect", "Quantize", "Formats"],
            exclude: ["Support/numpy_expected.py"]),
        .testTarget(name: "CLITests", dependencies: ["Formats"]),
    ]
)
