import Testing

import Kernels
import KernelsAVX2
@testable import Quantize

/// The SIMD kernels (Sources/Kernels) against their scalar definitions, and the AVX2 build
/// against the baseline one, bit for bit.
@Suite("SIMD kernels: group extremes and encoding, diff pair sums")
struct KernelTests {
    /// Groups with every awkward value the kernels special-case: NaN, ±∞, ±0 extremes, values whose
    /// squares overflow binary32, lengths that are not multiples of eight.
    static func groups() -> [[Float]] {
        var generator = SeededGenerator(seed: 7)
        var result: [[Float]] = []
        for count in [1, 7, 8, 9, 16, 20, 31, 32, 33, 64, 100, 128] {
            let plain = (0..<count).map { _ in generator.gaussian() * 0.02 }
            result.append(plain)
            var special = plain
            special[Int.random(in: 0..<count, using: &generator)] = .nan
            result.append(special)
            var infinite = plain
            infinite[Int.random(in: 0..<count, using: &generator)] = Bool.random(using: &generator) ? .infinity : -.infinity
            result.append(infinite)
            result.append([Float](repeating: .nan, count: count))
            result.append(plain.map { $0 < 0 ? -0.0 : $0 })  // lo is −0
            result.append(plain.map { $0 > 0 ? 0.0 : $0 })  // hi is +0
            result.append(plain.map { $0 * 1e21 })  // x² overflows binary32
        }
        return result
    }

    /// The scalar definition: non-finite values skipped, extremes in element order.
    static func scalarExtremes(_ values: [Float]) -> (lo: Float, hi: Float, signedAbsMax: Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for x in values where x.isFinite {
            lo = min(lo, x)
            hi = max(hi, x)
        }
        if lo > hi { return (0, 0, 0) }
        return (lo, hi, -lo > hi ? lo : hi)
    }

    @Test("extremes equal the scalar definition, including the sign of a zero extreme")
    func extremesMatchScalar() {
        for values in Self.groups() {
            let expected = Self.scalarExtremes(values)
            let got = values.withUnsafeBufferPointer { Kernels.GroupKernel.extremes($0.baseAddress!, count: $0.count) }
            #expect(got.lo.bitPattern == expected.lo.bitPattern, "\(values.prefix(4))")
            #expect(got.hi.bitPattern == expected.hi.bitPattern)
            #expect(got.signedAbsMax.bitPattern == expected.signedAbsMax.bitPattern)
        }
    }

    @Test("encode gives the codes and largest error of the element-by-element formula, and the sums in binary64 to 1e-6")
    func encodeMatchesScalar() {
        for values in Self.groups() {
            let (lo, hi, _) = Self.scalarExtremes(values)
            let scale: Float = hi > lo ? (hi - lo) / 15 : 1
            let zero: Float = (-lo / scale).rounded()
            var codes = [UInt8](repeating: 0xAA, count: values.count)
            let measure = values.withUnsafeBufferPointer { v in
                codes.withUnsafeMutableBufferPointer {
                    Kernels.GroupKernel.encode(v.baseAddress!, count: v.count, codes: $0.baseAddress!,
                                                    scale: scale, zero: zero, top: 15)
                }
            }
            var signal = 0.0, noise = 0.0, worst: Float = 0
            for (i, x) in values.enumerated() {
                var q = x * (1 / scale) + zero
                if !(q >= 0) { q = 0 }
                q = min(q, 15).rounded(.toNearestOrEven)
                #expect(codes[i] == UInt8(q))
                let e = (q - zero) * scale - x
                signal += Double(x) * Double(x)
                noise += Double(e) * Double(e)
                worst = max(worst, abs(e))
            }
            #expect(measure.worst.bitPattern == worst.bitPattern)
            for (got, want) in [(measure.signal, signal), (measure.noise, noise)] {
                if want.isFinite {
                    #expect(abs(got - want) <= 1e-6 * want, "\(got) vs \(want)")
                } else {
                    #expect(got.isNaN == want.isNaN && (got.isNaN || got == want))
                }
            }
        }
    }

