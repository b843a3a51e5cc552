import QPKCore

/// The encode-and-measure step of ``TensorQuantizer`` for a row without outliers or column
/// weights (RTN, and every row PreQuant leaves whole), in SIMD.
///
/// Bit for bit what the scalar loop of ``RowJob`` computes: the same Float arithmetic per element
/// (`q = clamp(x·(1/s) + z)` rounded half to even, `e = (q − z)·s − x`), and each group's Double
/// sums `Σx²` and `Σe²` added in element order, starting from 0. Only the *groups* run side by
/// side: eight groups' sums are eight lanes of one vector, each lane still adding its own group's
/// terms one after the other, so the long chain of dependent Double additions, which bounded the
/// scalar loop, is cut eight ways without changing a rounding.
struct PlainGroupEncoding {
    /// Groups whose sums run side by side.
    static let lanes = 8

    let values: UnsafeBufferPointer<Float>
    let codes: UnsafeMutableBufferPointer<UInt8>
    let top: Float

    /// Encodes the group `start..<end` with scale `s` and zero `z` into `codes`, writes each
    /// element's error `e` to `errors` (from index 0), and returns the largest `|e|` (NaN skipped).
    @inline(__always)
    func encode(_ start: Int, _ end: Int, scale s: Float, zero z: Float, errors: UnsafeMutablePointer<Float>) -> Float {
        let inverse: Float = s == 0 ? 0 : 1 / s
        let x0 = UnsafeRawPointer(values.baseAddress! + start)
        let c0 = UnsafeMutableRawPointer(codes.baseAddress! + start)
        let e0 = UnsafeMutableRawPointer(errors)
        let n = end - start
        let vInverse = SIMD8<Float>(repeating: inverse), vZero = SIMD8<Float>(repeating: z)
        let vScale = SIMD8<Float>(repeating: s), vTop = SIMD8<Float>(repeating: top)
        let vLow = SIMD8<Float>(), vMagic = SIMD8<Float>(repeating: 12_582_912)
        let vShift = SIMD8<Float>(repeating: 8_388_608)
        var vWorst = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let x = x0.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            var q = x * vInverse + vZero
            q.replace(with: vLow, where: .!(q .>= vLow))  // also maps NaN to 0
            q.replace(with: vTop, where: q .> vTop)
            q = (q + vMagic) - vMagic
            // q is a whole number in [0, 255]: q + 2²³ holds it in its low mantissa bits (a
            // generic SIMD Float → Int conversion is a slow element-by-element library path).
            let pattern = unsafeBitCast(q + vShift, to: SIMD8<UInt32>.self)
            c0.storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: pattern), toByteOffset: i, as: SIMD8<UInt8>.self)
            let e = (q - vZero) * vScale - x
            e0.storeBytes(of: e, toByteOffset: i &* 4, as: SIMD8<Float>.self)
            let magnitude = e.replacing(with: -e, where: e .< 0)
            vWorst.replace(with: magnitude, where: magnitude .> vWorst)
            i += 8
        }
        // The lanes' maximum, spelled out (`SIMD.max()` is a generic, unspecialized call here).
        let half = vWorst.lowHalf.replacing(with: vWorst.highHalf, where: vWorst.highHalf .> vWorst.lowHalf)
        var worst = Swift.max(Swift.max(half[0], half[1]), Swift.max(half[2], half[3]))
        while i < n {
            let x = values[start + i]
            var q = x * inverse + z
            if !(q >= 0) { q = 0 }
            if q > top { q = top }
            q = (q + 12_582_912) - 12_582_912
            codes[start + i] = UInt8(q)
            let e = (q - z) * s - x
            errors[i] = e
            worst = max(worst, abs(e))
            i += 1
        }
        return worst
    }

    /// `(Σx², Σe²)` of one group, each in element order from 0 (the scalar loop's sums).
    @inline(__always)
    func sums(_ start: Int, _ count: Int, errors: UnsafePointer<Float>) -> (Double, Double) {
        var signal = 0.0, noise = 0.0
        for i in 0..<count {
            let x = Double(values[start + i]), e = Double(errors[i])
            signal += x * x
            noise += e * e
        }
        return (signal, noise)
    }

    /// The sums of `lanes` groups of `count` elements each, starting at `starts`, side by side;
    /// `errors` holds group `t`'s errors at `t·count`.
    @inline(__always)
    func laneSums(_ starts: SIMD8<Int>, _ count: Int, errors: UnsafePointer<Float>) -> (SIMD8<Double>, SIMD8<Double>) {
        var signal = SIMD8<Double>(), noise = SIMD8<Double>()
        let x = values.baseAddress!
        for i in 0..<count {
            let xs = SIMD8<Float>(
                x[starts[0] &+ i], x[starts[1] &+ i], x[starts[2] &+ i], x[starts[3] &+ i],
                x[starts[4] &+ i], x[starts[5] &+ i], x[starts[6] &+ i], x[starts[7] &+ i])
            let es = SIMD8<Float>(
                errors[i], errors[count &+ i], errors[2 &* count &+ i], errors[3 &* count &+ i],
                errors[4 &* count &+ i], errors[5 &* count &+ i], errors[6 &* count &+ i], errors[7 &* count &+ i])
            let dx = SIMD8<Double>(xs), de = SIMD8<Double>(es)
            signal += dx * dx
            noise += de * de
        }
        return (signal, noise)
    }
}
