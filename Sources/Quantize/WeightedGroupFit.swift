import QPKCore

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

    /// ``fit(_:weights:bits:scheme:search:)`` with the zero-point in `zeroPoints`: for
    /// ``ZeroPointDomain/packed`` and the affine MSE search, the weighted clipping grid judges
    /// every candidate with its zero-point rounded to an integer code, the weighted least squares
    /// refit then adjusts the scale for that fixed zero-point, and the unweighted integer fit is a
    /// further candidate (as in the fp16 case).
    public static func fit(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, bits: Int,
        scheme: QuantizationScheme, search: QuantizationRecipe.ScaleSearch, zeroPoints: ZeroPointDomain
    ) -> GroupParameters {
        guard zeroPoints == .packed, scheme == .affine else {
            return fit(values, weights: weights, bits: bits, scheme: scheme, search: search)
        }
        let plain = GroupFit.fit(values, bits: bits, scheme: scheme, search: search, zeroPoints: zeroPoints)
        guard search == .mse, weights.count == values.count else { return plain }
        let plainError = squaredError(values, weights: weights, parameters: plain, bits: bits)
        guard plainError > 0 else { return plain }
        let (lo, hi, _) = GroupFit.extremes(values)
        let (best, _) = AffineClippingSearch.run(lo: lo, hi: hi, bits: bits) { scales, zeros, count, errors in
            for k in 0..<count { zeros[k] = GroupFit.integerZero(zeros[k], bits: bits) }
            CandidateErrors.weighted(
                values, weights: weights, scales: scales, zeros: zeros, count: count, bits: bits, into: errors)
        }
        let start = GroupParameters(scale: best.scale, zero: Float16(GroupFit.integerZero(GroupFit.widen(best.zero), bits: bits)))
        let startError = squaredError(values, weights: weights, parameters: start, bits: bits)
        let searched = refit(values, weights: weights, start: start, error: startError, bits: bits, fixedZero: true)
        let searchedError = squaredError(values, weights: weights, parameters: searched, bits: bits)
        if searchedError < plainError { return searched }
        return refit(values, weights: weights, start: plain, error: plainError, bits: bits, fixedZero: true)
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
        let scale = GroupFit.widen(p.scale), zero = GroupFit.widen(p.zero)
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
    static func mseAffine(
        _ values: UnsafeBufferPointer<Float>, weights: UnsafeBufferPointer<Float>, lo: Float, hi: Float, bits: Int
    ) -> GroupParameters {
        let (best, bestError) = AffineClippingSearch.run(lo: lo, hi: hi, bits: bits) { scales, zeros, count, errors in
            CandidateErrors.weighted(
                values, weights: weights, scales: scales, zeros: zeros, count: count, bits: bits, into: errors)
        }
        guard let bestError else { return best }
        return refit(values, weights: weights, start: best, error: bestError, bits: bits, fixedZero: false)
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
            let s = GroupFit.widen(best.scale), z = GroupFit.widen(best.zero)
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
