import CBLAS
import Foundation
import QPKCore

/// The calibration statistics of one attention layer that BoA's attention-aware Hessians are made
/// of (Kim et al. 2025, §3; spec/quantization.md §12), accumulated over the calibration batches:
///
/// - per query head, `2/n · Σ q qᵀ` over the real tokens (the key projection's output side);
/// - per key/value head, `2/n · Σ k kᵀ` (the query projection's output side);
/// - per key/value head, `2/n · Σ z zᵀ` with `z_t = Σ_u A_h[t, u] x_u`, the value projection's
///   input mixed by the attention probabilities of the head (of every query head reading it,
///   under grouped-query attention);
/// - the number of real tokens at each position, to turn RoPE's rotations back.
///
/// Queries and keys are those the scores use (after RoPE). With RoPE a query at position `t`
/// scores `(R_t q)ᵀ k̃`, so the query's output-side Hessian is `R_tᵀ (Σ k̃ k̃ᵀ) R_t`, averaged
/// over the query positions (and likewise for the keys), as the authors do.
public struct AttentionStatistics {
    public let query: String
    public let key: String
    public let value: String
    /// The output projection's name.
    public let output: String
    public let heads: Int
    public let kvHeads: Int
    public let headSize: Int
    var queryGrams: [HessianAccumulator]
    var keyGrams: [HessianAccumulator]
    var mixedInputs: [HessianAccumulator]
    var positionCounts: [Int] = []
    let rotary: RotaryEmbedding?

    init(first input: AttentionInput) {
        query = input.query
        key = input.key
        value = input.value
        output = input.output
        heads = input.heads
        kvHeads = input.kvHeads
        headSize = input.queries.columns / input.heads
        queryGrams = Array(repeating: HessianAccumulator(dimension: headSize), count: heads)
        keyGrams = Array(repeating: HessianAccumulator(dimension: headSize), count: kvHeads)
        mixedInputs = Array(repeating: HessianAccumulator(dimension: input.input.columns), count: kvHeads)
        rotary = input.rotary
    }

    /// Adds one batch.
    mutating func add(_ input: AttentionInput) {
        let batch = input.batch
        let d = headSize
        let real = (0..<batch.count).flatMap { s in (0..<batch.lengths[s]).map { s * batch.length + $0 } }
        for s in 0..<batch.count {
            if positionCounts.count < batch.lengths[s] { positionCounts += Array(repeating: 0, count: batch.lengths[s] - positionCounts.count) }
            for t in 0..<batch.lengths[s] { positionCounts[t] += 1 }
        }
        let headColumns = { (m: Matrix, h: Int) -> Matrix in
            var out = Matrix(rows: real.count, columns: d)
            for (i, r) in real.enumerated() {
                for j in 0..<d { out.values[i * d + j] = m.values[r * m.columns + h * d + j] }
            }
            return out
        }
        for h in 0..<heads { queryGrams[h].add(headColumns(input.queries, h), rowMask: []) }
        for g in 0..<kvHeads { keyGrams[g].add(headColumns(input.keys, g), rowMask: []) }
        for h in 0..<heads {
            mixedInputs[h / (heads / kvHeads)].add(Self.mixedInput(input, head: h), rowMask: [])
        }
    }

