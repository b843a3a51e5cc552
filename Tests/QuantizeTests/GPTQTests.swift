import Testing

@testable import Quantize
import QPKCore

@Suite("GPTQ")
struct GPTQTests {
    static let rows = 24
    static let columns = 256

    /// Inputs whose features are correlated (each an AR(1) step from the previous one) and of
    /// uneven energy, as a transformer's are; `H = 2/n Σ x xᵀ`.
    static func correlatedHessian(columns: Int, samples: Int = 600, seed: UInt64 = 7) -> (hessian: [Double], inputs: [[Double]]) {
        var rng = SeededGenerator(seed: seed)
        var inputs: [[Double]] = []
        let energy = (0..<columns).map { _ in Double.random(in: 0.2..<3, using: &rng) }
        for _ in 0..<samples {
            var x = [Double](repeating: 0, count: columns)
            var previous = 0.0
            for j in 0..<columns {
                previous = 0.9 * previous + Double(rng.gaussian())
                x[j] = previous * energy[j]
            }
            inputs.append(x)
        }
        var h = [Double](repeating: 0, count: columns * columns)
        for x in inputs {
            for i in 0..<columns { for j in 0..<columns { h[i * columns + j] += x[i] * x[j] } }
        }
        return (h.map { $0 * 2 / Double(samples) }, inputs)
    }

    static func identity(_ n: Int) -> [Double] {
        (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 }
    }

    /// `tr(Δ H Δᵀ)`: the layer's output error `‖(W − Ŵ) X‖²` up to the factor `2/n`.
    static func outputError(_ original: [Float], _ reconstruction: [Float], hessian: [Double], columns: Int) -> Double {
        let rows = original.count / columns
        var total = 0.0
        for r in 0..<rows {
            let delta = (0..<columns).map { Double(original[r * columns + $0]) - Double(reconstruction[r * columns + $0]) }
            for i in 0..<columns where delta[i] != 0 {
                var s = 0.0
                for j in 0..<columns { s += hessian[i * columns + j] * delta[j] }
                total += delta[i] * s
            }
        }
        return total
    }

