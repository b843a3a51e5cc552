// Compiled twice, like GroupKernel.swift (Sources/KernelsAVX2/CodebookKernel.swift links to this file).

/// The inner loops of the codebook scale search (spec/quantization.md §14): a group's weighted
/// error and least-squares projection for one candidate scale, over an ascending table given by
/// its first level and the thresholds (midpoints) and steps between neighbouring levels.
///
/// A group is `vectors` SIMD8 vectors of values and weights, padded with zero weights.
public enum CodebookKernel {
    /// The table level nearest to each lane of `t` (ties to the lower level), by summing the steps
    /// whose threshold the value passes. Branch- and mask-free: `t > m` is the sign bit of `m − t`,
    /// spread by an arithmetic shift into a lane mask that selects the step (Swift's `SIMDMask`
    /// comparisons compile lane by lane here, ten times slower).
    @inlinable @inline(__always)
    public static func reconstruct(
        _ t: SIMD8<Float>, first: Float, midpoints: UnsafePointer<Float>, steps: UnsafePointer<Float>, thresholds: Int
    ) -> SIMD8<Float> {
        var y = SIMD8<Float>(repeating: first)
        for k in 0..<thresholds {
            let passed = unsafeBitCast(SIMD8<Float>(repeating: midpoints[k]) - t, to: SIMD8<Int32>.self) &>> 31
            let step = unsafeBitCast(SIMD8<Float>(repeating: steps[k]), to: SIMD8<Int32>.self) & passed
            y += unsafeBitCast(step, to: SIMD8<Float>.self)
        }
        return y
    }

    /// ``reconstruct(_:first:midpoints:steps:thresholds:)`` of four vectors side by side: four
    /// independent chains of additions instead of one, each the same additions in the same order.
    @inline(__always)
    static func reconstruct4(
        _ t: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>), first: Float,
        midpoints: UnsafePointer<Float>, steps: UnsafePointer<Float>, thresholds: Int
    ) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        var y0 = SIMD8<Float>(repeating: first), y1 = y0, y2 = y0, y3 = y0
        for k in 0..<thresholds {
            let m = SIMD8<Float>(repeating: midpoints[k])
            let d = unsafeBitCast(SIMD8<Float>(repeating: steps[k]), to: SIMD8<Int32>.self)
            y0 += unsafeBitCast(d & (unsafeBitCast(m - t.0, to: SIMD8<Int32>.self) &>> 31), to: SIMD8<Float>.self)
            y1 += unsafeBitCast(d & (unsafeBitCast(m - t.1, to: SIMD8<Int32>.self) &>> 31), to: SIMD8<Float>.self)
            y2 += unsafeBitCast(d & (unsafeBitCast(m - t.2, to: SIMD8<Int32>.self) &>> 31), to: SIMD8<Float>.self)
            y3 += unsafeBitCast(d & (unsafeBitCast(m - t.3, to: SIMD8<Int32>.self) &>> 31), to: SIMD8<Float>.self)
        }
        return (y0, y1, y2, y3)
    }

    /// The table values of the vectors `v..<v+4` of `values` divided by `s` (vectors past
    /// `vectors` read as zero), with those vectors.
    @inline(__always)
    static func block(
        _ values: UnsafePointer<SIMD8<Float>>, _ v: Int, vectors: Int, s: SIMD8<Float>, first: Float,
        midpoints: UnsafePointer<Float>, steps: UnsafePointer<Float>, thresholds: Int
    ) -> (x: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>), t: (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)) {
        let x0 = values[v]
        let x1 = v + 1 < vectors ? values[v + 1] : SIMD8<Float>()
        let x2 = v + 2 < vectors ? values[v + 2] : SIMD8<Float>()
        let x3 = v + 3 < vectors ? values[v + 3] : SIMD8<Float>()
        let t = reconstruct4((x0 / s, x1 / s, x2 / s, x3 / s), first: first, midpoints: midpoints, steps: steps,
                             thresholds: thresholds)
        return ((x0, x1, x2, x3), t)
    }

    /// `Σ w·(s·t[q(x/s)] − x)²` in eight lanes, vector after vector, the lanes then added in order.
    /// The table lookups of four vectors run side by side (``reconstruct4``); the sums do not.
    public static func weightedError(
        values: UnsafePointer<SIMD8<Float>>, weights: UnsafePointer<SIMD8<Float>>, vectors: Int, scale: Float,
        first: Float, midpoints: UnsafePointer<Float>, steps: UnsafePointer<Float>, thresholds: Int
    ) -> Float {
        var sum = SIMD8<Float>()
        let s = SIMD8<Float>(repeating: scale)
        var v = 0
        while v < vectors {
            let (x, t) = block(values, v, vectors: vectors, s: s, first: first, midpoints: midpoints, steps: steps,
                               thresholds: thresholds)
            let e0 = t.0 * s - x.0
            sum += weights[v] * e0 * e0
            if v + 1 < vectors { let e = t.1 * s - x.1; sum += weights[v + 1] * e * e }
            if v + 2 < vectors { let e = t.2 * s - x.2; sum += weights[v + 2] * e * e }
            if v + 3 < vectors { let e = t.3 * s - x.3; sum += weights[v + 3] * e * e }
            v += 4
        }
        return laneSum(sum)
    }

    /// `(Σ w·t[q]·x, Σ w·t[q]²)` with the codes of `scale`: the least-squares scale is their ratio.
    public static func projection(
        values: UnsafePointer<SIMD8<Float>>, weights: UnsafePointer<SIMD8<Float>>, vectors: Int, scale: Float,
        first: Float, midpoints: UnsafePointer<Float>, steps: UnsafePointer<Float>, thresholds: Int
    ) -> (Float, Float) {
        var cx = SIMD8<Float>(), cc = SIMD8<Float>()
        let s = SIMD8<Float>(repeating: scale)
        var v = 0
        while v < vectors {
            let (x, t) = block(values, v, vectors: vectors, s: s, first: first, midpoints: midpoints, steps: steps,
                               thresholds: thresholds)
            cx += weights[v] * t.0 * x.0
            cc += weights[v] * t.0 * t.0
            if v + 1 < vectors { cx += weights[v + 1] * t.1 * x.1; cc += weights[v + 1] * t.1 * t.1 }
            if v + 2 < vectors { cx += weights[v + 2] * t.2 * x.2; cc += weights[v + 2] * t.2 * t.2 }
            if v + 3 < vectors { cx += weights[v + 3] * t.3 * x.3; cc += weights[v + 3] * t.3 * t.3 }
            v += 4
        }
        return (laneSum(cx), laneSum(cc))
    }

    /// The lanes added first to last, as SIMD's `sum()` adds them (a generic call here).
    @inline(__always)
    static func laneSum(_ v: SIMD8<Float>) -> Float {
        var total = v[0]
        for lane in 1..<8 { total += v[lane] }
        return total
    }
}
