import QPKCore
import Formats
import Quantize

/// Count, mean and central moment sums (M2 = Σ(x−μ)², M3, M4) of a set of finite values, plus
/// the extremes and the special-value counts, mergeable across chunks.
///
/// Numerics: each block of at most ``blockSize`` values is summed around a shift close to its own
/// mean (shifted-data two-pass in Double, so nothing like Σx² − n·μ² ever cancels). Blocks and chunks are then combined with the exact pairwise
/// update of Chan, Golub & LeVeque (1979) for M2, extended to M3 and M4 by Pébay (2008, Sandia
/// report SAND2008-6212, eq. 3.1). The result does not depend on the order of chunks.
struct MomentAccumulator: Sendable {
    static let blockSize = 4096

    var count = 0
    var mean = 0.0
    var m2 = 0.0
    var m3 = 0.0
    var m4 = 0.0
    var minimum = Float.infinity
    var maximum = -Float.infinity
    var nanCount = 0
    var positiveInfinityCount = 0
    var negativeInfinityCount = 0
    var zeroCount = 0
    var subnormalCount = 0

    /// Adds `values`; `subnormalBelow` is the smallest normal magnitude of the source dtype.
    mutating func add(_ values: UnsafeBufferPointer<Float>, subnormalBelow: Float) {
        var start = 0
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: Self.blockSize)
        defer { scratch.deallocate() }
        while start < values.count {
            let end = min(start + Self.blockSize, values.count)
            let block = UnsafeBufferPointer(rebasing: values[start..<end])
            if !addFiniteBlock(block, subnormalBelow: subnormalBelow) {
                // The block holds NaN or ±Inf: count them, then process the finite values alone.
                var kept = 0
                for x in block {
                    if x.isFinite {
                        scratch[kept] = x
                        kept += 1
                    } else if x.isNaN {
                        nanCount += 1
                    } else if x > 0 {
                        positiveInfinityCount += 1
                    } else {
                        negativeInfinityCount += 1
                    }
                }
                _ = addFiniteBlock(UnsafeBufferPointer(rebasing: scratch[0..<kept]), subnormalBelow: subnormalBelow)
            }
            start = end
        }
    }

    /// Adds one block if every value is finite; returns `false` (adding nothing) otherwise.
    private mutating func addFiniteBlock(_ block: UnsafeBufferPointer<Float>, subnormalBelow: Float) -> Bool {
        let n = block.count
        guard n > 0, let base = block.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        let vectors = n / 8
        // Pass 1: extremes, rough sum, zero/subnormal counts, and a finiteness check.
        var vmin = SIMD8<Float>(repeating: .infinity)
        var vmax = SIMD8<Float>(repeating: -.infinity)
        var vsum = SIMD8<Float>()
        var vzero = SIMD8<Int32>()
        var vtiny = SIMD8<Int32>()
        var bad = SIMDMask<SIMD8<Int32>>(repeating: false)
        let greatest = SIMD8<Float>(repeating: .greatestFiniteMagnitude)
        let tiny = SIMD8<Float>(repeating: subnormalBelow)
        let one = SIMD8<Int32>(repeating: 1)
        for i in 0..<vectors {
            let v = raw.loadUnaligned(fromByteOffset: i &* 32, as: SIMD8<Float>.self)
            let magnitude = v.replacing(with: -v, where: v .< 0)
            bad .|= .!(magnitude .<= greatest)
            vmin.replace(with: v, where: v .< vmin)
            vmax.replace(with: v, where: v .> vmax)
            vsum += v
            vzero &+= SIMD8<Int32>().replacing(with: one, where: v .== 0)
            vtiny &+= SIMD8<Int32>().replacing(with: one, where: magnitude .< tiny)
        }
        if any(bad) { return false }
        var lo = vmin.min(), hi = vmax.max(), sum = Double(vsum.sum())
        var zeros = Int(vzero.wrappedSum()), tinies = Int(vtiny.wrappedSum())
        for i in (vectors * 8)..<n {
            let x = base[i]
            guard x.isFinite else { return false }
            lo = min(lo, x)
            hi = max(hi, x)
            sum += Double(x)
            if x == 0 { zeros += 1 }
            if abs(x) < subnormalBelow { tinies += 1 }
        }
        // Pass 2: power sums of d = x − shift, in Double (x − shift is exact in Double).
        // The Float rough sum may overflow for huge values; the midrange is a finite fallback.
        let rough = sum / Double(n)
        let shift = rough.isFinite ? rough : Double(lo) / 2 + Double(hi) / 2
        let vshift = SIMD8<Double>(repeating: shift)
        var d1 = SIMD8<Double>(), d2 = SIMD8<Double>(), d3 = SIMD8<Double>(), d4 = SIMD8<Double>()
        for i in 0..<vectors {
            let d = SIMD8<Double>(raw.loadUnaligned(fromByteOffset: i &* 32, as: SIMD8<Float>.self)) - vshift
            let dd = d * d
            d1 += d
            d2 += dd
            d3 += dd * d
            d4 += dd * dd
        }
        var s1 = d1.sum(), s2 = d2.sum(), s3 = d3.sum(), s4 = d4.sum()
        for j in (vectors * 8)..<n {
            let d = Double(base[j]) - shift
            let dd = d * d
            s1 += d
            s2 += dd
            s3 += dd * d
            s4 += dd * dd
        }
        // Central moments of the block from the shifted sums (δ = block mean − shift is tiny).
        let count = Double(n)
        let delta = s1 / count
        var block = MomentAccumulator()
        block.count = n
        block.mean = shift + delta
        block.m2 = max(0, s2 - count * delta * delta)
        block.m3 = s3 - 3 * delta * s2 + 2 * count * delta * delta * delta
        block.m4 = max(0, s4 - 4 * delta * s3 + 6 * delta * delta * s2 - 3 * count * delta * delta * delta * delta)
        block.minimum = lo
        block.maximum = hi
        block.zeroCount = zeros
        block.subnormalCount = subnormalBelow > 0 ? tinies - zeros : 0
        merge(block)
        return true
    }

    /// Combines `other` into `self` (Chan et al. / Pébay pairwise update).
    mutating func merge(_ other: MomentAccumulator) {
        nanCount += other.nanCount
        positiveInfinityCount += other.positiveInfinityCount
        negativeInfinityCount += other.negativeInfinityCount
        zeroCount += other.zeroCount
        subnormalCount += other.subnormalCount
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        guard other.count > 0 else { return }
        guard count > 0 else {
            (count, mean, m2, m3, m4) = (other.count, other.mean, other.m2, other.m3, other.m4)
            return
        }
        let na = Double(count), nb = Double(other.count), n = na + nb
        let delta = other.mean - mean
        let d2 = delta * delta
        let newM4 = m4 + other.m4
            + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6 * d2 * (na * na * other.m2 + nb * nb * m2) / (n * n)
            + 4 * delta * (na * other.m3 - nb * m3) / n
        let newM3 = m3 + other.m3
            + d2 * delta * na * nb * (na - nb) / (n * n)
            + 3 * delta * (na * other.m2 - nb * m2) / n
        let newM2 = m2 + other.m2 + d2 * na * nb / n
        mean += delta * nb / n
        (m2, m3, m4) = (newM2, newM3, newM4)
        count += other.count
    }
}
