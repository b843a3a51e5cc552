import Testing

@testable import Quantize
import QPKCore

@Suite("Round-to-nearest tensor quantization")
struct TensorQuantizerTests {
    @Test("min-max affine on a tiny group gives the exact codes, scale and zero-point")
    func knownCodes() throws {
        // lo = −1, hi = 2 at 2 bits: s = 1, z = 1, so x = q − 1 exactly.
        let values: [Float] = [-1, 0, 1, 2, 0.4, 0.6, 1.5, -0.5]
        let q = TensorQuantizer.quantize(values, info: matrix(1, 8), recipe: .rtn(bits: 2, groupSize: 8))
        #expect(q.scales == [1])
        #expect(q.zeros == [1])
        // Round half to even: 1.5 + 1 = 2.5 → 2, −0.5 + 1 = 0.5 → 0.
        #expect(unpackedCodes(q) == [0, 1, 2, 3, 1, 2, 2, 0])
        #expect(q.layout == QuantizationLayout(scheme: .affine, bits: 2, groupSize: 8))
        #expect(q.method == "rtn+minmax")
        #expect(try dequantized(q) == [-1, 0, 1, 2, 0, 1, 1, -1])
    }

    @Test("values on the grid are reconstructed exactly, with infinite SQNR")
    func exactGrid() throws {
        let values = (0..<16).map { Float($0) * 0.5 }
        let q = TensorQuantizer.quantize(values, info: matrix(1, 16), recipe: .rtn(bits: 4, groupSize: 16))
        #expect(unpackedCodes(q) == (0..<16).map(UInt8.init))
        #expect(try dequantized(q) == values)
        #expect(q.error?.sqnrDB == .infinity)
        #expect(q.error?.maxAbsError == 0)
    }

