import Foundation
import Testing
@testable import Convert
import QPKCore
import Formats
import Quantize

/// `qpk convert IN.qpk OUT.qpk --outlier-values FILE`: only the outlier values change.
@Suite("Outlier value replacement: tuned outliers written back, codes untouched")
struct OutlierValueReplacementTests {
    let source = MemoryReader([
        ("layer.0.weight", [64, 130], Self.spiky(64 * 130, seed: 21)),
        ("layer.1.weight", [96, 64], Self.spiky(96 * 64, seed: 22, scale: 0.05)),
        ("layer.0.bias", [64], gaussianLike(64, seed: 23)),
    ], metadata: ["format": "pt"])

    /// Gaussian-like values with every 37th one six times larger: outliers in every tensor.
    static func spiky(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        gaussianLike(count, seed: seed, scale: scale).enumerated().map { $0 % 37 == 5 ? $1 * 6 : $1 }
    }

    /// A QPK file of `source` with outliers of `kind` in both weights.
    func quantized(_ dir: ScratchDirectory, kind: QuantizationRecipe.OutlierKind = .elements) throws -> URL {
        let url = dir.file("m.qpk")
        let options = ConversionOptions(recipe: QuantizationRecipe(bits: 4, groupSize: 64, outlierBudget: 0.02, outlierKind: kind))
        let plan = try ConversionPlanner.plan(reader: source, destination: url, target: OutputTarget(format: .qpk), options: options)
        _ = try Converter(plan: plan, options: options).run(reader: source)
        return url
    }

