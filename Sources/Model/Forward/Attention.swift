import CBLAS
import Dispatch
import Foundation
import QPKCore

/// Scaled dot-product multi-head attention (Vaswani et al. 2017, §3.2):
/// `softmax(Q Kᵀ / √d + M) V` for each sequence and head, where `M` is −∞ on padded keys (and,
/// when `causal`, on keys after the query). With fewer key/value heads than query heads
/// (grouped-query attention, Ainslie et al. 2023), query head `h` reads key/value head
/// `h / (heads / kvHeads)`.
///
/// Both products go through `cblas_sgemm` on strided views of the `tokens × hidden` projections
/// (head `h` is columns `h·d ..< (h+1)·d`), so no head is copied out; sequences run in parallel.
enum Attention {
    static func context(query: Matrix, key: Matrix, value: Matrix, batch: TokenBatch, heads: Int,
                        kvHeads: Int? = nil, causal: Bool = false) -> Matrix {
        let hidden = query.columns
        let d = hidden / heads
        let kvHeads = kvHeads ?? heads
        let kvColumns = key.columns
        let group = heads / kvHeads
        let t = batch.length
        let scale = 1 / Float(d).squareRoot()
        var out = Matrix(rows: query.rows, columns: hidden)
        BLAS.useCallerThreads()
        query.values.withUnsafeBufferPointer { q in
            key.values.withUnsafeBufferPointer { k in
                value.values.withUnsafeBufferPointer { v in
                    out.values.withUnsafeMutableBufferPointer { o in
                        let views = UncheckedSendable((q, k, v, o))
                        Parallel.forEachChunk(rows: batch.count, work: t * t * hidden) { sentences in
                            for s in sentences {
                                let (q, k, v, o) = views.value
                                let real = batch.lengths[s]
                                guard real > 0 else { continue }
                                var scores = [Float](repeating: 0, count: t * real)
                                let base = s * t * hidden
                                let kvBase = s * t * kvColumns
                                scores.withUnsafeMutableBufferPointer { p in
                                    for h in 0..<heads {
                                        let kvh = h / group
                                        // scores = scale · Q_sh K_shᵀ over the real keys only.
                                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(t), Int32(real), Int32(d),
                                                    scale, q.baseAddress! + base + h * d, Int32(hidden),
                                                    k.baseAddress! + kvBase + kvh * d, Int32(kvColumns),
                                                    0, p.baseAddress, Int32(real))
                                        for r in 0..<t {
                                            let row = p.baseAddress! + r * real
                                            let visible = causal ? min(r + 1, real) : real
                                            softmax(row, count: visible)
                                            for j in visible..<real { row[j] = 0 }
                                        }
                                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(t), Int32(d), Int32(real),
                                                    1, p.baseAddress, Int32(real),
                                                    v.baseAddress! + kvBase + kvh * d, Int32(kvColumns),
                                                    0, o.baseAddress! + base + h * d, Int32(hidden))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Numerically stable softmax in place: subtract the maximum before exponentiating.
    static func softmax(_ row: UnsafeMutablePointer<Float>, count: Int) {
        var maximum = -Float.infinity
        for j in 0..<count { maximum = max(maximum, row[j]) }
        var sum: Float = 0
        for j in 0..<count { let e = expf(row[j] - maximum); row[j] = e; sum += e }
        let inverse = 1 / sum
        for j in 0..<count { row[j] *= inverse }
    }
}
