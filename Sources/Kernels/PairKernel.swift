// Compiled twice, like GroupKernel.swift (Sources/KernelsAVX2/PairKernel.swift links to this file).

/// The sums `qpk diff` takes over pairs of values (one chunk of two tensors), in SIMD.
///
/// Products and differences of two Floats are exact in Double, so the sums carry only the
/// accumulation error of Double. The sums run in four lanes, pair `i` in lane `i mod 4` (four pairs
/// per step, in SIMD when all eight values are finite), and the lanes are added at the end of the
/// chunk; callers use fixed-size chunks, so the result does not depend on the thread count. The
/// worst pair is the first of largest `|a − b|` in element order, as a one-by-one scan finds it.
public struct PairKernel {
    public var finitePairs = 0
    public var sumA2 = 0.0
    public var sumB2 = 0.0
    public var sumAB = 0.0
    public var sumD2 = 0.0
    public var sumAbs = 0.0
    public var maxAbs = 0.0
    public var allEqual = true
    public var outOfTolerance = 0
    public var nonFiniteMismatches = 0
    /// The flat index and values of the worst pair (a non-finite mismatch beats any finite one).
    public var worst: (index: Int, a: Float, b: Float, score: Double)?

    public init() {}

    /// The sums of the `count` pairs `(a[i], b[i])`, element `i` being flat index `offset + i`,
    /// under numpy's `isclose` rule: a finite pair is out of tolerance when
    /// `|a − b| > absolute + relative·|b|`; infinities match only an infinity of the same sign;
    /// NaN matches nothing, or NaN when `equalNaN`.
    public static func sums(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int, offset: Int,
        absolute: Double, relative: Double, equalNaN: Bool
    ) -> PairKernel {
        typealias V = SIMD4<Double>
        var result = PairKernel()
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var a2 = V(), b2 = V(), ab = V(), d2 = V(), sumAbsolute = V()
        var outside = V()  // counts, exact in Double
        var finite = 0
        let big = SIMD4<Float>(repeating: .greatestFiniteMagnitude)
        let vAbsolute = V(repeating: absolute), vRelative = V(repeating: relative)
        var i = 0
        while i + 4 <= n {
            let x = ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD4<Float>.self)
            let y = rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD4<Float>.self)
            let bounded = (x .>= -big) .& (x .<= big) .& (y .>= -big) .& (y .<= big)
            if all(bounded) {
                let dx = V(x), dy = V(y)
                let d = dx - dy
                let ad = d.replacing(with: -d, where: d .< 0)
                a2 += dx * dx
                b2 += dy * dy
                ab += dx * dy
                d2 += d * d
                sumAbsolute += ad
                finite += 4
                let nonzero = ad .> 0
                if any(nonzero) {
                    result.allEqual = false
                    let magnitude = dy.replacing(with: -dy, where: dy .< 0)
                    outside += V().replacing(with: 1, where: nonzero .& (ad .> vAbsolute + vRelative * magnitude))
                    // (SIMD's `max()` is a generic call here; the lanes are finite.)
                    let largest = Swift.max(Swift.max(ad[0], ad[1]), Swift.max(ad[2], ad[3]))
                    if largest > result.maxAbs || largest > (result.worst?.score ?? 0) {
                        for lane in 0..<4 where ad[lane] > 0 {
                            if ad[lane] > result.maxAbs { result.maxAbs = ad[lane] }
                            if ad[lane] > (result.worst?.score ?? 0) {
                                result.worst = (offset + i + lane, x[lane], y[lane], ad[lane])
                            }
                        }
                    }
                }
            } else {
                for lane in 0..<4 {
                    result.single(
                        a[i + lane], b[i + lane], index: offset + i + lane, lane: lane, absolute: absolute,
                        relative: relative, equalNaN: equalNaN, finite: &finite, a2: &a2, b2: &b2, ab: &ab, d2: &d2,
                        sumAbsolute: &sumAbsolute)
                }
            }
            i += 4
        }
        while i < n {
            result.single(
                a[i], b[i], index: offset + i, lane: i & 3, absolute: absolute, relative: relative,
                equalNaN: equalNaN, finite: &finite, a2: &a2, b2: &b2, ab: &ab, d2: &d2, sumAbsolute: &sumAbsolute)
            i += 1
        }
        result.outOfTolerance += Int(outside[0] + outside[1] + outside[2] + outside[3])
        result.finitePairs = finite
        // The lanes in order, as SIMD's `sum()` adds them (a generic call here).
        result.sumA2 = ((a2[0] + a2[1]) + a2[2]) + a2[3]
        result.sumB2 = ((b2[0] + b2[1]) + b2[2]) + b2[3]
        result.sumAB = ((ab[0] + ab[1]) + ab[2]) + ab[3]
        result.sumD2 = ((d2[0] + d2[1]) + d2[2]) + d2[3]
        result.sumAbs = ((sumAbsolute[0] + sumAbsolute[1]) + sumAbsolute[2]) + sumAbsolute[3]
        return result
    }

    /// One pair, its sums in `lane`: the general rule, for blocks holding NaN or ±Inf and the tail.
    @inline(__always)
    private mutating func single(
        _ x: Float, _ y: Float, index: Int, lane: Int, absolute: Double, relative: Double, equalNaN: Bool,
        finite: inout Int, a2: inout SIMD4<Double>, b2: inout SIMD4<Double>, ab: inout SIMD4<Double>,
        d2: inout SIMD4<Double>, sumAbsolute: inout SIMD4<Double>
    ) {
        if x.isFinite && y.isFinite {
            let dx = Double(x), dy = Double(y)
            let d = dx - dy
            let ad = abs(d)
            finite += 1
            a2[lane] += dx * dx
            b2[lane] += dy * dy
            ab[lane] += dx * dy
            d2[lane] += d * d
            sumAbsolute[lane] += ad
            if ad > 0 {
                allEqual = false
                if ad > absolute + relative * abs(dy) { outOfTolerance += 1 }
                if ad > maxAbs { maxAbs = ad }
                if ad > (worst?.score ?? 0) { worst = (index, x, y, ad) }
            }
            return
        }
        let bothNaN = x.isNaN && y.isNaN
        if bothNaN && equalNaN { return }
        if !bothNaN && x == y { return }  // infinities of the same sign
        if !bothNaN { allEqual = false }
        outOfTolerance += 1
        nonFiniteMismatches += 1
        if worst?.score != .infinity { worst = (index, x, y, .infinity) }
    }

    /// Adds another chunk's sums (the chunk after this one).
    public mutating func merge(_ o: PairKernel) {
        finitePairs += o.finitePairs
        sumA2 += o.sumA2
        sumB2 += o.sumB2
        sumAB += o.sumAB
        sumD2 += o.sumD2
        sumAbs += o.sumAbs
        maxAbs = max(maxAbs, o.maxAbs)
        allEqual = allEqual && o.allEqual
        outOfTolerance += o.outOfTolerance
        nonFiniteMismatches += o.nonFiniteMismatches
        if let w = o.worst, w.score > (worst?.score ?? 0) { worst = w }
    }
}
