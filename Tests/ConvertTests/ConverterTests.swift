import Foundation
import Testing
@testable import Convert
import QPKCore
import Formats
import Quantize

@Suite("Converter: streaming, parallel, atomic conversions")
struct ConverterTests {
    let reader = MemoryReader([
        ("layer.0.weight", [96, 130], gaussianLike(96 * 130, seed: 11)),
        ("layer.1.weight", [64, 64], gaussianLike(64 * 64, seed: 12, scale: 0.02)),
        ("layer.0.bias", [96], gaussianLike(96, seed: 13)),
    ], metadata: ["format": "pt"])

    func convert(to url: URL, target: OutputTarget, options: ConversionOptions = ConversionOptions()) throws -> ConversionSummary {
        let plan = try ConversionPlanner.plan(reader: reader, destination: url, target: target, options: options)
        return try Converter(plan: plan, options: options).run(reader: reader)
    }

    @Test("safetensors → QPK → safetensors: unquantized tensors come back bit for bit, quantized ones within their recorded error")
    func quantizeAndRestore() throws {
        let dir = try ScratchDirectory()
        let qpk = dir.file("m.qpk")
        let summary = try convert(to: qpk, target: OutputTarget(format: .qpk),
                                  options: ConversionOptions(recipe: .rtn(bits: 4, groupSize: 64)))
        #expect(summary.quantizedParameters == 96 * 130 + 64 * 64)
        // 130 columns at group 64 make 3 groups per row (64, 64, 2): 96 rows × 3 + 64 rows × 1 groups.
        let expectedBits = Double((96 * 130 + 64 * 64) * 4 + (96 * 3 + 64) * 32)
        #expect(abs(summary.quantizedBitsPerWeight! - expectedBits / Double(96 * 130 + 64 * 64)) < 1e-3)
        let quantized = try QPKReader(url: qpk)
        #expect(quantized.metadata == ["format": "pt"])
        let restoredURL = dir.file("r.safetensors")
        let plan = try ConversionPlanner.plan(
            reader: quantized, destination: restoredURL, target: OutputTarget(format: .safetensors),
            options: ConversionOptions())
        #expect(plan.tensors.map(\.action.name) == ["dequantize", "dequantize", "copy"])
        _ = try Converter(plan: plan, options: ConversionOptions()).run(reader: quantized)
        let restored = try SafetensorsReader(url: restoredURL)
        for info in reader.tensors {
            let original = reader.values[info.name]!
            let back = try Dequantizer.floats(try restored.storage(of: restored.tensor(named: info.name)!), info: info)
            if info.shape.count == 1 {
                #expect(back == original)
            } else {
                let signal = original.reduce(0.0) { $0 + Double($1 * $1) }
                let noise = zip(original, back).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
                let recorded = try #require(quantized.record(for: info.name)?.error?.sqnrDB)
                #expect(abs(10 * log10(signal / noise) - recorded) < 0.01)
                #expect(recorded > 18)
            }
        }
    }

