import Testing

@testable import Quantize
import QPKCore

@Suite("BoA")
struct BoATests {
    static let heads = 3
    static let headSize = 8
    static let columns = 128
    static var rows: Int { heads * headSize }

    /// A head's output-side Hessian `2/n Σ k kᵀ` of keys with strongly correlated, uneven features.
    static func keyHessian(seed: UInt64) -> [Double] {
        var rng = SeededGenerator(seed: seed)
        let d = headSize
        let mixing = (0..<(d * d)).map { _ in Double(rng.gaussian()) }
        var h = [Double](repeating: 0, count: d * d)
        let samples = 400
        for _ in 0..<samples {
            let z = (0..<d).map { _ in Double(rng.gaussian()) }
            // k = M z + a shared offset: correlated rows, as keys are.
            let k = (0..<d).map { i in (0..<d).reduce(1.5) { $0 + mixing[i * d + $1] * z[$1] } }
            for i in 0..<d { for j in 0..<d { h[i * d + j] += k[i] * k[j] * 2 / Double(samples) } }
        }
        return h
    }

    static func difference(_ w: [Float], _ q: QuantizedTensor) throws -> [Double] {
        let r = try dequantized(q)
        return zip(w, r).map { Double($0) - Double($1) }
    }

    @Test("with H_row = I for every head BoA is GPTQ with H_col: the same codes, scales and zeros",
          arguments: [QuantizationRecipe.rtn(bits: 3, groupSize: 64), .uniform(bits: 4), .rtn(bits: 2, groupSize: nil), .default])
    func identityRowHessianIsGPTQ(recipe: QuantizationRecipe) throws {
        var rng = SeededGenerator(seed: 11)
        let w = rng.weights(Self.rows * Self.columns)
        let info = matrix(Self.rows, Self.columns)
        let (h, _) = GPTQTests.correlatedHessian(columns: Self.columns)
        let decision = recipe.decision()
        for actOrder in [false, true] {
            let options = GPTQOptions(actOrder: actOrder)
            let gptq = try w.withUnsafeBufferPointer { try GPTQ.quantize($0, info: info, hessian: h, decision: decision, options: options) }
            let identities = AttentionAwareHessians(
                heads: Self.heads, columns: [h], rows: Array(repeating: GPTQTests.identity(Self.headSize), count: Self.heads))
            let noRows = AttentionAwareHessians(heads: Self.heads, columns: [h], rows: nil)
            for hessians in [identities, noRows] {
                let boa = try w.withUnsafeBufferPointer {
                    try BoA.quantize($0, info: info, hessians: hessians, decision: decision, options: options)
                }
                #expect(boa.codes == gptq.codes)
                #expect(boa.scales == gptq.scales)
                #expect(boa.scaleCodes == gptq.scaleCodes && boa.rowScales == gptq.rowScales && boa.codebook == gptq.codebook)
                #expect(boa.zeros == gptq.zeros)
                #expect(boa.outliers == gptq.outliers)
                #expect(boa.groupIndex == gptq.groupIndex && boa.layout == gptq.layout)
                let (ours, theirs) = (try dequantized(boa), try dequantized(gptq))
                #expect(zip(ours, theirs).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
            }
        }
    }

    @Test("a per-head H_col quantizes each head as GPTQ with that head's Hessian")
    func perHeadColumnHessians() throws {
        var rng = SeededGenerator(seed: 12)
        let w = rng.weights(Self.rows * Self.columns)
        let decision = QuantizationRecipe.rtn(bits: 3, groupSize: 64).decision()
        let columnHessians = (0..<Self.heads).map { GPTQTests.correlatedHessian(columns: Self.columns, seed: UInt64(20 + $0)).hessian }
        let boa = try w.withUnsafeBufferPointer {
            try BoA.quantize($0, info: matrix(Self.rows, Self.columns),
                             hessians: AttentionAwareHessians(heads: Self.heads, columns: columnHessians, rows: nil), decision: decision)
        }
        let ours = try dequantized(boa)
        let slice = Self.headSize * Self.columns
        for h in 0..<Self.heads {
            let head = Array(w[(h * slice)..<((h + 1) * slice)])
            let gptq = try head.withUnsafeBufferPointer {
                try GPTQ.quantize($0, info: matrix(Self.headSize, Self.columns), hessian: columnHessians[h], decision: decision)
            }
            let theirs = try dequantized(gptq)
            #expect(zip(ours[(h * slice)..<((h + 1) * slice)], theirs).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
        }
    }

