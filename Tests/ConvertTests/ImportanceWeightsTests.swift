import Foundation
import Testing

@testable import Convert
import QPKCore
import Formats
import Quantize

@Suite("--imatrix: measured importance weights the data-free quantizer")
struct ImportanceWeightsTests {
    static let name = "encoder.layer.0.attention.self.query.weight"
    static let reader = MemoryReader([
        (name, [64, 128], gaussianLike(64 * 128, seed: 7)),
        ("encoder.layer.0.attention.self.key.weight", [64, 128], gaussianLike(64 * 128, seed: 8)),
    ])
    static let destination = URL(fileURLWithPath: "/tmp/unused-imatrix.qpk")

    static func matrix(columns: Int = 128) -> ImportanceMatrix {
        let sums = (0..<columns).map { Float($0 % 8 == 0 ? 400 : 4) }
        return ImportanceMatrix(entries: [name: .init(sumOfSquares: sums, counts: [4])], datasets: ["t"], chunkCount: 1, chunkSize: 4)
    }

    static func plan(_ matrix: ImportanceMatrix?, recipe: QuantizationRecipe = .default) throws -> ConversionPlan {
        var options = ConversionOptions(recipe: recipe)
        options.importanceMatrix = matrix
        return try ConversionPlanner.plan(reader: reader, destination: destination, target: OutputTarget(format: .qpk), options: options)
    }

    @Test("a weight with an entry is planned with importance `calibration`; one without keeps the data-free `norm`")
    func decisions() throws {
        let plan = try Self.plan(Self.matrix())
        let byName = Dictionary(uniqueKeysWithValues: plan.tensors.indices.map { (plan.tensors[$0].source.name, plan.decision(at: $0)) })
        #expect(byName[Self.name]??.importance == .calibration)
        #expect(byName["encoder.layer.0.attention.self.key.weight"]??.importance == .norm)
    }

    @Test("the weights are the entry's mean squares, normalised, to the measured exponent")
    func weights() throws {
        let plan = try Self.plan(Self.matrix())
        let index = try #require(plan.tensors.firstIndex { $0.source.name == Self.name })
        let weights = try #require(ImportanceWeights.columnWeights(
            for: plan.tensors[index].source, decision: plan.decision(at: index)!, reader: Self.reader, matrix: Self.matrix()))
        let expected = ColumnImportance.weights(
            secondMoments: (0..<128).map { $0 % 8 == 0 ? 100.0 : 1.0 }, exponent: ColumnImportance.measuredExponent)
        #expect(weights == expected)
        #expect(weights[0] > weights[1])
    }

    @Test("--importance none ignores the matrix, and then nothing is weighted: a usage error")
    func importanceNone() throws {
        var recipe = QuantizationRecipe.default
        recipe.importance = .none
        #expect(throws: UsageError.self) { try Self.plan(Self.matrix(), recipe: recipe) }
    }

    @Test("an entry of another width names the tensor and both widths")
    func widthMismatch() throws {
        #expect(throws: ImportanceWeights.Failure.widthMismatch(tensor: Self.name, entryColumns: 96, tensorColumns: 128)) {
            try Self.plan(Self.matrix(columns: 96))
        }
    }

    @Test("a matrix with no entry for any quantized tensor is a usage error, not a silent no-op")
    func noEntry() throws {
        let other = ImportanceMatrix(entries: ["blk.5.attn_q.weight": .init(sumOfSquares: [1], counts: [1])], datasets: [], chunkCount: 1, chunkSize: 1)
        #expect(throws: UsageError.self) { try Self.plan(other) }
    }

    @Test("an entry under the weight's llama.cpp name counts as the weight's own")
    func llamaCppName() throws {
        let entry = Self.matrix().entries[Self.name]!
        let keyed = ImportanceMatrix(entries: ["blk.0.attn_q.weight": entry], datasets: [], chunkCount: 1, chunkSize: 4)
        let plan = try Self.plan(keyed)
        let index = try #require(plan.tensors.firstIndex { $0.source.name == Self.name })
        #expect(plan.decision(at: index)?.importance == .calibration)
    }

    @Test("the matrix applies to QPK output only")
    func qpkOnly() throws {
        var options = ConversionOptions()
        options.importanceMatrix = Self.matrix()
        #expect(throws: UsageError.self) {
            try ConversionPlanner.plan(
                reader: Self.reader, destination: URL(fileURLWithPath: "/tmp/x.safetensors"),
                target: OutputTarget(format: .safetensors), options: options)
        }
    }

    @Test("the measured weights change the quantized codes (the fit follows the heavy columns)")
    func changesTheFit() throws {
        let weighted = try Self.plan(Self.matrix())
        let plain = try Self.plan(nil)
        let index = try #require(weighted.tensors.firstIndex { $0.source.name == Self.name })
        let (a, _) = try Converter.transform(weighted.tensors[index], reader: Self.reader, importanceMatrix: Self.matrix())
        let (b, _) = try Converter.transform(plain.tensors[index], reader: Self.reader)
        guard case let .quantized(qa) = a, case let .quantized(qb) = b else { Issue.record("not quantized"); return }
        #expect(qa.decision?.importance == .calibration)
        #expect(qa.scales != qb.scales || qa.codes != qb.codes)
    }
}
