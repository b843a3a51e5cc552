import QPKCore

/// The scale and zero-point of one group, already rounded to the fp16 values QPK stores.
///
/// Every candidate is judged with the rounded values, so the error a search reports is the error
/// the file will have.
public struct GroupParameters: Sendable, Equatable {
    public var scale: Float16
    public var zero: Float16

    public init(scale: Float16, zero: Float16) {
        self.scale = scale
        self.zero = zero
    }
}

/// Fits the scale and zero-point of one group of values (spec/quantization.md §2–§4).
///
/// All functions take the group's *kept* values (outliers already removed) as a contiguous buffer.
/// Codes are `q = clamp(round(x · (1/s) + z), 0, 2^b − 1)` with round-half-to-even, and the
/// reconstruction is `(q − z) · s`; ``TensorQuantizer`` uses exactly the same arithmetic.
public enum GroupFit {
    /// Rounds to fp16, clamping to the finite range (a scale of ±∞ would poison every element).
    @inline(__always)
    static func half(_ x: Float) -> Float16 {
        guard x.isFinite else { return x.isNaN ? 0 : (x > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude) }
        return narrow(max(-65504, min(65504, x)))
    }

    /// `Float16(x)` (round to nearest, ties to even) for finite `|x| ≤ 65504`, in integer
    /// arithmetic: without F16C the conversion is a library call, and the searches make several per
    /// candidate. Normal results drop 13 mantissa bits with round-half-to-even on the rebiased
    /// pattern (a carry correctly bumps the exponent); below 2^−14, adding 0.5 (whose ulp is
    /// 2^−24, the fp16 subnormal step) rounds in hardware and leaves the fp16 pattern in the low
    /// bits. Checked against `Float16(_:)` on every such Float bit pattern.
    @inline(__always)
    static func narrow(_ x: Float) -> Float16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7FFF_FFFF
        if magnitude >= 0x3880_0000 {
            let rebiased = magnitude &- 0x3800_0000
            let rounded = (rebiased &+ 0x0FFF &+ ((rebiased >> 13) & 1)) >> 13
            return Float16(bitPattern: sign | UInt16(truncatingIfNeeded: rounded))
        }
        let shifted = Float(bitPattern: magnitude) + 0.5
        return Float16(bitPattern: sign | UInt16(truncatingIfNeeded: shifted.bitPattern &- 0x3F00_0000))
    }

    /// `Float(h)`, exactly, in integer arithmetic (checked against `Float(_:)` on all 65,536
    /// patterns); infinities and NaNs go through the library conversion.
    @inline(__always)
    static func widen(_ h: Float16) -> Float {
        let bits = UInt32(h.bitPattern)
        let sign = (bits & 0x8000) << 16
        let exponent = (bits >> 10) & 0x1F
        let mantissa = bits & 0x3FF
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 { return Float(h) }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// Min-max affine parameters for the range `[lo, hi]`: `lo` maps to code 0, `hi` to `2^b − 1`.
    /// A constant group `c` is reconstructed as fp16(c).
    public static func affine(lo: Float, hi: Float, bits: Int) -> GroupParameters {
        let (scale, zero) = affineWidened(lo: lo, hi: hi, bits: bits)
        return GroupParameters(scale: narrow(scale), zero: narrow(zero))
    }

    /// ``affine(lo:hi:bits:)`` with its fp16 scale and zero-point widened to Float (exactly), for
    /// searches that judge many candidates without converting each one back and forth.
    @inline(__always)
    static func affineWidened(lo: Float, hi: Float, bits: Int) -> (scale: Float, zero: Float) {
        let levels = Float((1 << bits) - 1)
        guard lo.isFinite, hi.isFinite else { return (0, 0) }
        if !(hi > lo) {
            // A constant c: s = |c| and the code 1 (c > 0) or 0 with z = 1 (c < 0) give x̂ = fp16(c).
            guard lo != 0 else { return (0, 0) }
            return (widen(half(abs(lo))), lo > 0 ? 0 : 1)
        }
        // Compared widened: a Float16 comparison is itself a library conversion without F16C.
        var wide = widen(half((hi - lo) / levels))
        if wide == 0 { wide = widen(.leastNonzeroMagnitude) }
        return (wide, widen(half(-lo / wide)))
    }

    /// Symmetric parameters, as in llama.cpp's Q4_0: the value of largest magnitude `m` (with its
    /// sign) maps to code 0, i.e. `s = m / −2^(b−1)` with the fixed zero `z = 2^(b−1)`. The scale
    /// may be negative; this uses the extra negative code that a signed range has.
    public static func symmetric(signedAbsMax m: Float, bits: Int) -> GroupParameters {
        // fp16 values built from Floats in integer arithmetic (``narrow(_:)``): without F16C a
        // Float16 conversion or comparison is a library call, and this runs once per group.
        let half = Float(1 << (bits - 1))
        let zero = narrow(half)
        guard m != 0, m.isFinite else { return GroupParameters(scale: Float16(bitPattern: 0), zero: zero) }
        let quotient = m / -half
        // fp16 rounds |quotient| ≤ 2^−25 (half its least subnormal, a tie to the even 0) to zero;
        // the scale is then ∓ that least subnormal instead. (Tested on the Float, before the
        // conversion: a test of the fp16 result compiles to a library call.)
        guard abs(quotient) > 0x1p-25 else {
            return GroupParameters(scale: Float16(bitPattern: m > 0 ? 0x8001 : 0x0001), zero: zero)
        }
        return GroupParameters(scale: Self.half(quotient), zero: zero)
    }

    /// Σ (x̂ − x)² of `values` under `parameters`: the exact error the stored group will have.
    public static func squaredError(
        _ values: UnsafeBufferPointer<Float>, parameters p: GroupParameters, bits: Int
    ) -> Float {
        squaredError(values, scale: widen(p.scale), zero: widen(p.zero), bits: bits)
    }

    @inline(__always)
    static func squaredError(_ values: UnsafeBufferPointer<Float>, scale: Float, zero: Float, bits: Int) -> Float {
        guard let base = values.baseAddress else { return 0 }
        let n = values.count
        if scale == 0 {
            var sum: Float = 0
            for i in 0..<n { sum += values[i] * values[i] }
            return sum
        }
        let inverse = 1 / scale
        let top = Float((1 << bits) - 1)
        // Two SSE-width lanes per step; `replace(with:where:)` lowers to vector selects, which
        // measured 5× faster than `pointwiseMin`/`rounded` on SIMD8 here.
        let vInverse = SIMD4<Float>(repeating: inverse)
        let vZero = SIMD4<Float>(repeating: zero)
        let vScale = SIMD4<Float>(repeating: scale)
        let vLow = SIMD4<Float>(repeating: 0)
        let vTop = SIMD4<Float>(repeating: top)
        // Round half-to-even with the 1.5·2^23 trick (exact for |v| < 2^22, after clamping).
        let vMagic = SIMD4<Float>(repeating: 12_582_912)
        var acc = SIMD4<Float>(repeating: 0), acc2 = SIMD4<Float>(repeating: 0)
        var i = 0
        let raw = UnsafeRawPointer(base)
        while i + 8 <= n {
            let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD4<Float>.self)
            let y = raw.loadUnaligned(fromByteOffset: i * 4 + 16, as: SIMD4<Float>.self)
            var q = x * vInverse + vZero
            var r = y * vInverse + vZero
            q.replace(with: vLow, where: q .< vLow)
            q.replace(with: vTop, where: q .> vTop)
            r.replace(with: vLow, where: r .< vLow)
            r.replace(with: vTop, where: r .> vTop)
            q = (q + vMagic) - vMagic
            r = (r + vMagic) - vMagic
            let d = (q - vZero) * vScale - x
            let d2 = (r - vZero) * vScale - y
            acc += d * d
            acc2 += d2 * d2
            i += 8
        }
        acc += acc2
        var sum = acc.sum()
        while i < n {
            let x = base[i]
            let q = min(max((x * inverse + zero).rounded(.toNearestOrEven), 0), top)
            let e = (q - zero) * scale - x
            sum += e * e
            i += 1
        }
        return sum
    }

    /// The signed value of largest magnitude and the min/max of `values` (non-finite values
    /// ignored; ``Kernels/GroupKernel/extremes(_:count:)``).
    @inline(__always)
    static func extremes(_ values: UnsafeBufferPointer<Float>) -> (lo: Float, hi: Float, signedAbsMax: Float) {
        guard let base = values.baseAddress else { return (0, 0, 0) }
        return KernelDispatch.extremes(base, count: values.count)
    }

    /// Fits `values` with the given scheme and search.
    public static func fit(
        _ values: UnsafeBufferPointer<Float>, bits: Int, scheme: QuantizationScheme,
        search: QuantizationRecipe.ScaleSearch
    ) -> GroupParameters {
        let (lo, hi, m) = extremes(values)
        switch (scheme, search) {
        case (.affine, .minmax): return affine(lo: lo, hi: hi, bits: bits)
        case (.symmetric, .minmax): return symmetric(signedAbsMax: m, bits: bits)
        case (.affine, .mse): return mseAffine(values, lo: lo, hi: hi, bits: bits)
        case (.symmetric, .mse): return mseSymmetric(values, signedAbsMax: m, bits: bits)
        case (.affine, .hqq): return HalfQuadratic.optimizeZero(values, start: affine(lo: lo, hi: hi, bits: bits), bits: bits)
        case (.symmetric, .hqq):
            return HalfQuadratic.optimizeScale(values, start: symmetric(signedAbsMax: m, bits: bits), bits: bits)
        }
    }

    /// Fits `values` with the given scheme and search, its zero-point in `zeroPoints`.
    ///
    /// Only ``ZeroPointDomain/packed`` changes the affine fit (``integerZeroAffine(_:bits:search:)``):
    /// the symmetric zero-point is already the integer `2^(bits−1)`, and GPTQ's integer domain
    /// rounds the fp16 fit's zero-point afterwards, as its runtime layout always has.
    public static func fit(
        _ values: UnsafeBufferPointer<Float>, bits: Int, scheme: QuantizationScheme,
        search: QuantizationRecipe.ScaleSearch, zeroPoints: ZeroPointDomain
    ) -> GroupParameters {
        guard zeroPoints == .packed, scheme == .affine else { return fit(values, bits: bits, scheme: scheme, search: search) }
        return integerZeroAffine(values, bits: bits, search: search)
    }

    /// `zero` rounded half to even and clamped to the code range `[0, 2^bits − 1]`.
    @inline(__always)
    static func integerZero(_ zero: Float, bits: Int) -> Float {
        ZeroPointDomain.packed.constrain(zero, bits: bits)
    }

    /// The affine fit with an integer zero-point in `[0, 2^bits − 1]` (QPK v2 packed
    /// zero-points, spec/quantization.md §14): `minmax` rounds the min-max zero-point and takes the
    /// smallest scale that still covers `[lo, hi]` from it; `mse` judges every clipping candidate
    /// with its zero-point rounded (so the choice accounts for the rounding) and `hqq` rounds its
    /// optimum; both then refit the scale by least squares for the fixed integer zero-point.
    static func integerZeroAffine(
        _ values: UnsafeBufferPointer<Float>, bits: Int, search: QuantizationRecipe.ScaleSearch
    ) -> GroupParameters {
        let (lo, hi, _) = extremes(values)
        let start: GroupParameters
        switch search {
        case .minmax:
            return coveringIntegerZero(lo: lo, hi: hi, bits: bits)
        case .mse:
            let (best, _) = AffineClippingSearch.run(lo: lo, hi: hi, bits: bits) { scales, zeros, count, errors in
                for k in 0..<count { zeros[k] = integerZero(zeros[k], bits: bits) }
                CandidateErrors.plain(values, scales: scales, zeros: zeros, count: count, bits: bits, into: errors)
            }
            start = GroupParameters(scale: best.scale, zero: Float16(integerZero(widen(best.zero), bits: bits)))
        case .hqq:
            let optimum = HalfQuadratic.optimizeZero(values, start: affine(lo: lo, hi: hi, bits: bits), bits: bits)
            start = GroupParameters(scale: optimum.scale, zero: Float16(integerZero(widen(optimum.zero), bits: bits)))
        }
        let error = squaredError(values, parameters: start, bits: bits)
        return refit(values, start: start, error: error, bits: bits, fixedZero: true)
    }

    /// Min-max with an integer zero-point: `z = round(−lo/s)` from the min-max scale, then the
    /// smallest fp16 scale with `(0 − z)·s ≤ lo` and `(2^b − 1 − z)·s ≥ hi` (rounded up to fp16,
    /// so nothing is clipped).
    static func coveringIntegerZero(lo: Float, hi: Float, bits: Int) -> GroupParameters {
        let (scale, zero) = affineWidened(lo: lo, hi: hi, bits: bits)
        let z = integerZero(zero, bits: bits)
        let top = Float((1 << bits) - 1)
        var needed: Float = 0
        if hi > 0, z < top { needed = max(needed, hi / (top - z)) }
        if lo < 0, z > 0 { needed = max(needed, -lo / z) }
        guard needed > 0, needed.isFinite else { return GroupParameters(scale: half(scale), zero: Float16(z)) }
        var s = half(needed)
        if widen(s) < needed, s < .greatestFiniteMagnitude { s = s.nextUp }
        return GroupParameters(scale: s, zero: Float16(z))
    }

    /// MSE-optimal clipping for the affine scheme: a grid search over clipped ranges
    /// `[lo + a·R, hi − b·R]` (R = hi − lo). First a symmetric sweep `a = b ∈ {0, 1/80, …, 1/4}`,
    /// then `b` alone and `a` alone around the best point, each over `{0, 1/40, …, 1/4}`, then a
    /// ±1/80 step on each end (``AffineClippingSearch``).
    /// The unclipped range is a candidate, so the result is never worse than min-max.
    static func mseAffine(_ values: UnsafeBufferPointer<Float>, lo: Float, hi: Float, bits: Int) -> GroupParameters {
        let (best, bestError) = AffineClippingSearch.run(lo: lo, hi: hi, bits: bits) { scales, zeros, count, errors in
            CandidateErrors.plain(values, scales: scales, zeros: zeros, count: count, bits: bits, into: errors)
        }
        guard let bestError else { return best }
        return refit(values, start: best, error: bestError, bits: bits, fixedZero: false)
    }

    /// MSE-optimal clipping for the symmetric scheme: the signed absmax shrunk by
    /// `p ∈ {1, 0.975, …, 0.5}`, keeping the least squared error.
    static func mseSymmetric(_ values: UnsafeBufferPointer<Float>, signedAbsMax m: Float, bits: Int) -> GroupParameters {
        var best = symmetric(signedAbsMax: m, bits: bits)
        var bestError = squaredError(values, parameters: best, bits: bits)
        guard m != 0, bestError > 0 else { return best }
        for i in 1...20 {
            let candidate = symmetric(signedAbsMax: m * (1 - Float(i) / 40), bits: bits)
            let error = squaredError(values, parameters: candidate, bits: bits)
            if error < bestError {
                best = candidate
                bestError = error
            }
        }
        return refit(values, start: best, error: bestError, bits: bits, fixedZero: true)
    }

    /// Least-squares refit with the codes held fixed (two rounds, Lloyd style): given the codes
    /// `q` of the current parameters, the best affine map is the regression `x ≈ s·q + c`
    /// (`z = −c/s`); with a fixed zero-point it is `s = Σ(q − z)x / Σ(q − z)²`. The codes are
    /// then recomputed; a round is kept only if the true (fp16) error falls.
    static func refit(
        _ values: UnsafeBufferPointer<Float>, start: GroupParameters, error: Float, bits: Int, fixedZero: Bool
    ) -> GroupParameters {
        var best = start, bestError = error
        let n = values.count
        guard n > 1, start.scale != 0, error > 0 else { return best }
        let top = Float((1 << bits) - 1)
        for _ in 0..<2 {
            let s = widen(best.scale), z = widen(best.zero)
            let inverse = 1 / s
            var sq: Float = 0, sx: Float = 0, sqq: Float = 0, sqx: Float = 0
            for i in 0..<n {
                let x = values[i]
                // min(max(round(v), 0), top), rounded after clamping (see ``CandidateErrors``).
                var q = x * inverse + z
                if q < 0 { q = 0 }
                if q > top { q = top }
                q = (q + 12_582_912) - 12_582_912
                if fixedZero { q -= z }
                sq += q
                sx += x
                sqq += q * q
                sqx += q * x
            }
            let candidate: GroupParameters
            if fixedZero {
                guard sqq > 0 else { break }
                let scale = half(sqx / sqq)
                guard scale != 0 else { break }
                candidate = GroupParameters(scale: scale, zero: best.zero)
            } else {
                let count = Float(n)
                let variance = sqq - sq * sq / count
                guard variance > 0 else { break }
                let slope = (sqx - sq * sx / count) / variance
                let scale = half(slope)
                guard scale != 0 else { break }
                let intercept = (sx - slope * sq) / count
                candidate = GroupParameters(scale: scale, zero: half(-intercept / Float(scale)))
            }
            let e = squaredError(values, parameters: candidate, bits: bits)
            guard e < bestError else { break }
            best = candidate
            bestError = e
        }
        return best
    }
}
