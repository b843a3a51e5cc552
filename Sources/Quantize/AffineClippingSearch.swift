import QPKCore

/// The clipping grid of the affine MSE search (spec/quantization.md §3), shared by ``GroupFit``
/// (plain error) and ``WeightedGroupFit`` (importance-weighted error).
///
/// Candidates are the clipped ranges `[lo + a·R, hi − b·R]` (R = hi − lo): min-max, a symmetric
/// sweep `a = b ∈ {1/80, …, 1/4}`, then `b` alone and `a` alone over `{0, 1/40, …, 1/4}` around the
/// best point, then one step of ±1/80 on each end. A candidate replaces the best only if its error
/// is strictly smaller.
///
/// Within a sweep the candidates do not depend on which of them wins, so each sweep is evaluated
/// in one call of `evaluate` (which judges up to eight candidates per pass over the group, see
/// ``CandidateErrors``) and then visited in order; for the ±1/80 steps, both possible second steps
/// are evaluated up front. The outcome is the same as judging the candidates one by one.
enum AffineClippingSearch {
    /// Fills `errors[k]` with the error of candidate `k < count`, given as fp16 values widened to
    /// Float in `scales[k]`, `zeros[k]`.
    typealias Evaluate = (
        _ scales: UnsafeMutableBufferPointer<Float>, _ zeros: UnsafeMutableBufferPointer<Float>, _ count: Int,
        _ errors: UnsafeMutableBufferPointer<Float>
    ) -> Void

    /// The best candidate and its error; the error is `nil` when the search stops at min-max (an
    /// empty or constant range, or a zero or NaN min-max error), in which case no refit follows.
    @inline(__always)
    static func run(lo: Float, hi: Float, bits: Int, evaluate: Evaluate) -> (GroupParameters, Float?) {
        let minmax = GroupFit.affine(lo: lo, hi: hi, bits: bits)
        let wideMinmax = (scale: GroupFit.widen(minmax.scale), zero: GroupFit.widen(minmax.zero))
        let range = hi - lo
        guard range > 0 else { return (minmax, nil) }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 72) { scratch in
            let scales = UnsafeMutableBufferPointer(rebasing: scratch[0..<24])
            let zeros = UnsafeMutableBufferPointer(rebasing: scratch[24..<48])
            let errors = UnsafeMutableBufferPointer(rebasing: scratch[48..<72])
            @inline(__always) func set(_ k: Int, _ p: (scale: Float, zero: Float)) {
                scales[k] = p.scale
                zeros[k] = p.zero
            }
            @inline(__always) func candidate(_ a: Float, _ b: Float) -> (scale: Float, zero: Float) {
                GroupFit.affineWidened(lo: lo + a * range, hi: hi - b * range, bits: bits)
            }
            @inline(__always) func stored(_ k: Int) -> GroupParameters {
                GroupParameters(scale: GroupFit.narrow(scales[k]), zero: GroupFit.narrow(zeros[k]))
            }
            @inline(__always) func judge(_ count: Int) { evaluate(scales, zeros, count, errors) }
            // Min-max and the symmetric sweep a = b = i/80.
            set(0, wideMinmax)
            for i in 1...20 { set(i, candidate(Float(i) / 80, Float(i) / 80)) }
            judge(21)
            var best = minmax
            var bestError = errors[0]
            guard bestError > 0 else { return (best, nil) }
            var bestA: Float = 0, bestB: Float = 0
            for i in 1...20 where errors[i] < bestError {
                best = stored(i)
                bestError = errors[i]
                bestA = Float(i) / 80
                bestB = bestA
            }
            // b alone, then a alone, over {0, 1/40, …, 1/4}.
            let a0 = bestA
            for j in 0...10 { set(j, candidate(a0, Float(j) / 40)) }
            judge(11)
            for j in 0...10 {
                let t = Float(j) / 40
                if t != bestB, errors[j] < bestError {
                    best = stored(j)
                    bestError = errors[j]
                    bestB = t
                }
            }
            let b0 = bestB
            for j in 0...10 { set(j, candidate(Float(j) / 40, b0)) }
            judge(11)
            for j in 0...10 {
                let t = Float(j) / 40
                if t != a0, errors[j] < bestError {
                    best = stored(j)
                    bestError = errors[j]
                    bestA = t
                }
            }
            // A finer pass around the best point, one end at a time: t₁ = c − 1/80, then t₂ = c + 1/80
            // (for b, t₁ + 1/80 if t₁ won, as the step follows the moving best); all evaluated together.
            @inline(__always) func valid(_ t: Float) -> Bool { t >= 0 && t < 0.5 }
            @inline(__always) func refine(_ center: Float, followsWinner: Bool, _ make: (Float) -> (scale: Float, zero: Float)) -> Float {
                let t1 = center + -1 / 80
                let t1Valid = valid(t1)
                let t2Lost = center + 1 / 80
                let t2Won = t1 + 1 / 80
                set(0, t1Valid ? make(t1) : wideMinmax)
                set(1, make(t2Lost))
                set(2, t1Valid ? make(t2Won) : wideMinmax)
                judge(3)
                var result = center
                var won = false
                if t1Valid, errors[0] < bestError {
                    best = stored(0)
                    bestError = errors[0]
                    result = t1
                    won = true
                }
                let t2 = won && followsWinner ? t2Won : t2Lost
                let k = won && followsWinner ? 2 : 1
                if valid(t2), errors[k] < bestError {
                    best = stored(k)
                    bestError = errors[k]
                    result = t2
                }
                return result
            }
            let a1 = bestA
            bestB = refine(bestB, followsWinner: true) { candidate(a1, $0) }
            let b1 = bestB
            _ = refine(a1, followsWinner: false) { candidate($0, b1) }
            return (best, bestError)
        }
    }

}
