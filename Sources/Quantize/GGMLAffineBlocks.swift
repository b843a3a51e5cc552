import QPKCore

/// Q4_1: 32 values, `x̂ = d·q + m` with fp16 d and m, q ∈ 0…15 (spec/gguf.md §5).
///
/// The search clips the block's range `[lo, hi]` to `[lo + a·R, hi − b·R]` (R = hi − lo) for
/// `a, b ∈ {0, 1/32, …, 6/32}`, as qpk's affine MSE search does (spec/quantization.md §3), sets
/// `d = range/15, m = clipped lo`, then refits `(d, m)` by least squares for the codes of the
/// best candidate, twice. `a = b = 0` is ggml's rule (`d = (max − min)/15`, `m = min`).
enum GGMLAffineBlocks {
    typealias A = GGMLArithmetic

    static func q4_1(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var lo = x[0], hi = x[0]
        for i in 1..<32 {
            lo = min(lo, x[i])
            hi = max(hi, x[i])
        }
        let (d, m) = bestAffine(x, 32, lo: lo, hi: hi, maxCode: 15)
        A.storeHalf(d, out, 0)
        A.storeHalf(m, out, 2)
        let inverse: Float = d == 0 ? 0 : 1 / d
        GGMLSymmetricBlocks.packNibbles(out + 4) { Int(A.nearest((x[$0] - m) * inverse, 0, 15)) }
    }

    /// The squared error of `x̂ = d·q + m`, q the nearest code in `[0, maxCode]`, and the sums a
    /// least-squares refit needs.
    @inline(__always) static func affineError(
        _ x: UnsafePointer<Float>, _ n: Int, d: Float, m: Float, maxCode: Float
    ) -> (error: Float, sq: Float, sqq: Float, sxq: Float) {
        let inverse: Float = d == 0 ? 0 : 1 / d
        var e: Float = 0, sq: Float = 0, sqq: Float = 0, sxq: Float = 0
        for i in 0..<n {
            let q = A.nearest((x[i] - m) * inverse, 0, maxCode)
            let r = x[i] - (d * q + m)
            e += r * r
            sq += q
            sqq += q * q
            sxq += x[i] * q
        }
        return (e, sq, sqq, sxq)
    }

    static func bestAffine(_ x: UnsafePointer<Float>, _ n: Int, lo: Float, hi: Float, maxCode: Float) -> (d: Float, m: Float) {
        var best = (d: A.half((hi - lo) / maxCode), m: A.half(lo))
        guard hi > lo, (hi - lo).isFinite else { return best }
        var bestFit = affineError(x, n, d: best.d, m: best.m, maxCode: maxCode)
        @inline(__always) func consider(_ d: Float, _ m: Float) {
            let candidate = (d: A.half(d), m: A.half(m))
            let fit = affineError(x, n, d: candidate.d, m: candidate.m, maxCode: maxCode)
            if fit.error < bestFit.error {
                best = candidate
                bestFit = fit
            }
        }
        let range = hi - lo
        for a in 0...6 {
            for b in 0...6 where a + b > 0 {
                let l = lo + Float(a) / 32 * range, h = hi - Float(b) / 32 * range
                consider((h - l) / maxCode, l)
            }
        }
        var sx: Float = 0
        for i in 0..<n { sx += x[i] }
        for _ in 0..<2 {
            let count = Float(n)
            let det = count * bestFit.sqq - bestFit.sq * bestFit.sq
            guard det > 0 else { break }
            let d = (count * bestFit.sxq - bestFit.sq * sx) / det
            consider(d, (sx - d * bestFit.sq) / count)
        }
        return best
    }
}