    static func weights(seed: UInt64 = 3) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return rng.weights(rows * columns)
    }

    static func decision(_ recipe: QuantizationRecipe) -> QuantizationDecision { recipe.decision() }

    @Test("with H = I there is no error feedback: GPTQ equals round-to-nearest with the same group fits",
          arguments: [QuantizationRecipe.rtn(bits: 4, groupSize: 64), .rtn(bits: 3, groupSize: 96),
                      QuantizationRecipe(bits: 4, groupSize: 64, scaleSearch: .mse, outlierBudget: 0),
                      .uniform(bits: 4), .rtn(bits: 2, groupSize: nil), .default, .prequant(bits: 3)])
    func identityHessianIsRoundToNearest(recipe: QuantizationRecipe) throws {
        let w = Self.weights()
        let info = matrix(Self.rows, Self.columns)
        let decision = recipe.decision()
        let rtn = TensorQuantizer.quantize(w, info: info, decision: decision)
        for actOrder in [false, true] {
            let gptq = try w.withUnsafeBufferPointer {
                try GPTQ.quantize($0, info: info, hessian: Self.identity(Self.columns), decision: decision,
                                  options: GPTQOptions(actOrder: actOrder))
            }
            #expect(gptq.scales == rtn.scales)
            #expect(gptq.scaleCodes == rtn.scaleCodes && gptq.rowScales == rtn.rowScales)
            #expect(gptq.codebook == rtn.codebook && gptq.layout == rtn.layout)
            #expect(gptq.zeros == rtn.zeros)
            #expect(gptq.codes == rtn.codes)
            #expect(gptq.outliers == rtn.outliers)
            #expect(abs((gptq.error?.sqnrDB ?? 0) - (rtn.error?.sqnrDB ?? 1)) < 1e-4)
            #expect(abs((gptq.error?.maxAbsError ?? 0) - (rtn.error?.maxAbsError ?? 1)) < 1e-6)
            let (ours, theirs) = (try dequantized(gptq), try dequantized(rtn))
            #expect(ours == theirs)
        }
    }

    @Test("with correlated inputs the output error ‖(W − Ŵ)X‖² is well below round-to-nearest's",
          arguments: [QuantizationRecipe.rtn(bits: 4, groupSize: 64), .rtn(bits: 3, groupSize: 128),
                      QuantizationRecipe(bits: 3, groupSize: 96, scaleSearch: .mse, outlierBudget: 0), .uniform(bits: 4),
                      .default, .prequant(bits: 3)])
    func correlatedHessianBeatsRoundToNearest(recipe: QuantizationRecipe) throws {
        let w = Self.weights()
        let info = matrix(Self.rows, Self.columns)
        let (h, _) = Self.correlatedHessian(columns: Self.columns)
        let decision = recipe.decision()
        let rtnError = Self.outputError(w, try dequantized(TensorQuantizer.quantize(w, info: info, decision: decision)),
                                        hessian: h, columns: Self.columns)
        for actOrder in [false, true] {
            let gptq = try w.withUnsafeBufferPointer {
                try GPTQ.quantize($0, info: info, hessian: h, decision: decision, options: GPTQOptions(actOrder: actOrder))
            }
            let error = Self.outputError(w, try dequantized(gptq), hessian: h, columns: Self.columns)
            #expect(error < 0.7 * rtnError, "act-order \(actOrder): GPTQ \(error) vs RTN \(rtnError)")
            // The decision's layout; with act-order the groups follow the sweep (a group index).
            var layout = decision.layout(for: info)
            layout.hasGroupIndex = actOrder
            #expect(gptq.layout == layout)
            #expect((gptq.groupIndex != nil) == actOrder)
            #expect(gptq.scales.count == rtn(decision, info).scales.count)
        }
    }

    func rtn(_ decision: QuantizationDecision, _ info: TensorInfo) -> QuantizedTensor {
        TensorQuantizer.quantize(Self.weights(), info: info, decision: decision)
    }

    @Test("PreQuant outliers are chosen on the original weights, stored exactly and never rounded")
    func outliersStayExact() throws {
        let w = Self.weights()
        let info = matrix(Self.rows, Self.columns)
        let (h, _) = Self.correlatedHessian(columns: Self.columns)
        var recipe = QuantizationRecipe.uniform(bits: 4)
        recipe.outlierBudget = 0.01
        recipe.maxBitsPerWeight = nil
        let decision = recipe.decision()
        let gptq = try w.withUnsafeBufferPointer { try GPTQ.quantize($0, info: info, hessian: h, decision: decision) }
        let chosen = TensorQuantizer.quantize(w, info: info, decision: decision).outliers
        let outliers = try #require(gptq.outliers)
        #expect(outliers.indices == chosen?.indices)
        #expect(outliers.indices.count == Self.rows * Self.columns / 100)
        // The reconstruction holds each outlier's full-precision value, as the sweep left it.
        let restored = try dequantized(gptq)
        #expect(outliers.indices.map { restored[Int($0)] } == outliers.values)
        // An outlier that no earlier column fed back into (column 0) is the original weight.
        for index in outliers.indices where index % Int64(Self.columns) == 0 {
            #expect(restored[Int(index)] == w[Int(index)])
        }
    }

    @Test("a dead input column (H_jj = 0) is quantized as zero and the rest stays finite")
    func deadColumns() throws {
        let w = Self.weights()
        let info = matrix(Self.rows, Self.columns)
        var (h, _) = Self.correlatedHessian(columns: Self.columns)
        let dead = [5, 130]
        for j in dead {
            for i in 0..<Self.columns {
                h[i * Self.columns + j] = 0
                h[j * Self.columns + i] = 0
            }
        }
        for actOrder in [false, true] {
            let gptq = try w.withUnsafeBufferPointer {
                try GPTQ.quantize($0, info: info, hessian: h, decision: QuantizationRecipe.rtn(bits: 4, groupSize: 64).decision(),
                                  options: GPTQOptions(actOrder: actOrder))
            }
            let restored = try dequantized(gptq)
            #expect(restored.allSatisfy { $0.isFinite })
            for r in 0..<Self.rows {
                for j in dead {
                    let g = gptq.groupIndex.map { Int($0[j]) } ?? j / 64
                    #expect(abs(restored[r * Self.columns + j]) <= Float(gptq.scales[r * 4 + g]) / 2 + 1e-6)
                }
            }
        }
    }

    @Test("act-order fits each contiguous group on the error-updated weights when the sweep first reaches one of its columns",
          arguments: [2, 3, 4])
    func actOrderFitsGroupsOnUpdatedWeights(bits: Int) throws {
        let w = Self.weights()
        let info = matrix(Self.rows, Self.columns)
        let (h, _) = Self.correlatedHessian(columns: Self.columns, seed: 11)
        let decision = QuantizationRecipe.rtn(bits: bits, groupSize: 64).decision()
        let gptq = try w.withUnsafeBufferPointer {
            try GPTQ.quantize($0, info: info, hessian: h, decision: decision, options: GPTQOptions(actOrder: true, staticGroups: true))
        }
        #expect(!gptq.layout.hasGroupIndex && gptq.groupIndex == nil)
        let expected = Self.unbatchedActOrderSweep(w, hessian: h, bits: bits, groupSize: 64, groupsFollowOrder: false)
        // The groups stay contiguous (qpk's layout), but are fitted on the updated weights, not the
        // original ones: the original weights' fits differ.
        let rtn = TensorQuantizer.quantize(w, info: info, decision: decision)
        #expect(gptq.scales != rtn.scales)
        let agreeing = zip(gptq.scales, expected.scales).filter { $0 == $1 }.count
        #expect(agreeing >= expected.scales.count - 1, "\(agreeing) of \(expected.scales.count) scales agree")
        let codes = try dequantized(gptq)
        let close = zip(codes, expected.values).filter { abs($0 - $1) <= 1e-6 }.count
        #expect(close >= codes.count * 999 / 1000, "\(close) of \(codes.count) values agree")
    }

    @Test("act-order groups follow the sweep order by default, as the reference's g_idx: the file records each column's group",
          arguments: [2, 3, 4])
    func actOrderGroupsFollowTheSweep(bits: Int) throws {
        let w = Self.weights()
        let info = matrix(Self.rows, Self.columns)
        let (h, _) = Self.correlatedHessian(columns: Self.columns, seed: 11)
        let decision = QuantizationRecipe.rtn(bits: bits, groupSize: 64).decision()
        let gptq = try w.withUnsafeBufferPointer {
            try GPTQ.quantize($0, info: info, hessian: h, decision: decision, options: GPTQOptions(actOrder: true))
        }
        let expected = Self.unbatchedActOrderSweep(w, hessian: h, bits: bits, groupSize: 64, groupsFollowOrder: true)
        #expect(gptq.layout.hasGroupIndex)
        #expect(gptq.groupIndex == expected.groupIndex.map { UInt32($0) })
        // Every group holds 64 columns, and they are not the contiguous ones.
        let sizes = Dictionary(grouping: expected.groupIndex, by: { $0 }).mapValues(\.count)
        #expect(sizes.count == 4 && sizes.values.allSatisfy { $0 == 64 })
        #expect(expected.groupIndex != (0..<Self.columns).map { $0 / 64 })
        let agreeing = zip(gptq.scales, expected.scales).filter { $0 == $1 }.count
        #expect(agreeing >= expected.scales.count - 1, "\(agreeing) of \(expected.scales.count) scales agree")
        let values = try dequantized(gptq)
        let close = zip(values, expected.values).filter { abs($0 - $1) <= 1e-6 }.count
        #expect(close >= values.count * 999 / 1000, "\(close) of \(values.count) values agree")
        // And it serves the objective at least as well as contiguous groups do, here.
        let contiguous = try w.withUnsafeBufferPointer {
            try GPTQ.quantize($0, info: info, hessian: h, decision: decision, options: GPTQOptions(actOrder: true, staticGroups: true))
        }
        let error = Self.outputError(w, values, hessian: h, columns: Self.columns)
        let staticError = Self.outputError(w, try dequantized(contiguous), hessian: h, columns: Self.columns)
        #expect(error <= staticError * 1.05, "group index \(error) vs static groups \(staticError)")
    }

    /// GPTQ with act-order written out column by column (no lazy batches, no Cholesky tricks
    /// beyond `U = chol(H⁻¹)`): the specification the batched solver must meet. With
    /// `groupsFollowOrder` group `g` is the sweep's columns `g·groupSize ..< (g+1)·groupSize`
    /// (the reference's `g_idx`), else the contiguous columns.
    static func unbatchedActOrderSweep(
        _ w: [Float], hessian: [Double], bits: Int, groupSize: Int, groupsFollowOrder: Bool
    ) -> (scales: [Float16], values: [Float], groupIndex: [Int]) {
        let n = columns, groups = n / groupSize
        var h = hessian
        let lambda = 0.01 * (0..<n).map { h[$0 * n + $0] }.reduce(0, +) / Double(n)
        for j in 0..<n { h[j * n + j] += lambda }
        let order = (0..<n).sorted { h[$0 * n + $0] != h[$1 * n + $1] ? h[$0 * n + $0] > h[$1 * n + $1] : $0 < $1 }
        var permuted = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { permuted[i * n + j] = h[order[i] * n + order[j]] } }
        let u = try! Solver.upperCholeskyOfInverse(permuted, n: n, name: "spec", damp: 0.01)
        var work = w.map(Double.init)
        var scales = [Float16](repeating: 0, count: rows * groups)
        var zeros = [Float16](repeating: 0, count: rows * groups)
        var fitted = [Bool](repeating: false, count: groups)
        var values = [Float](repeating: 0, count: rows * n)
        let top = Float((1 << bits) - 1)
        var groupIndex = (0..<n).map { $0 / groupSize }
        if groupsFollowOrder { for (k, column) in order.enumerated() { groupIndex[column] = k / groupSize } }
        for (k, column) in order.enumerated() {
            let g = groupIndex[column]
            if !fitted[g] {
                let members = (0..<n).filter { groupIndex[$0] == g }
                for r in 0..<rows {
                    let group = members.map { Float(work[r * n + $0]) }
                    let p = group.withUnsafeBufferPointer { GroupFit.fit($0, bits: bits, scheme: .affine, search: .minmax) }
                    (scales[r * groups + g], zeros[r * groups + g]) = (p.scale, p.zero)
                }
                fitted[g] = true
            }
            for r in 0..<rows {
                let s = Float(scales[r * groups + g]), z = Float(zeros[r * groups + g])
                let x = Float(work[r * n + column])
                let q = min(max((x * (1 / s) + z).rounded(.toNearestOrEven), 0), top)
                values[r * n + column] = (q - z) * s
                let e = (work[r * n + column] - Double(values[r * n + column])) / u[k * n + k]
                for m in (k + 1)..<n { work[r * n + order[m]] -= e * u[k * n + m] }
            }
        }
        return (scales, values, groupIndex)
    }

    @Test("a Hessian of the wrong size is an error naming the tensor")
    func wrongHessian() {
        let w = Self.weights()
        #expect(throws: GPTQError.hessianShape(tensor: "w", columns: Self.columns, hessianSize: 8)) {
            try w.withUnsafeBufferPointer {
                try GPTQ.quantize($0, info: matrix(Self.rows, Self.columns), hessian: Self.identity(8),
                                  decision: QuantizationRecipe.uniform(bits: 4).decision())
            }
        }
    }
}
