import Testing

import Kernels
import KernelsAVX2
@testable import Quantize

/// The group kernels (Sources/Kernels) against their scalar definitions, and the AVX2 build
/// against the baseline one, bit for bit.
@Suite("Group kernels: extremes and encoding")
struct GroupKernelTests {
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
}
