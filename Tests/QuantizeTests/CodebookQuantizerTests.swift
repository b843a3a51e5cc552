import Foundation
import Testing

@testable import Quantize
import QPKCore

/// The codebook quantizer with signed group scales, fitted (Lloyd) tables and log-coded scales
/// (spec/quantization.md §14, spec/qpk-format.md §5.7–§5.8).
@Suite("Codebook quantization with signed scales")
struct CodebookQuantizerTests {
    static func decision(
        _ kind: CodebookKind = .lloyd, bits: Int = 4, groupSize: Int = 24, scaleCodes: ScaleCodes? = nil,
        outlierBudget: Double = 0, search: ScaleSearch = .mse
    ) -> QuantizationDecision {
        var recipe = QuantizationRecipe(
            method: .prequant, scheme: .symmetric, bits: bits, groupSize: groupSize, scaleSearch: search,
            outlierBudget: outlierBudget, outlierKind: .elements)
        recipe.zeroPoints = .implicit
        recipe.codebook = kind
        recipe.scaleCodes = scaleCodes
        return recipe.decision()
    }

    static func sqnr(_ original: [Float], _ restored: [Float]) -> Double {
        var signal = 0.0, noise = 0.0
        for (x, y) in zip(original, restored) {
            signal += Double(x) * Double(x)
            noise += Double(x - y) * Double(x - y)
        }
        return 10 * log10(signal / noise)
    }