    /// `A_h X` over the real query tokens of every sequence (real tokens × hidden): each query's
    /// attention probabilities over the real keys (causal where the model is) times the inputs.
    static func mixedInput(_ input: AttentionInput, head h: Int) -> Matrix {
        let batch = input.batch
        let t = batch.length
        let d = input.queries.columns / input.heads
        let hidden = input.input.columns
        let kvh = h / (input.heads / input.kvHeads)
        let scale = 1 / Float(d).squareRoot()
        var offsets = [0]
        for s in 0..<batch.count { offsets.append(offsets[s] + batch.lengths[s]) }
        var out = Matrix(rows: offsets[batch.count], columns: hidden)
        input.queries.values.withUnsafeBufferPointer { q in
            input.keys.values.withUnsafeBufferPointer { k in
                input.input.values.withUnsafeBufferPointer { x in
                    out.values.withUnsafeMutableBufferPointer { o in
                        let views = UncheckedSendable((q, k, x, o))
                        Parallel.forEachChunk(rows: batch.count, work: t * t * (d + hidden)) { sentences in
                            let (q, k, x, o) = views.value
                            for s in sentences {
                                let real = batch.lengths[s]
                                guard real > 0 else { continue }
                                var p = [Float](repeating: 0, count: real * real)
                                p.withUnsafeMutableBufferPointer { p in
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(real), Int32(real), Int32(d),
                                                scale, q.baseAddress! + s * t * input.queries.columns + h * d, Int32(input.queries.columns),
                                                k.baseAddress! + s * t * input.keys.columns + kvh * d, Int32(input.keys.columns),
                                                0, p.baseAddress, Int32(real))
                                    for r in 0..<real {
                                        let row = p.baseAddress! + r * real
                                        let visible = input.causal ? r + 1 : real
                                        Attention.softmax(row, count: visible)
                                        for j in visible..<real { row[j] = 0 }
                                    }
                                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(real), Int32(hidden), Int32(real),
                                                1, p.baseAddress, Int32(real), x.baseAddress! + s * t * hidden, Int32(hidden),
                                                0, o.baseAddress! + offsets[s] * hidden, Int32(hidden))
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `Σ_t c_t R_tᵀ C R_t / Σ_t c_t` over the positions' token counts `c_t` (`C` itself without
    /// RoPE): the output-side Hessian of a projection whose outputs are rotated before scoring.
    func unrotated(_ c: [Double]) -> [Double] {
        guard let rotary else { return c }
        let d = headSize, half = d / 2
        var sum = [Double](repeating: 0, count: d * d)
        let total = Double(positionCounts.reduce(0, +))
        var m = c
        for (t, count) in positionCounts.enumerated() where count > 0 {
            let turns = rotary.rotation(at: t)
            // M = C R_t (columns i, i + d/2 turned), then R_tᵀ M (rows turned).
            for r in 0..<d {
                for i in 0..<half {
                    let a = c[r * d + i], b = c[r * d + i + half]
                    m[r * d + i] = a * turns[i].cos + b * turns[i].sin
                    m[r * d + i + half] = -a * turns[i].sin + b * turns[i].cos
                }
            }
            let w = Double(count) / total
            for i in 0..<half {
                for j in 0..<d {
                    let a = m[i * d + j], b = m[(i + half) * d + j]
                    sum[i * d + j] += w * (a * turns[i].cos + b * turns[i].sin)
                    sum[(i + half) * d + j] += w * (-a * turns[i].sin + b * turns[i].cos)
                }
            }
        }
        return sum
    }

    /// The query projection's output-side Hessian per query head: its keys' `2/n Σ k kᵀ`.
    public var queryRowHessians: [[Double]] {
        (0..<heads).map { unrotated(keyGrams[$0 / (heads / kvHeads)].hessian) }
    }

    /// The key projection's output-side Hessian per key head: the mean over the query heads
    /// reading it of their `2/n Σ q qᵀ`.
    public var keyRowHessians: [[Double]] {
        let group = heads / kvHeads
        return (0..<kvHeads).map { g in
            var mean = [Double](repeating: 0, count: headSize * headSize)
            for h in (g * group)..<((g + 1) * group) {
                for (i, v) in queryGrams[h].hessian.enumerated() { mean[i] += v / Double(group) }
            }
            return unrotated(mean)
        }
    }

    /// The value projection's output-side Hessian per value head with the output projection
    /// `W_O` (`hidden × heads·d`): `Σ_h W_O,hᵀ W_O,h` over the query heads reading it, `W_O,h`
    /// the head's `d` columns (the paper's value Hessian, §3.2: `ΔO = A_h X ΔW_V,hᵀ W_O,hᵀ`).
    public func valueRowHessians(outputWeight: [Float]) -> [[Double]] {
        let d = headSize, width = heads * d
        let outputs = outputWeight.count / width
        let group = heads / kvHeads
        return (0..<kvHeads).map { g in
            var sum = [Double](repeating: 0, count: d * d)
            for h in (g * group)..<((g + 1) * group) {
                for o in 0..<outputs {
                    let row = o * width + h * d
                    for i in 0..<d {
                        let a = Double(outputWeight[row + i])
                        for j in 0..<d { sum[i * d + j] += a * Double(outputWeight[row + j]) }
                    }
                }
            }
            return sum
        }
    }

    /// The value projection's input-side Hessian per value head: `2/n Σ (A_h X)(A_h X)ᵀ`, over
    /// every query head reading it.
    public var valueColumnHessians: [[Double]] { mixedInputs.map(\.hessian) }
}
