import QPKCore

/// Squared errors of many candidate (scale, zero) pairs, several per pass over a group.
///
/// A grid search judges dozens of candidates on the same group. One candidate's error is a serial
/// sum `Σ w·e·e` in element order (``WeightedGroupFit/squaredError(_:weights:parameters:bits:)``),
/// so evaluating candidates one at a time waits on the latency of every addition. Here vector lane
/// `k` holds candidate `k`: each element is broadcast and every lane adds its own term in the same
/// element order, with the same operations, so each lane's sum is bit-identical to the one-at-a-time
/// sum while eight of them advance together.
///
/// Rounding: the quantizer rounds `x·(1/s) + z` half-to-even and then clamps to `[0, 2^b − 1]`;
/// since the bounds are integers, clamping first and rounding with the `1.5·2^23` trick (exact
/// for values in `[0, 2^22)`) gives the same code, up to the sign of a zero code, which the
/// squared error does not see. A NaN input gives a NaN term either way.
enum CandidateErrors {
    typealias Lanes = SIMD8<Float>
    /// Four candidates per pass for the plain error: its eight partial sums per lane must stay in
    /// the sixteen SSE registers.
    typealias Narrow = SIMD4<Float>

    /// `errors[k] = WeightedGroupFit.squaredError(values, weights, (scales[k], zeros[k]), bits)` for
    /// `k < count`. `scales`/`zeros` are the candidates' fp16 values widened to Float.
    static func weighted(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>,
        scales: UnsafeMutableBufferPointer<Float>, zeros: UnsafeMutableBufferPointer<Float>, count: Int,
        bits: Int, into errors: UnsafeMutableBufferPointer<Float>
    ) {
        var start = 0
        while start < count {
            let lanes = min(8, count - start)
            var s = Lanes(repeating: 1), z = Lanes(repeating: 0)
            var zeroScale = false
            for k in 0..<lanes {
                s[k] = scales[start + k]
                z[k] = zeros[start + k]
                if s[k] == 0 { zeroScale = true }
            }
            if zeroScale {
                // A zero scale reconstructs everything as 0; the scalar path handles it.
                for k in 0..<lanes where s[k] == 0 { s[k] = 1 }
            }
            let sums = weighted(values, weights: weights, scales: s, zeros: z, bits: bits)
            for k in 0..<lanes {
                if scales[start + k] == 0 {
                    errors[start + k] = WeightedGroupFit.squaredError(
                        values, weights: weights,
                        parameters: GroupParameters(scale: 0, zero: Float16(zeros[start + k])), bits: bits)
                } else {
                    errors[start + k] = sums[k]
                }
            }
            start += lanes
        }
    }

    /// One pass: lane `k` is the weighted error of (`scales[k]`, `zeros[k]`); no scale may be 0.
    @inline(__always)
    static func weighted(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, scales: Lanes, zeros: Lanes,
        bits: Int
    ) -> Lanes {
        let n = min(values.count, weights.count)
        guard n > 0, let xs = values.baseAddress, let ws = weights.baseAddress else { return Lanes(repeating: 0) }
        let inverse = Lanes(repeating: 1) / scales
        let low = Lanes(repeating: 0)
        let top = Lanes(repeating: Float((1 << bits) - 1))
        let magic = Lanes(repeating: 12_582_912)
        var sum = Lanes(repeating: 0)
        for i in 0..<n {
            let x = Lanes(repeating: xs[i])
            let w = Lanes(repeating: ws[i])
            var q = x * inverse + zeros
            q.replace(with: low, where: q .< low)
            q.replace(with: top, where: q .> top)
            q = (q + magic) - magic
            let e = (q - zeros) * scales - x
            sum += w * e * e
        }
        return sum
    }

    /// `errors[k] = GroupFit.squaredError(values, (scales[k], zeros[k]), bits)` for `k < count`.
    ///
    /// `GroupFit.squaredError` sums in a fixed vector order: element `i` of each full block of
    /// eight goes to partial sum `i mod 8`; then partial `L` and `L + 4` are added, those four are
    /// added in order, and the remaining elements follow one by one. Here each candidate lane keeps
    /// the same eight partial sums and combines them the same way.
    static func plain(
        _ values: UnsafeBufferPointer<Float>, scales: UnsafeMutableBufferPointer<Float>,
        zeros: UnsafeMutableBufferPointer<Float>, count: Int, bits: Int,
        into errors: UnsafeMutableBufferPointer<Float>
    ) {
        var start = 0
        while start < count {
            let lanes = min(4, count - start)
            var s = Narrow(repeating: 1), z = Narrow(repeating: 0)
            for k in 0..<lanes where scales[start + k] != 0 {
                s[k] = scales[start + k]
                z[k] = zeros[start + k]
            }
            let sums = plain(values, scales: s, zeros: z, bits: bits)
            for k in 0..<lanes {
                errors[start + k] = scales[start + k] == 0
                    ? GroupFit.squaredError(values, scale: 0, zero: zeros[start + k], bits: bits)
                    : sums[k]
            }
            start += lanes
        }
    }

    /// One pass of ``plain(_:scales:zeros:count:bits:into:)``; no scale may be 0.
    @inline(__always)
    static func plain(_ values: UnsafeBufferPointer<Float>, scales: Narrow, zeros: Narrow, bits: Int) -> Narrow {
        let n = values.count
        guard n > 0, let xs = values.baseAddress else { return Narrow(repeating: 0) }
        let inverse = Narrow(repeating: 1) / scales
        let low = Narrow(repeating: 0)
        let top = Narrow(repeating: Float((1 << bits) - 1))
        let magic = Narrow(repeating: 12_582_912)
        @inline(__always) func term(_ value: Float) -> Narrow {
            let x = Narrow(repeating: value)
            var q = x * inverse + zeros
            q.replace(with: low, where: q .< low)
            q.replace(with: top, where: q .> top)
            q = (q + magic) - magic
            let d = (q - zeros) * scales - x
            return d * d
        }
        var p0 = low, p1 = low, p2 = low, p3 = low, p4 = low, p5 = low, p6 = low, p7 = low
        var i = 0
        while i + 8 <= n {
            p0 += term(xs[i])
            p1 += term(xs[i + 1])
            p2 += term(xs[i + 2])
            p3 += term(xs[i + 3])
            p4 += term(xs[i + 4])
            p5 += term(xs[i + 5])
            p6 += term(xs[i + 6])
            p7 += term(xs[i + 7])
            i += 8
        }
        // Lane sums of the four-wide partials, then `SIMD.sum()`'s in-order reduction from −0.
        var sum = -Narrow(repeating: 0)
        sum += p0 + p4
        sum += p1 + p5
        sum += p2 + p6
        sum += p3 + p7
        while i < n {
            sum += term(xs[i])
            i += 1
        }
        return sum
    }
}
