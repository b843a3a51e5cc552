/// Importance-weighted MSE fitting of one group (spec/quantization.md §10).
///
/// The error of a group is `Σ_j w_j (x̂_j − x_j)²`, where `w_j ≥ 0` is the importance of the
/// group's input column `j` (see `ActivationImportance` in Convert). For a layer `y = W·x` with
/// independent, zero-mean inputs of second moment `E[x_j²]`, the output noise of a weight error
/// `ΔW` is `E‖ΔW·x‖² = Σ_i Σ_j ΔW_ij² E[x_j²]`: weighting by the input's second moment minimises
/// the layer's output error instead of the weight error (the diagonal of GPTQ's Hessian, or
/// llama.cpp's importance matrix, estimated without calibration data). The search is the same as
/// ``GroupFit``'s MSE clipping grid and least-squares refit, with every sum weighted, and the
/// unweighted optimum as a further candidate; uniform weights reproduce ``GroupFit`` exactly.
public enum WeightedGroupFit {
    /// Fits `values` (the group's kept values) with `weights` (one per value, same order).
    /// Searches other than `.mse` ignore the weights and fall back to ``GroupFit/fit``.
    public static func fit(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, bits: Int,
        scheme: QuantizationScheme, search: QuantizationRecipe.ScaleSearch
    ) -> GroupParameters {
        guard search == .mse, weights.count == values.count else {
            return GroupFit.fit(values, bits: bits, scheme: scheme, search: search)
        }
        let (lo, hi, m) = GroupFit.extremes(values)
        // The grid search is a coordinate search, so under another metric it can settle on a
        // different local optimum: the unweighted optimum is kept as a candidate, which makes the
        // weighted fit never worse than ``GroupFit`` under the weighted error.
        let plain = GroupFit.fit(values, bits: bits, scheme: scheme, search: search)
        let plainError = squaredError(values, weights: weights, parameters: plain, bits: bits)
        let searched: GroupParameters
        switch scheme {
        case .affine: searched = mseAffine(values, weights: weights, lo: lo, hi: hi, bits: bits)
        case .symmetric: searched = mseSymmetric(values, weights: weights, signedAbsMax: m, bits: bits)
        }
        guard plainError > 0 else { return plain }
        let searchedError = squaredError(values, weights: weights, parameters: searched, bits: bits)
        if searchedError < plainError { return searched }
        // Refine the unweighted optimum under the weighted metric (never increases the error).
        return refit(values, weights: weights, start: plain, error: plainError, bits: bits, fixedZero: scheme == .symmetric)
    }

    /// `Σ w_j (x̂_j − x_j)²` of `values` under `parameters`, with exactly the quantizer's arithmetic.
    ///
    /// The terms are computed eight at a time and added in element order, so the sum is the same
    /// as a plain scalar loop's (codes rounded as ``CandidateErrors`` explains).
    public static func squaredError(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, parameters p: GroupParameters,
        bits: Int
    ) -> Float {
        let n = min(values.count, weights.count)
        let scale = Float(p.scale), zero = Float(p.zero)
        var sum: Float = 0
        if scale == 0 {
            for i in 0..<n { sum += weights[i] * values[i] * values[i] }
            return sum
        }
        guard n > 0, let xs = values.baseAddress, let ws = weights.baseAddress else { return 0 }
        let inverse = 1 / scale
        let top = Float((1 << bits) - 1)
        typealias V = SIMD8<Float>
        let vInverse = V(repeating: inverse), vZero = V(repeating: zero), vScale = V(repeating: scale)
        let vLow = V(repeating: 0), vTop = V(repeating: top), vMagic = V(repeating: 12_582_912)
        let rx = UnsafeRawPointer(xs), rw = UnsafeRawPointer(ws)
        var i = 0
        while i + 8 <= n {
            let x = rx.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            let w = rw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            var q = x * vInverse + vZero
            q.replace(with: vLow, where: q .< vLow)
            q.replace(with: vTop, where: q .> vTop)
            q = (q + vMagic) - vMagic
            let e = (q - vZero) * vScale - x
            let t = w * e * e
            sum += t[0]; sum += t[1]; sum += t[2]; sum += t[3]
            sum += t[4]; sum += t[5]; sum += t[6]; sum += t[7]
            i += 8
        }
        while i < n {
            let x = xs[i]
            var q = x * inverse + zero
            if q < 0 { q = 0 }
            if q > top { q = top }
            q = (q + 12_582_912) - 12_582_912
            let e = (q - zero) * scale - x
            sum += ws[i] * e * e
            i += 1
        }
        return sum
    }

