import Testing

@testable import Quantize
import QPKCore

@Suite("PreQuant outlier selection")
struct OutlierSelectionTests {
    static func scaledRowMatrix() -> [Float] {
        var rng = SeededGenerator(seed: 50)
        var values = rng.weights(16 * 64)
        for c in 0..<64 { values[7 * 64 + c] *= 50 }
        return values
    }

    @Test("a row scaled ×50 is the outlier row")
    func outlierRow() throws {
        let values = Self.scaledRowMatrix()
        let recipe = QuantizationRecipe(method: .prequant, bits: 4, groupSize: 32, scaleSearch: .minmax, outlierBudget: 1.0 / 16, outlierKind: .rows)
        let q = TensorQuantizer.quantize(values, info: matrix(16, 64), recipe: recipe)
        let outliers = try #require(q.outliers)
        #expect(outliers.kind == .rows)
        #expect(outliers.indices == [7])
        #expect(outliers.values == Array(values[(7 * 64)..<(8 * 64)]))
        #expect(outliers.statistic == "row_range_energy")
        #expect(outliers.threshold > 0)
        // The row is restored exactly.
        let back = try dequantized(q)
        #expect(Array(back[(7 * 64)..<(8 * 64)]) == outliers.values)
    }

    @Test("element outliers go to the extremes that widen their groups most")
    func elementOutliers() throws {
        var rng = SeededGenerator(seed: 51)
        var values = rng.weights(32 * 128, sigma: 0.02).map { max(-0.05, min(0.05, $0)) }
        let spikes = [5, 700, 1999, 4000]
        for (k, i) in spikes.enumerated() { values[i] = k.isMultiple(of: 2) ? 1.5 : -2 }
        let recipe = QuantizationRecipe(method: .prequant, bits: 4, groupSize: 64, scaleSearch: .minmax, outlierBudget: 4.0 / (32 * 128), outlierKind: .elements)
        let q = TensorQuantizer.quantize(values, info: matrix(32, 128), recipe: recipe)
        let outliers = try #require(q.outliers)
        #expect(outliers.kind == .elements)
        #expect(outliers.indices == spikes.map(Int64.init))
        #expect(outliers.values == spikes.map { values[$0] })
        #expect(outliers.statistic == "range_shrink_gain")
        // Removing the spikes keeps their groups' steps small, so the tensor is far better than plain RTN.
        let plain = TensorQuantizer.quantize(values, info: matrix(32, 128), recipe: .rtn(bits: 4, groupSize: 64))
        #expect(q.error!.sqnrDB > plain.error!.sqnrDB + 10)
        for i in spikes { #expect(try dequantized(q)[i] == values[i]) }
    }

    @Test("column outliers are the features with the most energy")
    func columnOutliers() throws {
        var rng = SeededGenerator(seed: 52)
        var values = rng.weights(64 * 48)
        for r in 0..<64 { values[r * 48 + 13] *= 40 }
        let recipe = QuantizationRecipe(method: .prequant, bits: 3, groupSize: 16, scaleSearch: .mse, outlierBudget: 1.0 / 48, outlierKind: .columns)
        let q = TensorQuantizer.quantize(values, info: matrix(64, 48), recipe: recipe)
        let outliers = try #require(q.outliers)
        #expect(outliers.kind == .columns)
        #expect(outliers.indices == [13])
        #expect(outliers.values == (0..<64).map { values[$0 * 48 + 13] })
    }

    @Test(
        "the budget is never exceeded",
        arguments: [OutlierSet.Kind.elements, .rows, .columns], [0.0001, 0.005, 0.03, 0.2])
    func budgetHonored(kind: OutlierSet.Kind, budget: Double) {
        var rng = SeededGenerator(seed: 53)
        let (rows, columns) = (96, 200)
        let values = rng.weights(rows * columns)
        let recipe = QuantizationRecipe(method: .prequant, bits: 4, groupSize: 64, scaleSearch: .minmax, outlierBudget: budget, outlierKind: kind == .elements ? .elements : kind == .rows ? .rows : .columns)
        let q = TensorQuantizer.quantize(values, info: matrix(rows, columns), recipe: recipe)
        let allowed = Int((budget * Double(rows * columns)).rounded(.down))
        let covered = q.outliers?.parameterCount(rows: rows, columns: columns) ?? 0
        #expect(covered <= allowed)
        if kind == .elements && budget <= 0.03 { #expect(covered == allowed) }
        if let o = q.outliers {
            #expect(o.indices == o.indices.sorted())
            #expect(Set(o.indices).count == o.indices.count)
        }
    }

    @Test("round-to-nearest with no budget keeps no outliers; the default recipe stays within 4.5 bpw")
    func defaults() {
        var rng = SeededGenerator(seed: 54)
        let values = rng.weights(384 * 384)
        #expect(TensorQuantizer.quantize(values, info: matrix(384, 384), recipe: .rtn(bits: 4)).outliers == nil)
        let q = TensorQuantizer.quantize(values, info: matrix(384, 384), recipe: .default)
        // 0.5 bpw minus 20 scale codes of 8 bits per row (160/384), the row scale (16/384) and the
        // 16-entry fp16 table (256 bits in all) leaves 5,888 bits: 92 element outliers of 64 bits
        // (the 0.5% budget, 737, is capped).
        #expect(q.outliers?.indices.count == 92)
        #expect(q.bitsPerWeight <= 4.5 && q.bitsPerWeight > 4.499)
    }

    @Test(
        "the bits-per-weight cap holds for every kind, also with partial groups",
        arguments: [QuantizationRecipe.OutlierKind.elements, .rows, .columns], [(64, 1024), (300, 130), (7, 64)])
    func capHonored(kind: QuantizationRecipe.OutlierKind, shape: (Int, Int)) {
        var rng = SeededGenerator(seed: 55)
        let values = rng.weights(shape.0 * shape.1)
        for cap in [4.4, 4.5, 4.8] {
            let recipe = QuantizationRecipe(
                method: .prequant, bits: 4, groupSize: 96, scaleSearch: .minmax, outlierBudget: 0.05,
                outlierKind: kind, maxBitsPerWeight: cap)
            let q = TensorQuantizer.quantize(values, info: matrix(shape.0, shape.1), recipe: recipe)
            let base = Double(q.codes.count * 8 + q.scales.count * 32) / Double(shape.0 * shape.1)
            if base <= cap { #expect(q.bitsPerWeight <= cap) } else { #expect(q.outliers == nil) }
        }
    }
}