    @Test("a failing tensor aborts the run and leaves no output behind")
    func failureLeavesNothing() throws {
        let dir = try ScratchDirectory()
        let broken = MemoryReader([
            ("a", [64, 64], gaussianLike(4096, seed: 1)), ("b", [64, 64], gaussianLike(4096, seed: 2)),
        ], failing: "b")
        let out = dir.file("out.qpk")
        let plan = try ConversionPlanner.plan(
            reader: broken, destination: out, target: OutputTarget(format: .qpk), options: ConversionOptions())
        #expect(throws: MemoryReader.Failure.self) {
            try Converter(plan: plan, options: ConversionOptions()).run(reader: broken)
        }
        #expect(dir.contents.isEmpty)
    }

    @Test("an existing output is refused without overwrite and replaced with it")
    func overwrite() throws {
        let dir = try ScratchDirectory()
        let out = dir.file("out.safetensors")
        try Data("keep".utf8).write(to: out)
        #expect(throws: FileAccessError.alreadyExists(out.path)) {
            _ = try convert(to: out, target: OutputTarget(format: .safetensors))
        }
        #expect(try String(contentsOf: out, encoding: .utf8) == "keep")
        _ = try convert(to: out, target: OutputTarget(format: .safetensors), options: ConversionOptions(overwrite: true))
        #expect(try SafetensorsReader(url: out).tensors.count == 3)
    }

    @Test("the outlier mask marks exactly the stored outliers")
    func outlierMask() throws {
        let dir = try ScratchDirectory()
        let qpk = dir.file("m.qpk")
        var recipe = QuantizationRecipe.default
        recipe.outlierBudget = 0.01
        recipe.maxBitsPerWeight = nil
        recipe.outlierKind = .elements
        _ = try convert(to: qpk, target: OutputTarget(format: .qpk), options: ConversionOptions(recipe: recipe))
        let quantized = try QPKReader(url: qpk)
        let out = dir.file("mask.safetensors")
        let options = ConversionOptions(outlierMask: true)
        let plan = try ConversionPlanner.plan(
            reader: quantized, destination: out, target: OutputTarget(format: .safetensors), options: options)
        _ = try Converter(plan: plan, options: options).run(reader: quantized)
        let masks = try SafetensorsReader(url: out)
        for name in ["layer.0.weight", "layer.1.weight"] {
            let mask = try #require(masks.tensor(named: name + ConversionPlanner.outlierMaskSuffix))
            #expect(mask.dtype == .bool)
            let marked = try masks.denseBytes(of: mask).withUnsafeBytes { $0.reduce(0) { $0 + Int($1) } }
            #expect(marked == quantized.record(for: name)?.outlierParameterCount)
            #expect(marked > 0)
        }
        #expect(masks.tensor(named: "layer.0.bias" + ConversionPlanner.outlierMaskSuffix) == nil)
    }

    @Test("mixed precision stays within the uniform budget and never leaves more error than uniform bits")
    func mixedPrecision() throws {
        // "levels" takes four values per group, which 2 bits represent exactly; "smooth" needs bits.
        let levels: [Float] = (0..<(128 * 128)).map { [-1, -1.0 / 3, 1.0 / 3, 1][($0 * 7) % 4] }
        let mixed = MemoryReader([
            ("levels", [128, 128], levels), ("smooth", [128, 128], gaussianLike(128 * 128, seed: 22)),
        ])
        let options = ConversionOptions(recipe: .rtn(bits: 3, groupSize: 64))
        let plan = try ConversionPlanner.plan(
            reader: mixed, destination: URL(fileURLWithPath: "/tmp/x.qpk"), target: OutputTarget(format: .qpk),
            options: options)
        let allocated = try MixedPrecision.allocate(plan, reader: mixed, workers: 2)
        func relativeError(_ plan: ConversionPlan) -> (error: Double, bits: Double) {
            var error = 0.0, bits = 0.0
            for entry in plan.tensors {
                guard case let .quantize(decision) = entry.action else { continue }
                let q = mixed.values[entry.source.name]!.withUnsafeBufferPointer {
                    TensorQuantizer.quantize($0, info: entry.source, decision: decision)
                }
                error += pow(10, -q.error!.sqnrDB / 10) * Double(entry.source.elementCount)
                bits += Double(q.storedByteCount * 8)
            }
            return (error, bits)
        }
        let uniform = relativeError(plan), chosen = relativeError(allocated)
        #expect(chosen.bits <= uniform.bits * (1 + 1e-9))
        #expect(chosen.error < uniform.error)
        let widths = Dictionary(uniqueKeysWithValues: allocated.tensors.compactMap { entry -> (String, Int)? in
            if case let .quantize(decision) = entry.action { return (entry.source.name, decision.bits) }
            return nil
        })
        #expect(widths["levels"]! < widths["smooth"]!, "\(widths)")
    }

    @Test("--allocate with the default recipe writes exactly what it measured, and the file records it")
    func allocateWritesWhatItMeasured() throws {
        // Four tensors of different difficulty under the capped PreQuant recipe (outliers on): the
        // easy ones give up bits to the hard ones, and each must be written at its measured size.
        let levels: [Float] = (0..<(64 * 192)).map { [-1, -1.0 / 3, 1.0 / 3, 1][($0 * 7) % 4] }
        var heavy = gaussianLike(64 * 192, seed: 31)
        for i in stride(from: 0, to: heavy.count, by: 97) { heavy[i] *= 12 }
        let source = MemoryReader([
            ("a.levels", [64, 192], levels), ("b.smooth", [64, 192], gaussianLike(64 * 192, seed: 32)),
            ("c.heavy", [64, 192], heavy), ("d.small", [64, 192], gaussianLike(64 * 192, seed: 33, scale: 0.01)),
        ])
        let dir = try ScratchDirectory()
        let out = dir.file("allocated.qpk")
        let options = ConversionOptions(recipe: .prequant(bits: 3), allocate: true)
        let plan = try ConversionPlanner.plan(
            reader: source, destination: out, target: OutputTarget(format: .qpk), options: options)
        let uniform = try ConversionPlanner.plan(
            reader: source, destination: out, target: OutputTarget(format: .qpk),
            options: ConversionOptions(recipe: .prequant(bits: 3)))
        let measured = try MixedPrecision.measure(
            uniform, indices: Array(uniform.tensors.indices), reader: source, workers: 2)
        let summary = try Converter(plan: plan, options: options).run(reader: source)
        let written = try QPKReader(url: out)
        var writtenBits = 0
        var uniformBits = 0.0
        for (index, entry) in plan.tensors.enumerated() {
            let decision = try #require(plan.decision(at: index))
            // The cap moves with the width: bits + 0.5.
            #expect(decision.maxBitsPerWeight == Double(decision.bits) + 0.5)
            let record = try #require(written.record(for: entry.source.name))
            #expect(record.decision == decision)
            let option = try #require(measured[index].options.first { $0.decision == decision })
            #expect(record.bitsPerWeight == option.bitsPerWeight, "\(entry.source.name)")
            writtenBits += record.storedByteCount * 8
            // Option 0 is the uniform decision.
            #expect(measured[index].options[0].decision == uniform.decision(at: index))
            uniformBits += measured[index].options[0].bitsPerWeight * Double(entry.source.elementCount)
        }
        #expect(Double(writtenBits) <= uniformBits)
        #expect(Set(plan.tensors.indices.compactMap { plan.decision(at: $0)?.bits }).count > 1)
        #expect(summary.allocate)
        #expect(written.recipe["allocate"] == QPKJSONValue.bool(true))
    }
}