    @Test("the mask-free SIMD reconstruction picks the nearest level, ties to the lower one")
    func tableReconstruction() {
        let table = CodebookTable(levels: [-8, -3.5, -1, 0, 0.75, 2, 5, 8])
        var rng = SeededGenerator(seed: 11)
        var probes: [Float] = table.midpoints + table.levels + [-.infinity, .infinity, -100, 100, 0, -0.0]
        probes += (0..<200).map { _ in rng.gaussian() * 6 }
        while probes.count % 8 != 0 { probes.append(0.3) }
        for start in stride(from: 0, to: probes.count, by: 8) {
            let t = SIMD8<Float>(probes[start..<(start + 8)])
            let y = table.reconstruct(t)
            for lane in 0..<8 {
                let k = table.index(of: t[lane])
                #expect(y[lane] == table.levels[k], "t = \(t[lane])")
                // The nearest level; at an exact midpoint the lower one.
                let distances = table.levels.map { abs($0 - t[lane]) }
                if t[lane].isFinite { #expect(distances[k] == distances.min()!, "t = \(t[lane])") }
            }
        }
        #expect(table.index(of: table.midpoints[2]) == 2)
    }

    @Test("a fitted table beats NF4 on the same groups, and both decode to what they measured")
    func lloydBeatsNormalFloat() throws {
        var rng = SeededGenerator(seed: 3)
        // Laplace-like weights: a shape NF4 (built for a normal) does not fit exactly.
        let values = (0..<(64 * 96)).map { _ in rng.gaussian() * rng.gaussian() * 0.05 }
        let info = matrix(64, 96)
        let lloyd = TensorQuantizer.quantize(values, info: info, decision: Self.decision(.lloyd))
        let nf4 = TensorQuantizer.quantize(values, info: info, decision: Self.decision(.nf4))
        let lloydSQNR = Self.sqnr(values, try dequantized(lloyd))
        let nf4SQNR = Self.sqnr(values, try dequantized(nf4))
        #expect(lloydSQNR > nf4SQNR + 0.2, "lloyd \(lloydSQNR) dB, nf4 \(nf4SQNR) dB")
        #expect(abs(lloyd.error!.sqnrDB - lloydSQNR) < 1e-6)
        #expect(lloyd.layout.hasCodebook && lloyd.layout.zeroPoints == .implicit && lloyd.layout.scheme == .symmetric)
        let entries = try #require(lloyd.codebook)
        #expect(entries.count == 16 && entries == entries.sorted() && entries != CodebookKind.nf4.values(scheme: .symmetric))
        #expect(lloyd.zeros.allSatisfy { $0 == 8 })
    }

    @Test("the scale is signed: a group's largest-magnitude value lands on the table's positive end")
    func signedScale() throws {
        // One group of 8 whose extreme is negative.
        let values: [Float] = [-1.0, 0.1, 0.2, -0.3, 0.05, 0.4, -0.2, 0.3]
        let q = TensorQuantizer.quantize(values, info: matrix(1, 8), decision: Self.decision(.nf4, groupSize: 8, search: .minmax))
        #expect(q.scales[0] < 0)
        #expect(unpackedCodes(q)[0] == 15)
        #expect(try dequantized(q)[0] == -1.0)
    }

    @Test("log-coded scales stay on the grid below each row's scale and cost little accuracy")
    func logCodedScales() throws {
        var rng = SeededGenerator(seed: 9)
        let rows = 48, columns = 120
        let values = rng.weights(rows * columns)
        let info = matrix(rows, columns)
        let coding = ScaleCodes(bits: 8, octaves: 8)
        let coded = TensorQuantizer.quantize(values, info: info, decision: Self.decision(scaleCodes: coding))
        let plain = TensorQuantizer.quantize(values, info: info, decision: Self.decision())
        let codes = try #require(coded.scaleCodes)
        let rowScales = try #require(coded.rowScales)
        #expect(coded.scales.isEmpty && codes.count == rows * 5 && rowScales.count == rows)
        #expect(coded.layout.scaleCodes == coding && coded.layout.requiresVersion2)
        let decoded = try #require(coded.decodedScales(rows: rows, groupsPerRow: 5))
        for r in 0..<rows {
            let largest = (0..<5).map { abs(decoded[r * 5 + $0]) }.max()!
            #expect(largest <= Float(rowScales[r]) && largest >= Float(rowScales[r]) * 0.5)
        }
        let codedSQNR = Self.sqnr(values, try dequantized(coded))
        let plainSQNR = Self.sqnr(values, try dequantized(plain))
        #expect(codedSQNR > plainSQNR - 0.3, "coded \(codedSQNR) dB, fp16 \(plainSQNR) dB")
        #expect(coded.storedByteCount < plain.storedByteCount)
    }

    @Test("outliers are kept exactly and the cap counts the codebook, scale codes and row scales")
    func outliersUnderTheCap() throws {
        var rng = SeededGenerator(seed: 4)
        let rows = 96, columns = 384
        let values = rng.weights(rows * columns)
        var decision = Self.decision(scaleCodes: ScaleCodes(bits: 8, octaves: 8), outlierBudget: 0.005)
        decision.maxBitsPerWeight = 4.5
        let q = TensorQuantizer.quantize(values, info: matrix(rows, columns), decision: decision)
        let outliers = try #require(q.outliers)
        #expect(!outliers.indices.isEmpty)
        let restored = try dequantized(q)
        for index in outliers.indices { #expect(restored[Int(index)] == values[Int(index)]) }
        let bitsPerWeight = Double(q.storedByteCount * 8) / Double(rows * columns)
        #expect(bitsPerWeight <= 4.5 && bitsPerWeight > 4.45, "\(bitsPerWeight)")
    }

    @Test("a NaN or infinite weight leaves the fitted table finite, so the file can be written")
    func nonFiniteWeights() throws {
        var rng = SeededGenerator(seed: 8)
        var values = rng.weights(16 * 64)
        values[5] = .nan
        values[300] = .infinity
        values[301] = -.infinity
        for scaleCodes in [nil, ScaleCodes(bits: 8, octaves: 6)] {
            let q = TensorQuantizer.quantize(values, info: matrix(16, 64), decision: Self.decision(scaleCodes: scaleCodes))
            let entries = try #require(q.codebook)
            #expect(entries.allSatisfy { $0.isFinite })
            #expect(q.rowScales?.allSatisfy { $0.isFinite } ?? true)
            // The rows without a non-finite value decode as usual.
            let restored = try dequantized(q)
            #expect(restored[(2 * 64)..<(3 * 64)].allSatisfy { $0.isFinite })
        }
    }

    @Test("recipes that cannot work are refused")
    func invalidRecipes() {
        var recipe = QuantizationRecipe.default
        recipe.scheme = .affine
        recipe.zeroPoints = .float16
        recipe.codebook = .lloyd
        recipe.scaleCodes = nil
        #expect(throws: QuantizationRecipe.Invalid.fittedCodebookScheme) { try recipe.validate() }
        recipe.codebook = nil
        recipe.scaleCodes = ScaleCodes(bits: 8, octaves: 8)
        #expect(throws: QuantizationRecipe.Invalid.scaleCodesNeedCodebook) { try recipe.validate() }
        var lloyd8 = Self.decisionRecipe()
        lloyd8.bits = 8
        #expect(throws: QuantizationRecipe.Invalid.codebook(.lloyd, 8)) { try lloyd8.validate() }
        var wide = Self.decisionRecipe()
        wide.scaleCodes = ScaleCodes(bits: 9, octaves: 8)
        #expect(throws: QuantizationRecipe.Invalid.scaleCodes(ScaleCodes(bits: 9, octaves: 8))) { try wide.validate() }
    }

    static func decisionRecipe() -> QuantizationRecipe {
        var recipe = QuantizationRecipe(method: .prequant, scheme: .symmetric, bits: 4, groupSize: 24)
        recipe.zeroPoints = .implicit
        recipe.codebook = .lloyd
        return recipe
    }
}

@Suite("Log-coded scale grid (spec/qpk-format.md §5.8)")
struct ScaleCodesTests {
    @Test("the magnitudes run from 1 down to 2^−octaves in equal log steps")
    func magnitudes() {
        for (bits, octaves) in [(8, 8), (6, 6), (2, 1), (5, 32)] {
            let coding = ScaleCodes(bits: bits, octaves: octaves)
            let m = coding.magnitudes
            #expect(m.count == coding.largestStep + 1)
            #expect(m.first == 1 && m.last == Float(pow(2.0, -Double(octaves))))
            for k in 1..<m.count { #expect(m[k] < m[k - 1]) }
        }
    }

    @Test("every code decodes to a scale whose nearest code is itself, sign in the top bit")
    func codeRoundTrip() {
        let coding = ScaleCodes(bits: 8, octaves: 8)
        let m = coding.magnitudes
        for code in 0..<256 {
            let s = coding.scale(code: UInt8(code), rowScale: 0.03, magnitudes: m)
            #expect(coding.code(for: s, rowScale: 0.03) == UInt8(code))
            #expect((s < 0) == (code >= 128))
        }
        #expect(coding.code(for: 1.0, rowScale: 0.03) == 0)        // above the row scale: k = 0
        #expect(coding.code(for: 1e-9, rowScale: 0.03) == 127)     // below the grid: k_max
        #expect(coding.code(for: 0, rowScale: 0.03) == 127)
    }
}