    @Test("the AVX2 build gives the baseline build's bits", .enabled(if: KernelDispatch.avx2Available))
    func avx2MatchesBaseline() {
        for values in Self.groups() {
            values.withUnsafeBufferPointer { v in
                let base = v.baseAddress!
                let a = Kernels.GroupKernel.extremes(base, count: v.count)
                let b = KernelsAVX2.GroupKernel.extremes(base, count: v.count)
                #expect([a.lo, a.hi, a.signedAbsMax].map(\.bitPattern) == [b.lo, b.hi, b.signedAbsMax].map(\.bitPattern))
                let scale: Float = a.hi > a.lo ? (a.hi - a.lo) / 15 : 1
                let zero: Float = (-a.lo / scale).rounded()
                var codesA = [UInt8](repeating: 0, count: v.count), codesB = codesA
                let ma = codesA.withUnsafeMutableBufferPointer {
                    Kernels.GroupKernel.encode(base, count: v.count, codes: $0.baseAddress!, scale: scale, zero: zero, top: 15)
                }
                let mb = codesB.withUnsafeMutableBufferPointer {
                    KernelsAVX2.GroupKernel.encode(base, count: v.count, codes: $0.baseAddress!, scale: scale, zero: zero, top: 15)
                }
                #expect(codesA == codesB)
                #expect(ma.signal.bitPattern == mb.signal.bitPattern)
                #expect(ma.noise.bitPattern == mb.noise.bitPattern)
                #expect(ma.worst.bitPattern == mb.worst.bitPattern)
            }
        }
    }

    /// Pairs with the values `diff` special-cases: NaN on one or both sides, infinities of either
    /// sign, equal and unequal pairs, a length that is not a multiple of four.
    static func pairs() -> ([Float], [Float]) {
        var generator = SeededGenerator(seed: 11)
        let count = 1_003
        let a = (0..<count).map { _ in generator.gaussian() }
        var b = a.map { Bool.random(using: &generator) ? $0 : $0 + generator.gaussian() * 1e-3 }
        var c = a
        for i in stride(from: 5, to: count, by: 97) { c[i] = .nan }
        for i in stride(from: 7, to: count, by: 131) { b[i] = .nan }
        for i in stride(from: 11, to: count, by: 89) { c[i] = .infinity; b[i] = i % 2 == 0 ? .infinity : -.infinity }
        return (c, b)
    }

    @Test("pair sums follow isclose and take the first worst pair, as a one-by-one scan does")
    func pairSumsMatchScalar() {
        let (a, b) = Self.pairs()
        let sums = a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                Kernels.PairKernel.sums(pa.baseAddress!, pb.baseAddress!, count: a.count, offset: 100,
                                        absolute: 1e-8, relative: 1e-5, equalNaN: false)
            }
        }
        var finite = 0, outside = 0, nonFinite = 0, sumD2 = 0.0, maxAbs = 0.0
        var worst: (index: Int, score: Double)?
        for i in a.indices {
            let x = a[i], y = b[i]
            if x.isFinite && y.isFinite {
                finite += 1
                let d = Double(x) - Double(y)
                sumD2 += d * d
                if abs(d) > 1e-8 + 1e-5 * abs(Double(y)) { outside += 1 }
                maxAbs = max(maxAbs, abs(d))
                if abs(d) > 0, abs(d) > (worst?.score ?? 0) { worst = (100 + i, abs(d)) }
            } else if !(x == y) {
                outside += 1
                nonFinite += 1
                if worst?.score != .infinity { worst = (100 + i, .infinity) }
            }
        }
        #expect(sums.finitePairs == finite)
        #expect(sums.outOfTolerance == outside)
        #expect(sums.nonFiniteMismatches == nonFinite)
        #expect(sums.maxAbs == maxAbs)
        #expect(abs(sums.sumD2 - sumD2) <= 1e-12 * sumD2)
        #expect(sums.worst?.index == worst?.index)
        #expect(!sums.allEqual)
    }

    @Test("the AVX2 build's pair sums are the baseline build's, bit for bit", .enabled(if: KernelDispatch.avx2Available))
    func pairSumsAVX2MatchBaseline() {
        let (a, b) = Self.pairs()
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for equalNaN in [false, true] {
                    let x = Kernels.PairKernel.sums(pa.baseAddress!, pb.baseAddress!, count: a.count, offset: 0,
                                                    absolute: 1e-8, relative: 1e-5, equalNaN: equalNaN)
                    let y = KernelsAVX2.PairKernel.sums(pa.baseAddress!, pb.baseAddress!, count: a.count, offset: 0,
                                                        absolute: 1e-8, relative: 1e-5, equalNaN: equalNaN)
                    #expect([x.sumA2, x.sumB2, x.sumAB, x.sumD2, x.sumAbs, x.maxAbs].map(\.bitPattern)
                            == [y.sumA2, y.sumB2, y.sumAB, y.sumD2, y.sumAbs, y.maxAbs].map(\.bitPattern))
                    #expect([x.finitePairs, x.outOfTolerance, x.nonFiniteMismatches]
                            == [y.finitePairs, y.outOfTolerance, y.nonFiniteMismatches])
                    #expect(x.allEqual == y.allEqual)
                    #expect(x.worst?.index == y.worst?.index && x.worst?.score == y.worst?.score)
                }
            }
        }
    }
}