    /// The weighted counterpart of `GroupFit.mseAffine`: the same clipping grid, judged by the
    /// weighted error, then a weighted least-squares refit. Never worse than min-max (a candidate).
    ///
    /// Each sweep's candidates do not depend on which of them wins, so a sweep is evaluated in
    /// batches of eight (``CandidateErrors``) and then visited in the original order; the two
    /// one-step refinements evaluate both possible second steps up front. The result is the same
    /// as judging the candidates one by one.
    static func mseAffine(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, lo: Float, hi: Float, bits: Int
    ) -> GroupParameters {
        let minmax = GroupFit.affine(lo: lo, hi: hi, bits: bits)
        let range = hi - lo
        guard range > 0 else { return minmax }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 72) { scratch in
            let scales = UnsafeMutableBufferPointer(rebasing: scratch[0..<24])
            let zeros = UnsafeMutableBufferPointer(rebasing: scratch[24..<48])
            let errors = UnsafeMutableBufferPointer(rebasing: scratch[48..<72])
            @inline(__always) func set(_ k: Int, _ p: GroupParameters) {
                scales[k] = Float(p.scale)
                zeros[k] = Float(p.zero)
            }
            @inline(__always) func candidate(_ a: Float, _ b: Float) -> GroupParameters {
                GroupFit.affine(lo: lo + a * range, hi: hi - b * range, bits: bits)
            }
            @inline(__always) func stored(_ k: Int) -> GroupParameters {
                GroupParameters(scale: Float16(scales[k]), zero: Float16(zeros[k]))
            }
            @inline(__always) func evaluate(_ count: Int) {
                CandidateErrors.weighted(
                    values, weights: weights, scales: scales, zeros: zeros, count: count, bits: bits, into: errors)
            }
            // Min-max and the symmetric sweep a = b = i/80.
            set(0, minmax)
            for i in 1...20 { set(i, candidate(Float(i) / 80, Float(i) / 80)) }
            evaluate(21)
            var best = minmax
            var bestError = errors[0]
            guard bestError > 0 else { return best }
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
            evaluate(11)
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
            evaluate(11)
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
            @inline(__always) func refine(_ center: Float, followsWinner: Bool, _ make: (Float) -> GroupParameters) -> Float {
                let t1 = center + -1 / 80
                let t1Valid = valid(t1)
                let t2Lost = center + 1 / 80
                let t2Won = t1 + 1 / 80
                set(0, t1Valid ? make(t1) : minmax)
                set(1, make(t2Lost))
                set(2, t1Valid ? make(t2Won) : minmax)
                evaluate(3)
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
            return refit(values, weights: weights, start: best, error: bestError, bits: bits, fixedZero: false)
        }
    }

    /// The weighted counterpart of `GroupFit.mseSymmetric` (absmax shrunk by `1 − i/40`).
    static func mseSymmetric(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, signedAbsMax m: Float, bits: Int
    ) -> GroupParameters {
        var best = GroupFit.symmetric(signedAbsMax: m, bits: bits)
        var bestError = squaredError(values, weights: weights, parameters: best, bits: bits)
        guard m != 0, bestError > 0 else { return best }
        for i in 1...20 {
            let candidate = GroupFit.symmetric(signedAbsMax: m * (1 - Float(i) / 40), bits: bits)
            let error = squaredError(values, weights: weights, parameters: candidate, bits: bits)
            if error < bestError {
                best = candidate
                bestError = error
            }
        }
        return refit(values, weights: weights, start: best, error: bestError, bits: bits, fixedZero: true)
    }

    /// Weighted least squares with the codes held fixed (two rounds; a round is kept only if the
    /// weighted fp16 error falls): `x ≈ s·q + c` minimising `Σ w (s·q + c − x)²`.
    static func refit(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, start: GroupParameters,
        error: Float, bits: Int, fixedZero: Bool
    ) -> GroupParameters {
        var best = start, bestError = error
        let n = min(values.count, weights.count)
        guard n > 1, start.scale != 0, error > 0 else { return best }
        let top = Float((1 << bits) - 1)
        for _ in 0..<2 {
            let s = Float(best.scale), z = Float(best.zero)
            let inverse = 1 / s
            var sw: Float = 0, sq: Float = 0, sx: Float = 0, sqq: Float = 0, sqx: Float = 0
            for i in 0..<n {
                let x = values[i], w = weights[i]
                // min(max(round(v), 0), top), rounded after clamping (see ``CandidateErrors``).
                var q = x * inverse + z
                if q < 0 { q = 0 }
                if q > top { q = top }
                q = (q + 12_582_912) - 12_582_912
                if fixedZero { q -= z }
                sw += w
                sq += w * q
                sx += w * x
                sqq += w * q * q
                sqx += w * q * x
            }
            let candidate: GroupParameters
            if fixedZero {
                guard sqq > 0 else { break }
                let scale = GroupFit.half(sqx / sqq)
                guard scale != 0 else { break }
                candidate = GroupParameters(scale: scale, zero: best.zero)
            } else {
                guard sw > 0 else { break }
                let variance = sqq - sq * sq / sw
                guard variance > 0 else { break }
                let slope = (sqx - sq * sx / sw) / variance
                let scale = GroupFit.half(slope)
                guard scale != 0 else { break }
                let intercept = (sx - slope * sq) / sw
                candidate = GroupParameters(scale: scale, zero: GroupFit.half(-intercept / Float(scale)))
            }
            let e = squaredError(values, weights: weights, parameters: candidate, bits: bits)
            guard e < bestError, e.isFinite else { break }
            best = candidate
            bestError = e
        }
        return best
    }
}
