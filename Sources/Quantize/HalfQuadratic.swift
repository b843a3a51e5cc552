#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
import QPKCore
#endif

/// Data-free half-quadratic optimization of a group's zero-point (or scale), after HQQ
/// (Badri & Shaji 2023, "Half-Quadratic Quantization of Large Machine Learning Models").
///
/// HQQ minimizes a sparsity-promoting ℓp norm (p < 1) of the quantization error instead of its
/// square, which lets a few large errors (outliers) be ignored while the bulk fits well:
///
///     min_{z, W_e}  ‖W_e‖_p^p + β/2 · ‖W_e − (W − Q⁻¹(Q(W)))‖²
///
/// Splitting the variables gives alternating closed-form steps, with β growing by κ each round:
/// 1. `W_e ← shrink_p(W − Ŵ, β)`, the generalized soft-threshold
///    `shrink_p(x, β) = sign(x) · max(|x| − |x|^(p−1)/β, 0)`;
/// 2. with the codes `q` of the current parameters, the zero-point minimizing
///    `‖(q − z)·s − (W − W_e)‖²` is `z = mean(q − (W − W_e)/s)`;
/// 3. `β ← κ·β`.
/// Defaults p = 0.7, β = 10, κ = 1.01, 20 iterations, as in the paper. The scale stays fixed.
///
/// For the symmetric scheme the zero-point is fixed, so step 2 instead refits the scale by least
/// squares: `s = Σ(q − z)(W − W_e) / Σ(q − z)²`.
///
/// Every iterate is scored by its true squared error with fp16-rounded parameters, and the best
/// one (the start included) is returned, so the result is never worse than the start.
public enum HalfQuadratic {
    public static let p: Float = 0.7
    public static let beta: Float = 10
    public static let kappa: Float = 1.01
    public static let iterations = 20

    /// The generalized soft-threshold (proximal operator of |x|^p for the penalty β/2).
    @inline(__always)
    static func shrink(_ x: Float, beta: Float) -> Float {
        let a = abs(x)
        guard a > 0 else { return 0 }
        let t = a - powf(a, p - 1) / beta
        return t > 0 ? (x < 0 ? -t : t) : 0
    }

    /// Optimizes the affine zero-point with the scale of `start` fixed.
    public static func optimizeZero(
        _ values: UnsafeBufferPointer<Float>, start: GroupParameters, bits: Int
    ) -> GroupParameters {
        var best = start
        var bestError = GroupFit.squaredError(values, parameters: start, bits: bits)
        let scale = Float(start.scale)
        let n = values.count
        guard scale != 0, n > 0, bestError > 0 else { return best }
        let inverse = 1 / scale
        let top = Float((1 << bits) - 1)
        var zero = Float(start.zero)
        var beta = Self.beta
        for _ in 0..<iterations {
            let z = Float(GroupFit.half(zero))
            var sum: Float = 0
            for i in 0..<n {
                let x = values[i]
                let q = min(max((x * inverse + z).rounded(.toNearestOrEven), 0), top)
                let residual = x - (q - z) * scale
                let we = shrink(residual, beta: beta)
                sum += q - (x - we) * inverse
            }
            zero = sum / Float(n)
            beta *= kappa
            let candidate = GroupParameters(scale: start.scale, zero: GroupFit.half(zero))
            let error = GroupFit.squaredError(values, parameters: candidate, bits: bits)
            if error < bestError {
                best = candidate
                bestError = error
            }
        }
        return best
    }

    /// Optimizes the scale with the (symmetric) zero-point of `start` fixed.
    public static func optimizeScale(
        _ values: UnsafeBufferPointer<Float>, start: GroupParameters, bits: Int
    ) -> GroupParameters {
        var best = start
        var bestError = GroupFit.squaredError(values, parameters: start, bits: bits)
        let n = values.count
        guard start.scale != 0, n > 0, bestError > 0 else { return best }
        let top = Float((1 << bits) - 1)
        let z = Float(start.zero)
        var scale = Float(start.scale)
        var beta = Self.beta
        for _ in 0..<iterations {
            let s = Float(GroupFit.half(scale))
            guard s != 0 else { break }
            let inverse = 1 / s
            var numerator: Float = 0, denominator: Float = 0
            for i in 0..<n {
                let x = values[i]
                let q = min(max((x * inverse + z).rounded(.toNearestOrEven), 0), top)
                let c = q - z
                let we = shrink(x - c * s, beta: beta)
                numerator += c * (x - we)
                denominator += c * c
            }
            guard denominator > 0 else { break }
            scale = numerator / denominator
            beta *= kappa
            let candidate = GroupParameters(scale: GroupFit.half(scale), zero: start.zero)
            guard candidate.scale != 0 else { break }
            let error = GroupFit.squaredError(values, parameters: candidate, bits: bits)
            if error < bestError {
                best = candidate
                bestError = error
            }
        }
        return best
    }
}
