import Foundation
import Testing

@testable import Quantize
import QPKCore

/// The QPK v2 features on the quantizer's side: the Hadamard transform, the general
/// dequantization (group index, codebook, transform) and integer (packed) zero-point fits.
@Suite("QPK v2 quantization and dequantization")
struct Version2QuantizationTests {
    /// `H_B[i][j] = (−1)^popcount(i & j) / √B` (spec/qpk-format.md §5.6).
    static func hadamard(_ i: Int, _ j: Int, _ b: Int) -> Double {
        ((i & j).nonzeroBitCount % 2 == 0 ? 1 : -1) / Double(b).squareRoot()
    }

    @Test("the block transform of a unit vector is a row of the scaled Sylvester–Hadamard matrix")
    func matchesDefinition() {
        for block in [2, 4, 8, 32] {
            let columns = block * 3
            for i in [0, 1, block - 1, block + 1] {
                var row = [Float](repeating: 0, count: columns)
                row[i] = 1
                row.withUnsafeMutableBufferPointer { HadamardTransform.blockTransform($0.baseAddress!, columns: columns, blockSize: block) }
                let start = i / block * block
                for j in 0..<columns {
                    let expected = j / block == i / block ? Self.hadamard(i - start, j - start, block) : 0
                    #expect(abs(Double(row[j]) - expected) <= 1e-7, "B \(block) i \(i) j \(j)")
                }
            }
        }
    }

    @Test("inverse(forward(M)) is M within the spec's tolerance, and signs are deterministic")
    func roundTrip() {
        var rng = SeededGenerator(seed: 5)
        let rows = 3, columns = 96
        let original = rng.weights(rows * columns, sigma: 1)
        let signs = HadamardTransform.signs(columns: columns, name: "layer.weight")
        #expect(signs == HadamardTransform.signs(columns: columns, name: "layer.weight"))
        #expect(signs != HadamardTransform.signs(columns: columns, name: "other.weight"))
        #expect(signs.count == 12)
        var m = original
        m.withUnsafeMutableBufferPointer {
            HadamardTransform.forward($0, rows: rows, columns: columns, blockSize: 32, signs: signs)
            HadamardTransform.inverse($0, rows: rows, columns: columns, blockSize: 32, signs: signs)
        }
        let norm = original.map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        for (x, y) in zip(original, m) { #expect(abs(Double(x - y)) <= 2 * (5 + 2) * 0x1p-23 * norm) }
        #expect(HadamardTransform.signs(columns: 13, name: "t").last! >> 5 == 0)  // unused bits clear
    }

    /// `x̂` by the definition, in Double: `(v(q) − z)·s` with the group index and codebook, then
    /// the dense `x̂·H·D`.
    static func reference(_ t: QuantizedTensor) -> [Double] {
        let (rows, columns) = t.matrixShape
        let groups = t.layout.groupsPerRow(columns: columns)
        let codes = unpackedCodes(t)
        var out = [Double](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                let g = t.groupIndex.map { Int($0[c]) } ?? c / t.layout.groupSize
                let q = Int(codes[r * columns + c])
                let v = t.codebook.map { Double($0[q]) } ?? Double(q)
                out[r * columns + c] = (v - Double(t.zeros[r * groups + g])) * Double(t.scales[r * groups + g])
            }
        }
        if let transform = t.layout.transform, let signs = t.transformSigns {
            let b = transform.blockSize
            var rotated = out
            for r in 0..<rows {
                for c in 0..<columns {
                    let start = c / b * b
                    var sum = 0.0
                    for k in start..<(start + b) { sum += out[r * columns + k] * hadamard(k - start, c - start, b) }
                    rotated[r * columns + c] = HadamardTransform.isNegative(signs, column: c) ? -sum : sum
                }
            }
            out = rotated
        }
        return out
    }

