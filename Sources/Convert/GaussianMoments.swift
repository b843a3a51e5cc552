import Foundation
import QPKCore
import Formats
import Quantize

/// Second moments of activation functions of a Gaussian pre-activation, by quadrature
/// (spec/quantization.md §10).
///
/// `E[f(u)²]` for `u ~ N(μ, σ²)` is `∫ f(μ + σt)² φ(t) dt`. The trapezoid rule on an equally
/// spaced grid is spectrally accurate for such Gaussian-weighted smooth integrands; the grid
/// `t ∈ [−8, 8]` in steps of 1/16 (257 nodes) loses less than 1e−14 of the mass outside.
enum GaussianMoments {
    /// The quadrature nodes `t_k` and weights `φ(t_k)·h`, normalised to sum to 1.
    static let nodes: (points: [Double], weights: [Double]) = {
        let h = 1.0 / 16
        let points = (0...256).map { -8 + Double($0) * h }
        let raw = points.map { exp(-$0 * $0 / 2) }
        let total = raw.reduce(0, +)
        return (points, raw.map { $0 / total })
    }()

    /// GELU with the exact Gaussian CDF, `x·Φ(x)` (BERT's activation).
    @inline(__always)
    static func gelu(_ x: Double) -> Double { 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }

    /// SiLU (swish), `x·σ(x)` (LLaMA's gate activation).
    @inline(__always)
    static func silu(_ x: Double) -> Double { x / (1 + exp(-x)) }

    /// `E[f(u)²]` for `u ~ N(mean, variance)`; a non-finite or negative variance counts as 0.
    static func secondMoment(of f: (Double) -> Double, mean: Double, variance: Double) -> Double {
        let sigma = variance.isFinite && variance > 0 ? variance.squareRoot() : 0
        guard mean.isFinite else { return 0 }
        if sigma == 0 {
            let y = f(mean)
            return y * y
        }
        var sum = 0.0
        let (points, weights) = nodes
        for k in points.indices {
            let y = f(mean + sigma * points[k])
            sum += weights[k] * y * y
        }
        return sum
    }
}