    @Test("a 64×7 tensor with group 64 has one partial group per row")
    func partialGroupNarrowMatrix() throws {
        var rng = SeededGenerator(seed: 1)
        let values = rng.weights(64 * 7)
        let q = TensorQuantizer.quantize(values, info: matrix(64, 7), recipe: .rtn(bits: 4, groupSize: 64))
        #expect(q.layout.groupSize == 64)
        #expect(q.scales.count == 64)
        #expect(q.zeros.count == 64)
        #expect(q.codes.count == (64 * 7 * 4 + 7) / 8)
        let back = try dequantized(q)
        for r in 0..<64 {
            let step = Float(q.scales[r])
            for c in 0..<7 { #expect(abs(back[r * 7 + c] - values[r * 7 + c]) <= step * 0.5 + 1e-6) }
        }
    }

    @Test("a 5×130 tensor with group 64 has two full groups and a 2-column group per row")
    func partialLastGroup() throws {
        var rng = SeededGenerator(seed: 2)
        var values = rng.weights(5 * 130)
        // Make the 2-column tail of row 3 large: it must get its own range.
        values[3 * 130 + 128] = 5
        values[3 * 130 + 129] = 4
        let q = TensorQuantizer.quantize(values, info: matrix(5, 130), recipe: .rtn(bits: 4, groupSize: 64))
        #expect(q.scales.count == 15)
        #expect(q.scales[3 * 3 + 2] == Float16(Float(1) / 15))
        let back = try dequantized(q)
        let halfStep = Float(q.scales[3 * 3 + 2]) / 2
        #expect(abs(back[3 * 130 + 128] - 5) <= halfStep)
        #expect(abs(back[3 * 130 + 129] - 4) <= halfStep)
        #expect(abs(Float(q.scales[3 * 3 + 1])) < 0.1)
    }

    @Test("per-row quantization uses one group per row")
    func perRow() throws {
        var rng = SeededGenerator(seed: 3)
        let values = rng.weights(6 * 50)
        let q = TensorQuantizer.quantize(values, info: matrix(6, 50), recipe: .rtn(bits: 4, groupSize: nil))
        #expect(q.layout.groupSize == 50)
        #expect(q.scales.count == 6)
        let back = try dequantized(q)
        let stats = values.withUnsafeBufferPointer { x in
            back.withUnsafeBufferPointer { TensorQuantizer.errorStats(original: x, reconstruction: $0) }
        }
        #expect(stats.sqnrDB > 15)
    }

    @Test("symmetric quantization fixes z = 2^(b−1) and maps the signed absmax to code 0")
    func symmetric() throws {
        let values: [Float] = [-0.8, -0.3, 0, 0.1, 0.2, 0.7, 0.5, -0.1]
        let q = TensorQuantizer.quantize(values, info: matrix(1, 8), recipe: .rtn(bits: 4, groupSize: 8, scheme: .symmetric))
        #expect(q.zeros == [8])
        #expect(q.scales == [Float16(0.1)])
        let codes = unpackedCodes(q)
        #expect(codes[0] == 0)
        #expect(codes[2] == 8)
        let back = try dequantized(q)
        for (x, y) in zip(values, back) { #expect(abs(x - y) <= 0.05 + 1e-4) }
        // A positive absmax gets a negative scale, so it still lands on code 0 exactly.
        let flipped = TensorQuantizer.quantize(values.map { -$0 }, info: matrix(1, 8), recipe: .rtn(bits: 4, groupSize: 8, scheme: .symmetric))
        #expect(Float(flipped.scales[0]) < 0)
        #expect(abs(try dequantized(flipped)[0] - 0.8) < 1e-3)
    }

    @Test("8-bit round trips within half a step of every group", arguments: [QuantizationScheme.affine, .symmetric])
    func eightBitBound(scheme: QuantizationScheme) throws {
        var rng = SeededGenerator(seed: 8)
        let values = rng.weights(32 * 96, sigma: 0.2)
        let q = TensorQuantizer.quantize(values, info: matrix(32, 96), recipe: .rtn(bits: 8, groupSize: 32, scheme: scheme))
        let back = try dequantized(q)
        for i in values.indices {
            let step = abs(Float(q.scales[(i / 96) * 3 + (i % 96) / 32]))
            #expect(abs(values[i] - back[i]) <= step / 2 * (1 + 1e-3) + 1e-7)
        }
        #expect(q.error!.sqnrDB > 40)
    }

    @Test(
        "recorded error stats equal those recomputed from the dequantized tensor",
        arguments: [
            QuantizationRecipe.rtn(bits: 3, groupSize: 32),
            .rtn(bits: 2, groupSize: nil, scheme: .symmetric),
            .default,
            QuantizationRecipe(method: .prequant, bits: 4, groupSize: 64, scaleSearch: .hqq, outlierBudget: 0.02, outlierKind: .rows),
            QuantizationRecipe(method: .prequant, scheme: .symmetric, bits: 3, groupSize: 16, scaleSearch: .mse, outlierBudget: 0.05, outlierKind: .columns),
        ])
    func statsMatchDequantization(recipe: QuantizationRecipe) throws {
        var rng = SeededGenerator(seed: 11)
        let values = rng.weights(40 * 70)
        let q = TensorQuantizer.quantize(values, info: matrix(40, 70), recipe: recipe)
        let back = try dequantized(q)
        let recomputed = values.withUnsafeBufferPointer { x in
            back.withUnsafeBufferPointer { TensorQuantizer.errorStats(original: x, reconstruction: $0) }
        }
        let recorded = try #require(q.error)
        #expect(abs(recorded.sqnrDB - recomputed.sqnrDB) < 1e-4)
        #expect(abs(recorded.maxAbsError - recomputed.maxAbsError) <= 1e-7)
    }

    @Test("a multi-dimensional tensor is a matrix of its leading axes by its last axis")
    func rank3() throws {
        var rng = SeededGenerator(seed: 4)
        let values = rng.weights(4 * 3 * 40)
        let info = TensorInfo(name: "conv", dtype: .f16, shape: [4, 3, 40])
        let q = TensorQuantizer.quantize(values, info: info, recipe: .rtn(bits: 4, groupSize: 32))
        #expect(q.scales.count == 12 * 2)
        #expect(q.info == info)
        #expect(try dequantized(q).count == values.count)
    }

    @Test("non-finite inputs do not crash and give codes in range")
    func nonFinite() {
        var values = [Float](repeating: 0.1, count: 64)
        values[3] = .nan
        values[9] = .infinity
        values[10] = -.infinity
        values[11] = -0.2
        let q = TensorQuantizer.quantize(values, info: matrix(2, 32), recipe: .default)
        #expect(unpackedCodes(q).allSatisfy { $0 < 16 })
        #expect(q.scales.allSatisfy { $0.isFinite })
    }

    @Test("a large tensor split over cores gives the same result as the serial path")
    func parallelMatchesSerialStructure() throws {
        var rng = SeededGenerator(seed: 5)
        let values = rng.weights(1024 * 384)
        let q = TensorQuantizer.quantize(values, info: matrix(1024, 384), recipe: .default)
        let back = try dequantized(q)
        let recomputed = values.withUnsafeBufferPointer { x in
            back.withUnsafeBufferPointer { TensorQuantizer.errorStats(original: x, reconstruction: $0) }
        }
        #expect(abs(q.error!.sqnrDB - recomputed.sqnrDB) < 1e-4)
        #expect(q.bitsPerWeight <= 4.5 + 1e-9)
    }

    @Test("a group far from zero stays within half a step plus the fp16 rounding of its zero-point")
    func offsetGroup() throws {
        let values = (0..<64).map { 10 + Float($0) * 0.1 / 63 }
        let q = TensorQuantizer.quantize(values, info: matrix(1, 64), recipe: .rtn(bits: 4, groupSize: 64))
        let back = try dequantized(q)
        let bound = Float(q.scales[0]) / 2 + 10 * 0x1p-11 + 1e-5
        for (x, y) in zip(values, back) { #expect(abs(x - y) <= bound) }
    }
}