    @Test("group index, codebook and transform decode as defined, outliers after the transform")
    func generalDequantization() throws {
        var rng = SeededGenerator(seed: 9)
        let info = matrix(2, 8, name: "g")
        let codes = (0..<16).map { _ in UInt8.random(in: 0...3, using: &rng) }
        var t = QuantizedTensor(
            info: info, layout: QuantizationLayout(scheme: .affine, bits: 2, groupSize: 4, hasGroupIndex: true, hasCodebook: true),
            codes: BitPackingReference.pack(codes, bits: 2), scales: [0.5, 2, 0.25, 1], zeros: [1, 0, 2, 1.5],
            method: "test", groupIndex: [1, 0, 1, 0, 0, 1, 1, 0], codebook: [-0.5, 0.25, 1, 3.5])
        var got = try dequantized(t)
        #expect(got.map(Double.init) == Self.reference(t))
        t.layout.transform = WeightTransform(blockSize: 4)
        t.transformSigns = [0b0110_1001]
        t.outliers = OutlierSet(kind: .elements, indices: [3, 9], values: [42, -7], statistic: "test", threshold: 0)
        got = try dequantized(t)
        let expected = Self.reference(t)
        for i in 0..<16 where i != 3 && i != 9 { #expect(abs(Double(got[i]) - expected[i]) <= 1e-5, "\(i)") }
        #expect(got[3] == 42 && got[9] == -7)
        // Inconsistent v2 data throws instead of trapping.
        var bad = t
        bad.groupIndex = [0, 0, 0, 0, 0, 0, 0, 2]
        #expect(throws: Dequantizer.Failure.self) { try dequantized(bad) }
        bad = t
        bad.codebook = [1, 2]
        #expect(throws: Dequantizer.Failure.self) { try dequantized(bad) }
        bad = t
        bad.transformSigns = nil
        #expect(throws: Dequantizer.Failure.self) { try dequantized(bad) }
    }

    @Test("a transformed tensor records its error in the original domain and restores outliers exactly")
    func transformedQuantization() throws {
        var rng = SeededGenerator(seed: 21)
        let info = matrix(16, 96)
        let values = rng.weights(16 * 96)
        var decision = QuantizationRecipe.uniform(bits: 4).decision()
        decision.transform = WeightTransform(blockSize: 256)
        let t = TensorQuantizer.quantize(values, info: info, decision: decision)
        #expect(t.layout.transform == WeightTransform(blockSize: 32))  // 96 = 32·3
        #expect(t.transformSigns == HadamardTransform.signs(columns: 96, name: "w"))
        let restored = try dequantized(t)
        let measured = values.withUnsafeBufferPointer { v in
            restored.withUnsafeBufferPointer { TensorQuantizer.errorStats(original: v, reconstruction: $0) }
        }
        #expect(t.error == measured)
        #expect(measured.sqnrDB > 15)
        let outliers = try #require(t.outliers)
        for (k, index) in outliers.indices.enumerated() { #expect(restored[Int(index)] == outliers.values[k]) }
        #expect(t.storedByteCount == QuantizedByteCount.codesScalesZeros(layout: t.layout, rows: 16, columns: 96)
            + QuantizedByteCount.outliers(.elements, count: outliers.indices.count, rows: 16, columns: 96))
        #expect(t.bitsPerWeight <= 4.5)
        // Odd column counts have no block: the tensor is quantized unrotated.
        let odd = TensorQuantizer.quantize(rng.weights(4 * 9), info: matrix(4, 9), decision: decision)
        #expect(odd.layout.transform == nil && odd.transformSigns == nil)
    }

    @Test("packed zero-points are integer codes; min-max covers the range, MSE is no worse")
    func packedZeroPoints() throws {
        var rng = SeededGenerator(seed: 33)
        let info = matrix(8, 128)
        let values = rng.weights(8 * 128)
        for search in [ScaleSearch.minmax, .mse, .hqq] {
            for importance in [nil, (0..<128).map { Float($0 % 7 + 1) }] {
                var decision = QuantizationRecipe.rtn(bits: 4, groupSize: 32).decision()
                decision.scaleSearch = search
                decision.zeroPoints = .packed
                let t = TensorQuantizer.quantize(values, info: info, decision: decision, columnImportance: importance)
                #expect(t.layout.zeroPoints == .packed)
                #expect(t.zeros.allSatisfy { Float($0) == Float($0).rounded() && (0...15).contains(Float($0)) }, "\(search)")
                let restored = try dequantized(t)
                if search == .minmax {
                    // Nothing clipped: every error within half a step of its group.
                    for r in 0..<8 {
                        for c in 0..<128 {
                            let s = Float(t.scales[r * 4 + c / 32])
                            #expect(abs(restored[r * 128 + c] - values[r * 128 + c]) <= s / 2 * 1.001)
                        }
                    }
                }
                #expect(t.storedByteCount == 8 * 128 / 2 + 8 * 4 * 2 + 8 * 4 / 2)
            }
        }
        var mse = QuantizationRecipe.rtn(bits: 4, groupSize: 32).decision()
        mse.scaleSearch = .mse
        mse.zeroPoints = .packed
        var minmax = mse
        minmax.scaleSearch = .minmax
        let a = TensorQuantizer.quantize(values, info: info, decision: mse)
        let b = TensorQuantizer.quantize(values, info: info, decision: minmax)
        #expect(a.error!.sqnrDB >= b.error!.sqnrDB)
    }

    @Test("zero-points none: symmetric, nothing stored, recipe rules")
    func implicitZeroPoints() throws {
        var recipe = QuantizationRecipe.rtn(bits: 4, groupSize: 32, scheme: .symmetric)
        recipe.zeroPoints = .implicit
        try recipe.validate()
        let t = TensorQuantizer.quantize(SeededGenerator(seed: 2).weightsArray(4 * 64), info: matrix(4, 64), recipe: recipe)
        #expect(t.layout.zeroPoints == .implicit)
        #expect(t.zeros.allSatisfy { $0 == 8 })
        #expect(t.storedByteCount == 4 * 64 / 2 + 4 * 2 * 2)
        recipe.scheme = .affine
        #expect(throws: QuantizationRecipe.Invalid.self) { try recipe.validate() }
        recipe.zeroPoints = .float16
        recipe.transform = WeightTransform(blockSize: 12)
        #expect(throws: QuantizationRecipe.Invalid.self) { try recipe.validate() }
    }
}

extension SeededGenerator {
    func weightsArray(_ count: Int) -> [Float] {
        var copy = self
        return copy.weights(count)
    }
}

/// §5.2 packing, one bit at a time (independent of ``BitPacking``).
enum BitPackingReference {
    static func pack(_ codes: [UInt8], bits: Int) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: (codes.count * bits + 7) / 8)
        for (i, code) in codes.enumerated() {
            for b in 0..<bits where code >> b & 1 == 1 {
                let k = i * bits + b
                packed[k / 8] |= 1 << (k % 8)
            }
        }
        return packed
    }
}

