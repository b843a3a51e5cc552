import QPKCore

/// Signal and error energies of a tensor against its reconstruction, in Double, for the SQNR of a
/// conversion summary: `Σx²`, `Σ(x − x̂)²` and `max |x − x̂|`.
///
/// Each Float square or difference is exact in Double; the sums run in four independent lanes of
/// eight elements (SIMD), so a pass costs about as much as reading the values, not the latency of
/// one long chain of Double additions. The lane order is fixed, so results are reproducible.
public enum ErrorEnergy {
    /// `Σ x²` of `values`.
    public static func signal(_ values: UnsafeBufferPointer<Float>) -> Double {
        guard let base = values.baseAddress else { return 0 }
        let raw = UnsafeRawPointer(base)
        let n = values.count
        var a = SIMD8<Double>(), b = SIMD8<Double>()
        var i = 0
        while i + 16 <= n {
            let x = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self))
            let y = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: (i &+ 8) &* 4, as: SIMD8<Float>.self))
            a += x * x
            b += y * y
            i += 16
        }
        var sum = (a + b).sum()
        while i < n {
            let x = Double(base[i])
            sum += x * x
            i += 1
        }
        return sum
    }

    /// `(Σx², Σ(x − x̂)², max |x − x̂|)` over the first `min(original.count, reconstruction.count)`
    /// elements; a NaN error is left out of the maximum, as `Swift.max(m, e)` leaves it out.
    public static func compare(
        _ original: UnsafeBufferPointer<Float>, _ reconstruction: UnsafeBufferPointer<Float>
    ) -> (signal: Double, noise: Double, maxAbsError: Double) {
        let n = min(original.count, reconstruction.count)
        guard n > 0, let x0 = original.baseAddress, let y0 = reconstruction.baseAddress else { return (0, 0, 0) }
        let rx = UnsafeRawPointer(x0), ry = UnsafeRawPointer(y0)
        var s = SIMD8<Double>(), e = SIMD8<Double>(), worst = SIMD8<Double>()
        var i = 0
        while i + 8 <= n {
            let x = SIMD8<Double>(rx.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self))
            let y = SIMD8<Double>(ry.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self))
            let d = x - y
            s += x * x
            e += d * d
            let magnitude = d.replacing(with: -d, where: d .< 0)
            worst.replace(with: magnitude, where: magnitude .> worst)
            i += 8
        }
        var signal = s.sum(), noise = e.sum(), maxError = worst.max()
        while i < n {
            let x = Double(x0[i]), d = x - Double(y0[i])
            signal += x * x
            noise += d * d
            if abs(d) > maxError { maxError = abs(d) }
            i += 1
        }
        return (signal, noise, maxError)
    }
}
