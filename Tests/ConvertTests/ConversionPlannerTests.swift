import Foundation
import Testing
@testable import Convert
import QPKCore
import Formats
import Quantize

@Suite("ConversionPlanner: what happens to each tensor")
struct ConversionPlannerTests {
    let reader = MemoryReader([
        ("encoder.weight", [128, 64], gaussianLike(128 * 64, seed: 1)),
        ("encoder.bias", [128], gaussianLike(128, seed: 2)),
        ("small.weight", [64, 7], gaussianLike(448, seed: 3)),
        ("head.weight", [64, 96], gaussianLike(64 * 96, seed: 4)),
    ])
    let destination = URL(fileURLWithPath: "/tmp/out.qpk")

    func actions(_ plan: ConversionPlan) -> [String: String] {
        Dictionary(uniqueKeysWithValues: plan.tensors.map { ($0.output.name, $0.action.name) })
    }

    @Test("QPK output quantizes rank ≥ 2 floating tensors of ≥ 4096 elements and copies the rest")
    func defaultSelection() throws {
        let plan = try ConversionPlanner.plan(
            reader: reader, destination: destination, target: OutputTarget(format: .qpk), options: ConversionOptions())
        #expect(actions(plan) == [
            "encoder.weight": "quantize", "encoder.bias": "copy", "small.weight": "copy", "head.weight": "quantize",
        ])
        #expect(plan.quantizedParameters == 128 * 64 + 64 * 96)
    }

    @Test("--include replaces the default selection and --exclude wins over it")
    func includeAndExclude() throws {
        let options = ConversionOptions(include: [Glob("*.weight")], exclude: [Glob("head.*")])
        let plan = try ConversionPlanner.plan(
            reader: reader, destination: destination, target: OutputTarget(format: .qpk), options: options)
        #expect(actions(plan) == [
            "encoder.weight": "quantize", "encoder.bias": "copy", "small.weight": "quantize", "head.weight": "copy",
        ])
        let onlyHead = ConversionOptions(include: [Glob("head.*")])
        let narrow = try ConversionPlanner.plan(
            reader: reader, destination: destination, target: OutputTarget(format: .qpk), options: onlyHead)
        #expect(actions(narrow)["encoder.weight"] == "copy")
        #expect(actions(narrow)["head.weight"] == "quantize")
    }

    @Test("--dtype casts floating tensors for safetensors output and keeps names and shapes")
    func cast() throws {
        let plan = try ConversionPlanner.plan(
            reader: reader, destination: URL(fileURLWithPath: "/tmp/o.safetensors"),
            target: OutputTarget(format: .safetensors), options: ConversionOptions(dtype: .bf16))
        #expect(plan.tensors.allSatisfy { $0.action == .cast(.bf16) && $0.output.dtype == .bf16 })
        #expect(plan.tensors.map(\.output.shape) == reader.tensors.map(\.shape))
        #expect(plan.estimatedBytes == reader.tensors.reduce(0) { $0 + $1.elementCount * 2 })
    }

    @Test("the quantized size estimate counts codes, fp16 scales and zeros, and the outlier budget")
    func estimate() {
        let info = TensorInfo(name: "w", dtype: .f32, shape: [64, 7])
        let recipe = QuantizationRecipe.rtn(bits: 4, groupSize: 64)
        // 448 codes × 4 bits = 224 bytes; 64 rows × 1 group × 4 bytes = 256 bytes.
        #expect(recipe.decision().estimatedBytes(for: info) == 224 + 256)
        var withOutliers = recipe
        withOutliers.outlierBudget = 0.01
        #expect(withOutliers.decision().estimatedBytes(for: info) == 224 + 256 + 4 * 8)
        // The uniform recipe's 0.5% budget is trimmed to its 4.5 bpw cap: 64×96 at group 96 has room for
        // 128 bytes (16 outliers) beyond its 3072 code and 256 scale/zero bytes.
        let wide = TensorInfo(name: "w", dtype: .f32, shape: [64, 96])
        #expect(QuantizationRecipe.uniform(bits: 4).decision().estimatedBytes(for: wide) == 64 * 96 * 9 / 16)
    }

    @Test("the estimate follows the outlier kind: whole rows cost an index and a row of values")
    func estimateByKind() {
        let info = TensorInfo(name: "w", dtype: .f32, shape: [100, 64])
        var recipe = QuantizationRecipe.rtn(bits: 4, groupSize: 64)
        recipe.outlierBudget = 0.02  // 128 parameters: two whole rows of 64
        recipe.outlierKind = .rows
        let base = 100 * 64 / 2 + 100 * 4
        #expect(recipe.decision().estimatedBytes(for: info) == base + 2 * (4 + 64 * 4))
        recipe.outlierKind = .columns  // 128 parameters cover one whole column of 100
        #expect(recipe.decision().estimatedBytes(for: info) == base + 1 * (4 + 100 * 4))
    }

    @Test("Keras checkpoints quantize along the leading axes; a flag overrides the detection")
    func axisFromLayout() throws {
        let keras = MemoryReader(
            [("model_weights/dense/dense/kernel:0", [128, 64], gaussianLike(128 * 64, seed: 5))],
            metadata: ["keras_version": "2.13.1"])
        let plan = try ConversionPlanner.plan(
            reader: keras, destination: destination, target: OutputTarget(format: .qpk), options: ConversionOptions())
        #expect(plan.decision(at: 0)?.axis == .leading)
        let forced = try ConversionPlanner.plan(
            reader: keras, destination: destination, target: OutputTarget(format: .qpk),
            options: ConversionOptions(axis: .last))
        #expect(forced.decision(at: 0)?.axis == .last)
        let pytorch = try ConversionPlanner.plan(
            reader: reader, destination: destination, target: OutputTarget(format: .qpk), options: ConversionOptions())
        #expect(pytorch.decision(at: 0)?.axis == .last)
    }

    @Test("optimizer state is copied, not quantized, unless included by name")
    func optimizerState() throws {
        let keras = MemoryReader([
            ("model_weights/dense/dense/kernel:0", [128, 64], gaussianLike(128 * 64, seed: 6)),
            ("optimizer_weights/Adam/dense/kernel/m:0", [128, 64], gaussianLike(128 * 64, seed: 7)),
            ("optimizer/vars/1", [128, 64], gaussianLike(128 * 64, seed: 8)),
        ])
        let plan = try ConversionPlanner.plan(
            reader: keras, destination: destination, target: OutputTarget(format: .qpk), options: ConversionOptions())
        #expect(actions(plan) == [
            "model_weights/dense/dense/kernel:0": "quantize", "optimizer_weights/Adam/dense/kernel/m:0": "copy",
            "optimizer/vars/1": "copy",
        ])
        let included = try ConversionPlanner.plan(
            reader: keras, destination: destination, target: OutputTarget(format: .qpk),
            options: ConversionOptions(include: [Glob("optimizer/*")]))
        #expect(actions(included)["optimizer/vars/1"] == "quantize")
    }

    @Test("--drop leaves tensors out of the output; a pattern that matches nothing is an error")
    func drop() throws {
        let plan = try ConversionPlanner.plan(
            reader: reader, destination: destination, target: OutputTarget(format: .qpk),
            options: ConversionOptions(drop: [Glob("*.bias"), Glob("small.*")]))
        #expect(plan.tensors.map(\.output.name) == ["encoder.weight", "head.weight"])
        #expect(throws: ConversionError.dropMatchesNothing("nothing.*")) {
            try ConversionPlanner.plan(
                reader: reader, destination: destination, target: OutputTarget(format: .qpk),
                options: ConversionOptions(drop: [Glob("nothing.*")]))
        }
    }

    @Test("output targets: extension, directory or shard size")
    func targets() throws {
        #expect(try OutputTarget.forDestination(URL(fileURLWithPath: "/x/m.qpk"), maxShardSize: nil, gzipLevel: nil).format == .qpk)
        #expect(try OutputTarget.forDestination(URL(fileURLWithPath: "/x/m.h5"), maxShardSize: nil, gzipLevel: 4) ==
            OutputTarget(format: .hdf5, gzipLevel: 4))
        #expect(try OutputTarget.forDestination(URL(fileURLWithPath: "/x/out/"), maxShardSize: nil, gzipLevel: nil).maxShardSize == Int.max)
        #expect(try OutputTarget.forDestination(URL(fileURLWithPath: "/x/m"), maxShardSize: 1000, gzipLevel: nil).maxShardSize == 1000)
        // The path decides: a file name with --max-shard-size is an error, not a folder (spec/cli.md §3).
        #expect(throws: UsageError.self) {
            try OutputTarget.forDestination(URL(fileURLWithPath: "/x/m.safetensors"), maxShardSize: 1000, gzipLevel: nil)
        }
        #expect(throws: ConversionError.unknownOutputFormat("/x/m.bin")) {
            try OutputTarget.forDestination(URL(fileURLWithPath: "/x/m.bin"), maxShardSize: nil, gzipLevel: nil)
        }
    }
}