    /// At 3 and 4 bits. At 2 bits on this problem the greedy second-order compensation overshoots
    /// (BoA 731 vs GPTQ 695 with min-max g64): the rounding errors are too large for the quadratic
    /// model to steer, as spec/quantization.md §12 reports for the model too.
    @Test("with correlated output rows BoA's attention-aware error is below GPTQ's on the same problem",
          arguments: [QuantizationRecipe.rtn(bits: 3, groupSize: 64), .rtn(bits: 4, groupSize: 64), QuantizationRecipe.uniform(bits: 3)])
    func beatsGPTQOnTheAttentionObjective(recipe: QuantizationRecipe) throws {
        var rng = SeededGenerator(seed: 5)
        let w = rng.weights(Self.rows * Self.columns)
        let info = matrix(Self.rows, Self.columns)
        let (h, _) = GPTQTests.correlatedHessian(columns: Self.columns)
        let hessians = AttentionAwareHessians(
            heads: Self.heads, columns: [h], rows: (0..<Self.heads).map { Self.keyHessian(seed: UInt64(40 + $0)) })
        let decision = recipe.decision()
        let gptq = try w.withUnsafeBufferPointer { try GPTQ.quantize($0, info: info, hessian: h, decision: decision) }
        let boa = try w.withUnsafeBufferPointer { try BoA.quantize($0, info: info, hessians: hessians, decision: decision) }
        let gptqError = BoA.objective(difference: try Self.difference(w, gptq), columns: Self.columns, hessians: hessians)
        let boaError = BoA.objective(difference: try Self.difference(w, boa), columns: Self.columns, hessians: hessians)
        #expect(boaError < 0.8 * gptqError, "BoA \(boaError) vs GPTQ \(gptqError)")
        // GPTQ's own objective (H_row = I) is GPTQ's to win.
        let layerWise = AttentionAwareHessians(heads: Self.heads, columns: [h], rows: nil)
        #expect(BoA.objective(difference: try Self.difference(w, gptq), columns: Self.columns, hessians: layerWise)
                <= BoA.objective(difference: try Self.difference(w, boa), columns: Self.columns, hessians: layerWise))
    }

    @Test("the objective with identity H_row is GPTQ's tr(ΔW H ΔWᵀ)")
    func objectiveReducesToLayerWise() throws {
        var rng = SeededGenerator(seed: 6)
        let w = rng.weights(Self.rows * Self.columns)
        let (h, _) = GPTQTests.correlatedHessian(columns: Self.columns)
        let q = TensorQuantizer.quantize(w, info: matrix(Self.rows, Self.columns), decision: QuantizationRecipe.rtn(bits: 3).decision())
        let r = try dequantized(q)
        let objective = BoA.objective(difference: zip(w, r).map { Double($0) - Double($1) }, columns: Self.columns,
                                      hessians: AttentionAwareHessians(heads: Self.heads, columns: [h], rows: nil))
        let layerWise = GPTQTests.outputError(w, r, hessian: h, columns: Self.columns)
        #expect(abs(objective - layerWise) <= 1e-9 * layerWise)
    }

    @Test("Hessians that do not fit the weight are refused, naming the tensor")
    func shapeMismatch() {
        let w = [Float](repeating: 0.5, count: Self.rows * Self.columns)
        let info = matrix(Self.rows, Self.columns, name: "layer.q")
        let decision = QuantizationRecipe.rtn(bits: 4).decision()
        let h = GPTQTests.identity(Self.columns)
        let bad = [
            AttentionAwareHessians(heads: 5, columns: [h], rows: nil),
            AttentionAwareHessians(heads: Self.heads, columns: [h, h], rows: nil),
            AttentionAwareHessians(heads: Self.heads, columns: [h], rows: [GPTQTests.identity(Self.headSize)]),
        ]
        for hessians in bad {
            #expect(throws: BoAError.self) {
                try w.withUnsafeBufferPointer { try BoA.quantize($0, info: info, hessians: hessians, decision: decision) }
            }
        }
    }
}
