import Testing

@testable import Quantize
import QPKCore

/// The batched error kernels must agree bit for bit with judging one candidate at a time: the
/// clipping searches compare these errors with `<`, so a last-bit difference changes the file.
@Suite("Batched candidate errors")
struct CandidateErrorsTests {
    /// The one-at-a-time weighted error as first specified: round half to even, then clamp, then
    /// add `w·e·e` in element order.
    func referenceWeighted(_ values: [Float], _ weights: [Float], scale: Float, zero: Float, bits: Int) -> Float {
        var sum: Float = 0
        if scale == 0 {
            for i in values.indices { sum += weights[i] * values[i] * values[i] }
            return sum
        }
        let inverse = 1 / scale
        let top = Float((1 << bits) - 1)
        for i in values.indices {
            var q = (values[i] * inverse + zero).rounded(.toNearestOrEven)
            if !(q >= 0) { q = 0 }
            if q > top { q = top }
            let e = (q - zero) * scale - values[i]
            sum += weights[i] * e * e
        }
        return sum
    }

    /// Groups of awkward sizes (not multiples of 8), with a few values far outside every range, and
    /// candidates from the affine clipping grid plus a negative scale and a zero scale.
    func cases(bits: Int) -> [(values: [Float], weights: [Float], scales: [Float], zeros: [Float])] {
        var rng = SeededGenerator(seed: 977 + UInt64(bits))
        return [1, 5, 8, 13, 64, 96, 101].map { n in
            var values = rng.weights(n)
            if n > 4 { values[n / 2] = 0.9; values[n - 1] = -0.0 }
            let weights = (0..<n).map { _ in Float.random(in: 0...3, using: &rng) }
            let lo = values.min() ?? 0, hi = values.max() ?? 0
            var scales: [Float] = [], zeros: [Float] = []
            for i in 0..<19 {
                let t = Float(i) / 80
                let p = GroupFit.affine(lo: lo + t * (hi - lo), hi: hi - t * (hi - lo) / 2, bits: bits)
                scales.append(Float(p.scale))
                zeros.append(Float(p.zero))
            }
            let symmetric = GroupFit.symmetric(signedAbsMax: hi, bits: bits)
            scales += [Float(symmetric.scale), 0]
            zeros += [Float(symmetric.zero), 3]
            return (values, weights, scales, zeros)
        }
    }

    /// Runs the batched kernel (plain or weighted) over every candidate of `c`.
    func batched(
        _ c: (values: [Float], weights: [Float], scales: [Float], zeros: [Float]), bits: Int, weighted: Bool
    ) -> [Float] {
        var scales = c.scales, zeros = c.zeros
        var errors = [Float](repeating: .nan, count: scales.count)
        let count = scales.count
        c.values.withUnsafeBufferPointer { v in
            c.weights.withUnsafeBufferPointer { w in
                scales.withUnsafeMutableBufferPointer { s in
                    zeros.withUnsafeMutableBufferPointer { z in
                        errors.withUnsafeMutableBufferPointer { e in
                            if weighted {
                                CandidateErrors.weighted(v, weights: w, scales: s, zeros: z, count: count, bits: bits, into: e)
                            } else {
                                CandidateErrors.plain(v, scales: s, zeros: z, count: count, bits: bits, into: e)
                            }
                        }
                    }
                }
            }
        }
        return errors
    }

    @Test("Weighted batch errors equal the one-at-a-time sum, bit for bit", arguments: [2, 3, 4, 8])
    func weightedMatchesReference(bits: Int) {
        for c in cases(bits: bits) {
            let errors = batched(c, bits: bits, weighted: true)
            for k in c.scales.indices {
                let expected = referenceWeighted(c.values, c.weights, scale: c.scales[k], zero: c.zeros[k], bits: bits)
                #expect(errors[k].bitPattern == expected.bitPattern, "n \(c.values.count), candidate \(k)")
                let single = c.values.withUnsafeBufferPointer { v in
                    c.weights.withUnsafeBufferPointer { w in
                        WeightedGroupFit.squaredError(
                            v, weights: w,
                            parameters: GroupParameters(scale: Float16(c.scales[k]), zero: Float16(c.zeros[k])),
                            bits: bits)
                    }
                }
                #expect(single.bitPattern == expected.bitPattern, "n \(c.values.count), candidate \(k)")
            }
        }
    }

    @Test("Plain batch errors equal GroupFit.squaredError, bit for bit", arguments: [2, 3, 4, 8])
    func plainMatchesSingle(bits: Int) {
        for c in cases(bits: bits) {
            let errors = batched(c, bits: bits, weighted: false)
            for k in c.scales.indices {
                let single = c.values.withUnsafeBufferPointer {
                    GroupFit.squaredError(
                        $0, parameters: GroupParameters(scale: Float16(c.scales[k]), zero: Float16(c.zeros[k])),
                        bits: bits)
                }
                #expect(errors[k].bitPattern == single.bitPattern, "n \(c.values.count), candidate \(k)")
            }
        }
    }
}
