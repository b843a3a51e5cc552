// swift-tools-version:6.0
import PackageDescription

/// `-target-cpu haswell` (AVX2, FMA, F16C; this LLVM has no `x86-64-v3`) for the AVX2 build of the
/// group kernels, on x86-64 hosts only; elsewhere that module is a second baseline build, never run.
#if arch(x86_64)
let avx2Settings: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let avx2Settings: [SwiftSetting] = []
#endif

let package = Package(
    name: "qpk",
    products: [
        .executable(name: "qpk", targets: ["qpk"]),
        .library(name: "QPKCore", targets: ["QPKCore"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Quantize", targets: ["Quantize"]),
        .library(name: "Convert", targets: ["Convert"]),
        .library(name: "Inspect", targets: ["Inspect"]),
        .library(name: "Model", targets: ["Model"]),
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
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS",
            providers: [.apt(["libopenblas-dev"])]),
        // Value types every layer shares; links no C library.
        .target(name: "QPKCore"),
        .target(
            name: "Formats",
            dependencies: ["QPKCore", "CHDF5", "CZlib", .product(name: "Crypto", package: "swift-crypto")]),
        // The hot SIMD loops, built twice from the same source files (KernelsAVX2 holds symbolic
        // links to Kernels' files): for the baseline CPU and for AVX2; Quantize's KernelDispatch
        // picks one at run time.
        .target(name: "Kernels"),
        .target(name: "KernelsAVX2", swiftSettings: avx2Settings),
        .target(name: "Quantize", dependencies: ["QPKCore", "CBLAS", "Kernels", "KernelsAVX2"]),
        .target(
            name: "Convert", dependencies: ["QPKCore", "Formats", "Quantize", "Model"],
            // qpk's built-in calibration text (fixtures/gen_calibration.py), compiled into the binary.
            resources: [.embedInCode("Resources/calibration.txt")]),
        .target(name: "Inspect", dependencies: ["QPKCore", "Formats", "Quantize", "Kernels"]),
        // What needs a model, not just tensors: config.json, tokenizers, forward passes, calibration.
        .target(name: "Model", dependencies: ["QPKCore", "Formats", "Quantize", "CBLAS"]),
        .executableTarget(
            name: "qpk",
            dependencies: [
                "QPKCore", "Formats", "Quantize", "Convert", "Inspect", "Model",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "FormatsTests", dependencies: ["QPKCore", "Formats"]),
        .testTarget(
            name: "QuantizeTests", dependencies: ["QPKCore", "Quantize", "Formats", "Kernels", "KernelsAVX2"]),
        .testTarget(name: "ConvertTests", dependencies: ["QPKCore", "Convert", "Quantize", "Formats", "Model"]),
        .testTarget(
            name: "InspectTests", dependencies: ["QPKCore", "Inspect", "Quantize", "Formats"],
            exclude: ["Support/numpy_expected.py"]),
        .testTarget(name: "CLITests", dependencies: ["QPKCore", "Formats"]),
        .testTarget(name: "ModelTests", dependencies: ["QPKCore", "Formats", "Model"]),
    ]
)
