import Foundation
import Formats
import Testing
@testable import Model

/// BoA's attention statistics against a direct float64 computation from the queries, keys and
/// inputs the block reports.
@Suite struct AttentionStatisticsTests {
    final class Recorder: LinearInputObserver {
        var attention: [AttentionInput] = []
        func observe(_ input: LinearInput) {}
        func observeAttention(_ input: AttentionInput) { attention.append(input) }
    }

    static let batch = TokenBatch([[2, 5, 8, 3, 7, 11], [2, 4, 3]], padID: 0)

    /// `2/n Σ v vᵀ` of the given vectors.
    static func gram(_ vectors: [[Double]]) -> [Double] {
        let d = vectors[0].count
        var g = [Double](repeating: 0, count: d * d)
        for v in vectors { for i in 0..<d { for j in 0..<d { g[i * d + j] += 2 * v[i] * v[j] / Double(vectors.count) } } }
        return g
    }

    static func close(_ a: [Double], _ b: [Double], tolerance: Double = 1e-4) -> Bool {
        let scale = b.map(abs).max() ?? 1
        return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(scale, 1e-12) }
    }

    /// The direct statistics of one recorded attention input.
    struct Direct {
        var queryRows: [[Double]] = []
        var keyRows: [[Double]] = []
        var valueColumns: [[Double]] = []
    }

    static func direct(_ a: AttentionInput, theta: Double?) -> Direct {
        let d = a.queries.columns / a.heads, half = d / 2
        let group = a.heads / a.kvHeads
        let b = a.batch
        var rows: [(s: Int, t: Int)] = []
        for s in 0..<b.count { for t in 0..<b.lengths[s] { rows.append((s, t)) } }
        func head(_ m: Matrix, _ h: Int, _ s: Int, _ t: Int) -> [Double] {
            (0..<d).map { Double(m.values[(s * b.length + t) * m.columns + h * d + $0]) }
        }
        // R_p as a matrix (Hugging Face layout: element i pairs with i + d/2).
        func rotation(_ p: Int) -> [Double] {
            var r = [Double](repeating: 0, count: d * d)
            for i in 0..<half {
                let angle = Double(p) * pow(theta ?? 1, -2 * Double(i) / Double(d))
                let (c, sn) = theta == nil ? (1.0, 0.0) : (cos(angle), sin(angle))
                r[i * d + i] = c; r[i * d + i + half] = -sn; r[(i + half) * d + i] = sn; r[(i + half) * d + i + half] = c
            }
            return r
        }
        func unrotated(_ c: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: d * d)
            for (_, t) in rows {
                let r = rotation(t)
                for i in 0..<d { for j in 0..<d {
                    var v = 0.0
                    for k in 0..<d { for l in 0..<d { v += r[k * d + i] * c[k * d + l] * r[l * d + j] } }
                    out[i * d + j] += v / Double(rows.count)
                } }
            }
            return out
        }
        var result = Direct()
        let keyGrams = (0..<a.kvHeads).map { g in gram(rows.map { head(a.keys, g, $0.s, $0.t) }) }
        let queryGrams = (0..<a.heads).map { h in gram(rows.map { head(a.queries, h, $0.s, $0.t) }) }
        result.queryRows = (0..<a.heads).map { unrotated(keyGrams[$0 / group]) }
        result.keyRows = (0..<a.kvHeads).map { g in
            var mean = [Double](repeating: 0, count: d * d)
            for h in (g * group)..<((g + 1) * group) { for i in mean.indices { mean[i] += queryGrams[h][i] / Double(group) } }
            return unrotated(mean)
        }
        let hidden = a.input.columns
        result.valueColumns = (0..<a.kvHeads).map { g in
            var mixed: [[Double]] = []
            for h in (g * group)..<((g + 1) * group) {
                for s in 0..<b.count {
                    let n = b.lengths[s]
                    for t in 0..<n {
                        let q = head(a.queries, h, s, t)
                        let visible = a.causal ? t + 1 : n
                        let scores = (0..<visible).map { u in zip(q, head(a.keys, g, s, u)).reduce(0) { $0 + $1.0 * $1.1 } / Double(d).squareRoot() }
                        let top = scores.max()!
                        let e = scores.map { exp($0 - top) }
                        let sum = e.reduce(0, +)
                        var z = [Double](repeating: 0, count: hidden)
                        for u in 0..<visible {
                            for j in 0..<hidden { z[j] += e[u] / sum * Double(a.input.values[(s * b.length + u) * hidden + j]) }
                        }
                        mixed.append(z)
                    }
                }
            }
            return gram(mixed)
        }
        return result
    }

    func check<M: BlockwiseModel>(_ model: M, theta: Double?) throws {
        let recorder = Recorder()
        _ = try model.hiddenStates(Self.batch, observer: recorder)
        let first = try #require(recorder.attention.first)
        let observer = HessianObserver(blocks: [0], collectsAttention: true)
        _ = try model.hiddenStates(Self.batch, observer: observer)
        let statistics = try #require(observer.attention[0])
        #expect(observer.attention.count == 1)
        #expect(statistics.query == first.query && statistics.value == first.value && statistics.output == first.output)
        let expected = Self.direct(first, theta: theta)
        #expect(zip(statistics.queryRowHessians, expected.queryRows).allSatisfy { Self.close($0, $1) })
        #expect(zip(statistics.keyRowHessians, expected.keyRows).allSatisfy { Self.close($0, $1) })
        #expect(zip(statistics.valueColumnHessians, expected.valueColumns).allSatisfy { Self.close($0, $1) })
        #expect(statistics.queryRowHessians.count == first.heads && statistics.keyRowHessians.count == first.kvHeads)
    }

    @Test("BERT: key and query grams per head and the attention-mixed value inputs, padding skipped")
    func bert() throws {
        let tiny = try TinyBert()
        defer { tiny.remove() }
        try check(try BertEncoder(config: try ModelConfig(contentsOf: tiny.config), checkpoint: try Checkpoint.open(tiny.weights)), theta: nil)
    }

    @Test("llama: RoPE turned back per query position, grouped key/value heads, causal attention")
    func llama() throws {
        let tiny = try TinyLlama()
        defer { tiny.remove() }
        let config = try ModelConfig(contentsOf: tiny.config)
        try check(try LlamaDecoder(config: config, checkpoint: try Checkpoint.open(tiny.weights)), theta: config.ropeTheta)
    }
}