@Suite("QPK v2: the NF4 codebook writer")
struct CodebookQuantizationTests {
    @Test("nf4 codes index the normalised table, the recorded error is the decoded one, and it beats nothing by accident")
    func nf4() throws {
        var rng = SeededGenerator(seed: 44)
        let info = matrix(8, 128)
        let values = rng.weights(8 * 128)
        for scheme in [QuantizationScheme.affine, .symmetric] {
            var recipe = QuantizationRecipe.rtn(bits: 4, groupSize: 64, scheme: scheme)
            recipe.codebook = .nf4
            try recipe.validate()
            let t = TensorQuantizer.quantize(values, info: info, recipe: recipe)
            #expect(t.layout.hasCodebook)
            #expect(t.codebook == CodebookKind.nf4.values(scheme: scheme))
            let table = try #require(t.codebook).map(Float.init)
            #expect(table.first == 0 && table.last == (scheme == .affine ? 15 : 16))
            #expect(table == table.sorted())
            let restored = try dequantized(t)
            let measured = values.withUnsafeBufferPointer { v in
                restored.withUnsafeBufferPointer { TensorQuantizer.errorStats(original: v, reconstruction: $0) }
            }
            #expect(t.error == measured)
            #expect(measured.sqnrDB > 12, "\(scheme)")
            #expect(t.storedByteCount == 8 * 128 / 2 + 8 * 2 * 4 + 32)
        }
        var bad = QuantizationRecipe.rtn(bits: 3, groupSize: 64)
        bad.codebook = .nf4
        #expect(throws: QuantizationRecipe.Invalid.self) { try bad.validate() }
    }
}
