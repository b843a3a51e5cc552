// This file is compiled twice: as the module Kernels for the baseline x86-64 (or any other)
// target, and, through the symbolic link Sources/KernelsAVX2/GroupKernel.swift, as
// KernelsAVX2 for CPUs with AVX2 (`-target-cpu haswell`, Package.swift). Quantize's
// `KernelDispatch` picks one when the process starts. Both builds run the same Float
// operations in the same order (Swift never fuses a multiply and an add), so they give the same
// bits; only the vector width differs.

/// The per-group SIMD kernels of qpk's uniform quantizer: a group's extremes, and its encoding with
/// the error measured in the same pass (spec/quantization.md §2).
public enum GroupKernel {
    /// What encoding one group measured: `Σx²`, `Σe²` and the largest `|e|` (NaN skipped).
    public struct Measure {
        public var signal: Double
        public var noise: Double
        public var worst: Float

        @inlinable
        public init(signal: Double, noise: Double, worst: Float) {
            self.signal = signal
            self.noise = noise
            self.worst = worst
        }
    }

    /// The signed value of largest magnitude and the min/max of the `count` values at `base`
    /// (non-finite values ignored; all non-finite or empty: `(0, 0, 0)`).
    ///
    /// Eight lanes at a time, without a per-element finiteness test: a NaN never wins a `<` or `>`
    /// comparison, so it never becomes an extreme, and an infinite extreme shows in the result,
    /// which then comes from the scalar scan that skips non-finite values. The minimum of non-zero
    /// values does not depend on the order they are seen in, but the sign of a zero extreme does
    /// (`min(+0, −0)` keeps the first), so when an extreme is zero the values are scanned again in
    /// order, as the scalar definition says.
    public static func extremes(_ base: UnsafePointer<Float>, count n: Int) -> (lo: Float, hi: Float, signedAbsMax: Float) {
        var lo = Float.infinity, hi = -Float.infinity
        if n >= 8 {
            let raw = UnsafeRawPointer(base)
            var vlo = raw.loadUnaligned(as: SIMD8<Float>.self), vhi = vlo
            // A NaN lane start would stay NaN (no comparison replaces it): start those at ±∞.
            vlo.replace(with: .infinity, where: vlo .!= vlo)
            vhi.replace(with: -.infinity, where: vhi .!= vhi)
            var i = 8
            while i + 8 <= n {
                let x = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                vlo.replace(with: x, where: x .< vlo)
                vhi.replace(with: x, where: x .> vhi)
                i += 8
            }
            let lows = vlo.lowHalf.replacing(with: vlo.highHalf, where: vlo.highHalf .< vlo.lowHalf)
            let highs = vhi.lowHalf.replacing(with: vhi.highHalf, where: vhi.highHalf .> vhi.lowHalf)
            lo = Swift.min(Swift.min(lows[0], lows[1]), Swift.min(lows[2], lows[3]))
            hi = Swift.max(Swift.max(highs[0], highs[1]), Swift.max(highs[2], highs[3]))
            while i < n {
                let x = base[i]
                if x.isFinite {
                    lo = min(lo, x)
                    hi = max(hi, x)
                }
                i += 1
            }
            if lo != 0 && hi != 0 && lo.isFinite && hi.isFinite {
                if lo > hi { return (0, 0, 0) }
                return (lo, hi, -lo > hi ? lo : hi)
            }
            lo = .infinity
            hi = -.infinity
        }
        for i in 0..<n where base[i].isFinite {
            lo = min(lo, base[i])
            hi = max(hi, base[i])
        }
        if lo > hi { return (0, 0, 0) }
        return (lo, hi, -lo > hi ? lo : hi)
    }

    /// Encodes the `count` values at `x` with scale `s`, zero-point `z` and largest code `top`
    /// into `codes`, and measures the group's error.
    ///
    /// Per element, `q = clamp(x·(1/s) + z, 0, top)` rounded half to even (a NaN becomes code 0)
    /// and `e = (q − z)·s − x`. `Σx²` and `Σe²` run in eight binary32 lanes (lane `k` adds
    /// elements `k, k+8, …`), the lanes added in a fixed order and the remainder in binary64, so
    /// the figures do not depend on the thread count; a group whose binary32 sums overflow
    /// (values beyond about 10^19) is measured again in binary64, element by element.
    public static func encode(
        _ x: UnsafePointer<Float>, count n: Int, codes: UnsafeMutablePointer<UInt8>,
        scale s: Float, zero z: Float, top: Float
    ) -> Measure {
        let inverse: Float = s == 0 ? 0 : 1 / s
        let x0 = UnsafeRawPointer(x)
        let c0 = UnsafeMutableRawPointer(codes)
        let vInverse = SIMD8<Float>(repeating: inverse), vZero = SIMD8<Float>(repeating: z)
        let vScale = SIMD8<Float>(repeating: s), vTop = SIMD8<Float>(repeating: top)
        let vLow = SIMD8<Float>(), vMagic = SIMD8<Float>(repeating: 12_582_912)
        let vShift = SIMD8<Float>(repeating: 8_388_608)
        var vWorst = SIMD8<Float>(), vSignal = SIMD8<Float>(), vNoise = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let v = x0.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            var q = v * vInverse + vZero
            q.replace(with: vLow, where: .!(q .>= vLow))  // also maps NaN to 0
            q.replace(with: vTop, where: q .> vTop)
            q = (q + vMagic) - vMagic
            // q is a whole number in [0, 255]: q + 2²³ holds it in its low mantissa bits (a
            // generic SIMD Float → Int conversion is a slow element-by-element library path).
            let pattern = unsafeBitCast(q + vShift, to: SIMD8<UInt32>.self)
            c0.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: pattern), toByteOffset: i, as: SIMD8<UInt8>.self)
            let e = (q - vZero) * vScale - v
            vSignal += v * v
            vNoise += e * e
            let magnitude = e.replacing(with: -e, where: e .< 0)
            vWorst.replace(with: magnitude, where: magnitude .> vWorst)
            i += 8
        }
        // The lanes' maximum and sums, spelled out (`SIMD.max()`/`sum()` are generic,
        // unspecialized calls here).
        let half = vWorst.lowHalf.replacing(with: vWorst.highHalf, where: vWorst.highHalf .> vWorst.lowHalf)
        var worst = Swift.max(Swift.max(half[0], half[1]), Swift.max(half[2], half[3]))
        let signals = vSignal.lowHalf + vSignal.highHalf, noises = vNoise.lowHalf + vNoise.highHalf
        var signal = Double((signals[0] + signals[1]) + (signals[2] + signals[3]))
        var noise = Double((noises[0] + noises[1]) + (noises[2] + noises[3]))
        while i < n {
            let v = x[i]
            var q = v * inverse + z
            if !(q >= 0) { q = 0 }
            if q > top { q = top }
            q = (q + 12_582_912) - 12_582_912
            codes[i] = UInt8(q)
            let e = (q - z) * s - v
            signal += Double(v) * Double(v)
            noise += Double(e) * Double(e)
            worst = max(worst, abs(e))
            i += 1
        }
        if signal == .infinity || noise == .infinity {
            signal = 0
            noise = 0
            for k in 0..<n {
                let e = (Float(codes[k]) - z) * s - x[k]
                signal += Double(x[k]) * Double(x[k])
                noise += Double(e) * Double(e)
            }
        }
        return Measure(signal: signal, noise: noise, worst: worst)
    }
}
