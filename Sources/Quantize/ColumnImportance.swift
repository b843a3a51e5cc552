import QPKCore

/// Turns estimated input second moments into the per-column error weights of
/// ``TensorQuantizer/quantize(_:info:recipe:columnImportance:)``.
public enum ColumnImportance {
    /// The exponent `p` of `w_j = (m_j / mean m)^p`. `p = 1` is the layer's expected output error
    /// for independent inputs; on MiniLM-L6 `p = 1.5` measured best (mean embedding cosine 0.9762
    /// vs 0.9754 at p = 2, 0.9738 at p = 1 with weighted outliers, 0.9740 unweighted;
    /// bench/quality/research/RESULTS.md). A larger exponent also compensates for the estimate
    /// ignoring how errors compound through later layers.
    public static let defaultExponent = 1.5

    /// The exponent for measured second moments (an importance matrix, `--imatrix`): `p = 1`, the
    /// expected output error itself, as GPTQ's Hessian diagonal weighs it. On MiniLM-L6 with the
    /// default recipe it measured 0.9817 mean embedding cosine against 0.9810 at p = 1.5
    /// (imatrix from qpk's built-in calibration text; bench/quality).
    public static let measuredExponent = 1.0

    /// The smallest weight relative to the mean: no column is ever ignored entirely.
    public static let floor: Double = 1e-3

    /// `w_j = max(m_j / mean(m), floor)^exponent`, as Float. Non-finite or negative moments count
    /// as the floor; an all-zero or empty input gives `nil` (no usable information).
    public static func weights(secondMoments: [Double], exponent: Double = defaultExponent) -> [Float]? {
        guard !secondMoments.isEmpty else { return nil }
        var sum = 0.0
        for m in secondMoments where m.isFinite && m > 0 { sum += m }
        guard sum > 0, sum.isFinite else { return nil }
        let mean = sum / Double(secondMoments.count)
        return secondMoments.map { m in
            let ratio = (m.isFinite && m > 0) ? max(m / mean, floor) : floor
            return Float(min(pow(ratio, exponent), 1e12))
        }
    }

    /// `weights` if it can drive a weighted fit of a tensor with `columns` columns: one finite,
    /// non-negative entry per column and a positive total; otherwise `nil`.
    public static func usable(_ weights: [Float]?, columns: Int) -> [Float]? {
        guard let weights, weights.count == columns, columns > 0 else { return nil }
        var total: Float = 0
        for w in weights {
            guard w.isFinite, w >= 0 else { return nil }
            total += w
        }
        return total > 0 && total.isFinite ? weights : nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
