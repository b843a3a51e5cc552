import Foundation
import QPKCore

/// The elementwise and row-wise steps of the encoder, spread over cores with ``Parallel``.
enum Kernels {
    /// `x ← LayerNorm(x + residual)` row by row (Ba et al. 2016): subtract the row mean, divide by
    /// `sqrt(variance + ε)` (biased variance), scale by `γ` and shift by `β`. Statistics in Double.
    static func addLayerNorm(_ x: inout Matrix, residual: Matrix?, gamma: [Float], beta: [Float], epsilon: Float) {
        let n = x.columns
        x.values.withUnsafeMutableBufferPointer { xs in
            let xs = UncheckedSendable(xs)
            let res = residual?.values
            res.withUnsafeBufferPointerOrNil { rs in
                let rs = UncheckedSendable(rs)
                Parallel.forEachChunk(rows: x.rows, work: n * 4) { rows in
                    for r in rows {
                        let row = xs.value.baseAddress! + r * n
                        if let rb = rs.value { for j in 0..<n { row[j] += rb[r * n + j] } }
                        var sum = 0.0
                        for j in 0..<n { sum += Double(row[j]) }
                        let mean = sum / Double(n)
                        var squares = 0.0
                        for j in 0..<n { let d = Double(row[j]) - mean; squares += d * d }
                        let inverse = 1 / (squares / Double(n) + Double(epsilon)).squareRoot()
                        for j in 0..<n { row[j] = Float((Double(row[j]) - mean) * inverse) * gamma[j] + beta[j] }
                    }
                }
            }
        }
    }

    /// `x ← x / sqrt(mean(x²) + ε) · γ` row by row (RMSNorm, Zhang & Sennrich 2019), in Double.
    static func rmsNorm(_ x: inout Matrix, gamma: [Float], epsilon: Float) {
        let n = x.columns
        x.values.withUnsafeMutableBufferPointer { xs in
            let xs = UncheckedSendable(xs)
            Parallel.forEachChunk(rows: x.rows, work: n * 3) { rows in
                for r in rows {
                    let row = xs.value.baseAddress! + r * n
                    var squares = 0.0
                    for j in 0..<n { squares += Double(row[j]) * Double(row[j]) }
                    let inverse = 1 / (squares / Double(n) + Double(epsilon)).squareRoot()
                    for j in 0..<n { row[j] = Float(Double(row[j]) * inverse) * gamma[j] }
                }
            }
        }
    }

    /// `x ← x + y` elementwise.
    static func add(_ x: inout Matrix, _ y: Matrix) {
        precondition(x.values.count == y.values.count)
        for i in 0..<x.values.count { x.values[i] += y.values[i] }
    }

    /// `gate ← SiLU(gate) ⊙ up` (SwiGLU, Shazeer 2020), SiLU(x) = x / (1 + e^(−x)).
    static func swiGLU(_ gate: inout Matrix, _ up: Matrix) {
        let columns = gate.columns
        gate.values.withUnsafeMutableBufferPointer { gs in
            up.values.withUnsafeBufferPointer { us in
                let views = UncheckedSendable((gs, us))
                Parallel.forEachChunk(rows: gate.rows, work: columns * 8) { rows in
                    let (g, u) = views.value
                    for i in (rows.lowerBound * columns)..<(rows.upperBound * columns) {
                        g[i] = g[i] / (1 + expf(-g[i])) * u[i]
                    }
                }
            }
        }
    }

    /// GELU with the exact Gaussian CDF (Hendrycks & Gimpel 2016): `x · (1 + erf(x/√2)) / 2`.
    static func gelu(_ x: inout Matrix) {
        let columns = x.columns
        x.values.withUnsafeMutableBufferPointer { xs in
            let xs = UncheckedSendable(xs)
            Parallel.forEachChunk(rows: x.rows, work: columns * 8) { rows in
                for i in (rows.lowerBound * columns)..<(rows.upperBound * columns) {
                    let v = xs.value[i]
                    xs.value[i] = 0.5 * v * (1 + erff(v * 0.70710678118654752))
                }
            }
        }
    }
}

extension Optional where Wrapped == [Float] {
    func withUnsafeBufferPointerOrNil<R>(_ body: (UnsafeBufferPointer<Float>?) -> R) -> R {
        switch self {
        case .none: return body(nil)
        case let .some(array): return array.withUnsafeBufferPointer { body($0) }
        }
    }
}