    /// Writes `values` (name → floats) as a safetensors file of 1-D tensors of `dtype` (F32 or F16).
    func valuesFile(_ url: URL, _ values: [String: [Float]], dtype: DType = .f32) throws {
        let infos = values.keys.sorted().map { TensorInfo(name: $0, dtype: dtype, shape: [values[$0]!.count]) }
        let writer = try SafetensorsWriter(url: url, tensors: infos, metadata: [:], overwrite: true)
        for info in infos {
            let bytes: [UInt8] = values[info.name]!.flatMap { v -> [UInt8] in
                dtype == .f16 ? withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { Array($0) }
                    : withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }
            }
            try writer.write(info, storage: .dense(TensorBytes(copying: bytes)))
        }
        try writer.finish()
    }

    /// Every tensor's current outlier values, shifted by `delta`.
    func shiftedOutliers(_ qpk: URL, by delta: Float) throws -> [String: [Float]] {
        let reader = try QPKReader(url: qpk)
        var result: [String: [Float]] = [:]
        for info in reader.tensors {
            if case let .quantized(tensor) = try reader.storage(of: info), let outliers = tensor.outliers {
                result[info.name] = outliers.values.enumerated().map { $1 + delta * Float($0 % 3) }
            }
        }
        return result
    }

    @Test("codes, scales, zero-points, indices and raw tensors are copied byte for byte; the new values are read back",
          arguments: [QuantizationRecipe.OutlierKind.elements, .rows, .columns])
    func replacesOnlyTheValues(kind: QuantizationRecipe.OutlierKind) throws {
        let dir = try ScratchDirectory()
        let input = try quantized(dir, kind: kind)
        let tuned = try shiftedOutliers(input, by: 0.25)
        #expect(tuned.count == 2)
        let values = dir.file("tuned.safetensors")
        try valuesFile(values, tuned)
        let output = dir.file("t.qpk")
        let summary = try OutlierValueReplacement.replace(
            input: input, output: output, values: values, overwrite: false, createdBy: "test")
        let before = try QPKReader(url: input), after = try QPKReader(url: output)
        #expect(summary.tensors == 2 && summary.values == tuned.values.reduce(0) { $0 + $1.count })
        #expect(summary.changed == tuned.values.reduce(0) { $0 + $1.indices.filter { $0 % 3 != 0 }.count })
        #expect(abs(summary.maxAbsChange - 0.5) < 1e-6)
        #expect(after.validate().isEmpty)
        #expect(after.metadata == before.metadata && after.recipe == before.recipe)
        for info in before.tensors {
            let (old, new) = (try before.storage(of: info), try after.storage(of: info))
            let (a, b) = (before.record(for: info.name)!, after.record(for: info.name)!)
            for kind in a.blobs.keys where kind != .outlierValues {
                #expect(a.blobs[kind]!.crc32 == b.blobs[kind]!.crc32 && a.blobs[kind]!.length == b.blobs[kind]!.length)
            }
            #expect(a.error == b.error)
            switch (old, new) {
            case let (.quantized(x), .quantized(y)):
                #expect(x.codes == y.codes && x.scales == y.scales && x.zeros == y.zeros)
                #expect(x.outliers?.indices == y.outliers?.indices && x.outliers?.kind == y.outliers?.kind)
                #expect(y.outliers?.values == tuned[info.name])
            case let (.dense(x), .dense(y)):
                #expect(x.withUnsafeBytes { Array($0) } == y.withUnsafeBytes { Array($0) })
            default:
                Issue.record("\(info.name) changed encoding")
            }
        }
        let provenance = after.provenance
        #expect(provenance.sources == before.provenance.sources)
        #expect(provenance.createdBy.hasSuffix("; tuned: test"))
        let file = try MappedFile(url: values)
        #expect(provenance.tunedOutliersFrom == QPKProvenance.TunedOutliers(
            name: "tuned.safetensors", size: file.bytes.count, sha256: SHA256Hex.digest(of: file.bytes),
            values: summary.values, changed: summary.changed))
        #expect(before.provenance.tunedOutliersFrom == nil)
    }

    /// Runs a replacement with `values` and returns the error it throws.
    func failure(_ values: [String: [Float]], dtype: DType = .f32, output: String = "x.qpk") throws -> OutlierValueError? {
        let dir = try ScratchDirectory()
        let input = try quantized(dir)
        let file = dir.file("v.safetensors")
        try valuesFile(file, values, dtype: dtype)
        defer { #expect(!FileManager.default.fileExists(atPath: dir.file(output).path), "nothing is written on error") }
        do {
            _ = try OutlierValueReplacement.replace(input: input, output: dir.file(output), values: file, overwrite: false, createdBy: "t")
        } catch let error as OutlierValueError {
            let named = error.rule == "output_not_qpk" ? dir.file(output).path : file.path
            #expect(error.description.hasPrefix(named + ": ") && !error.description.contains("\n"))
            return error
        }
        return nil
    }

    func goodValues() throws -> [String: [Float]] {
        let dir = try ScratchDirectory()
        return try shiftedOutliers(try quantized(dir), by: 0)
    }

    @Test("a missing tensor is an error naming it")
    func missingTensor() throws {
        var values = try goodValues()
        values["layer.1.weight"] = nil
        let error = try #require(try failure(values))
        #expect(error.rule == "missing_tensor" && error.description.contains("'layer.1.weight'"))
    }

    @Test("an extra tensor is an error naming it, raw or unknown")
    func extraTensor() throws {
        var values = try goodValues()
        values["layer.0.bias"] = [1, 2]
        #expect(try failure(values)?.rule == "unexpected_tensor")
        values["layer.0.bias"] = nil
        values["nope"] = [1]
        let error = try #require(try failure(values))
        #expect(error.rule == "unexpected_tensor" && error.description.contains("'nope'"))
    }

    @Test("a wrong length or dtype is an error; so are NaN and infinity")
    func lengthDTypeAndFinite() throws {
        var values = try goodValues()
        values["layer.0.weight"]!.removeLast()
        let short = try #require(try failure(values))
        #expect(short.rule == "length" && short.description.contains("'layer.0.weight'"))
        #expect(try failure(try goodValues(), dtype: .f16)?.rule == "dtype")
        values = try goodValues()
        values["layer.1.weight"]![1] = .nan
        let nan = try #require(try failure(values))
        #expect(nan.rule == "non_finite" && nan.description.contains("value 1"))
    }

    @Test("the output must be a .qpk file")
    func outputMustBeQPK() throws {
        #expect(try failure(try goodValues(), output: "x.safetensors")?.rule == "output_not_qpk")
    }
}
