import CBLAS
import Dispatch
import Foundation
import QPKCore

/// Accumulates, for one linear layer's input, the GPTQ Hessian `H = 2/n · Σ x xᵀ` (Frantar et al.
/// 2023, §3, from OBQ's quadratic loss ‖W X − Ŵ X‖²) and the per-column mean of `x²` (the
/// importance vector llama.cpp's imatrix stores, which is `diag(H)/2`).
///
/// The sum is kept in float64 and grows with every batch (``addUpperGram(_:rows:dimension:into:)``
/// on the batch's real rows, converted to float64 one chunk at a time), so memory is the `d × d` matrix plus one chunk,
/// whatever the number of samples. Padding rows (row mask 0) are skipped.
public struct HessianAccumulator: Sendable {
    /// The input width `d`.
    public let dimension: Int
    /// Σ x xᵀ over every row seen; only the upper triangle (row ≤ column) is maintained.
    private var sum: [Double]
    /// Σ x² per column.
    private var squares: [Double]
    /// The number of rows (tokens) seen, `n`.
    public private(set) var count: Int = 0

    /// Rows converted to float64 per product.
    static let chunkRows = 512
    /// Columns of `Σ x xᵀ` per parallel panel.
    static let panelWidth = 64

    /// `C[0..<j₁, j₀..<j₁] += X[:, 0..<j₁]ᵀ X[:, j₀..<j₁]` for each panel `[j₀, j₁)` of columns, one
    /// `cblas_dgemm` per panel, panels on every core: together the upper triangle of `C += XᵀX`
    /// (a few entries below the diagonal are computed too and ignored).
    static func addUpperGram(_ x: UnsafePointer<Double>, rows: Int, dimension d: Int, into c: UnsafeMutablePointer<Double>) {
        let panels = (d + panelWidth - 1) / panelWidth
        Parallel.forEachChunk(rows: panels, work: rows * d * panelWidth) { range in
            for panel in range {
                let j0 = panel * panelWidth
                let j1 = min(d, j0 + panelWidth)
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(j1), Int32(j1 - j0), Int32(rows),
                            1, x, Int32(d), x + j0, Int32(d), 1, c + j0, Int32(d))
            }
        }
    }

    public init(dimension: Int) {
        self.dimension = dimension
        sum = [Double](repeating: 0, count: dimension * dimension)
        squares = [Double](repeating: 0, count: dimension)
    }

    /// Adds the real rows of `input`.
    public mutating func add(_ input: Matrix, rowMask: [Float]) {
        precondition(input.columns == dimension, "Hessian of width \(dimension) given \(input.columns) columns")
        let d = dimension
        let real = (0..<input.rows).filter { rowMask.isEmpty || rowMask[$0] != 0 }
        BLAS.useCallerThreads()
        var chunk = [Double](repeating: 0, count: Self.chunkRows * d)
        var start = 0
        while start < real.count {
            let rows = min(Self.chunkRows, real.count - start)
            for (i, r) in real[start..<(start + rows)].enumerated() {
                for j in 0..<d {
                    let v = Double(input.values[r * d + j])
                    chunk[i * d + j] = v
                    squares[j] += v * v
                }
            }
            chunk.withUnsafeBufferPointer { x in
                sum.withUnsafeMutableBufferPointer { c in
                    Self.addUpperGram(x.baseAddress!, rows: rows, dimension: d, into: c.baseAddress!)
                }
            }
            start += rows
        }
        count += real.count
    }

    /// `H = 2/n · Σ x xᵀ`, the full symmetric `d × d` matrix, row-major (zero before any row).
    public var hessian: [Double] {
        let d = dimension
        let scale = count == 0 ? 0 : 2 / Double(count)
        var h = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in i..<d {
                let v = sum[i * d + j] * scale
                h[i * d + j] = v
                h[j * d + i] = v
            }
        }
        return h
    }

    /// The mean of `x²` per input column (llama.cpp's importance matrix entry for this layer).
    public var meanSquares: [Double] {
        squares.map { count == 0 ? 0 : $0 / Double(count) }
    }
}

/// A ``LinearInputObserver`` that keeps a ``HessianAccumulator`` per distinct input (the query,
/// key and value projections of a block share one) and, for BoA, each block's
/// ``AttentionStatistics``.
public final class HessianObserver: LinearInputObserver {
    /// Accumulators keyed by the first name of each input's consumers.
    public private(set) var accumulators: [String: HessianAccumulator] = [:]
    /// Layer name → the key of the accumulator holding its input statistics.
    public private(set) var keys: [String: String] = [:]
    /// Which blocks to observe (nil: all).
    public var blocks: Set<Int>?
    /// Whether attention layers' statistics are collected too (BoA), in ``attention``.
    public var collectsAttention: Bool
    /// Block index → the statistics of its attention layer (when ``collectsAttention``).
    public private(set) var attention: [Int: AttentionStatistics] = [:]

    public init(blocks: Set<Int>? = nil, collectsAttention: Bool = false) {
        self.blocks = blocks
        self.collectsAttention = collectsAttention
    }

    public func observeAttention(_ input: AttentionInput) {
        guard collectsAttention else { return }
        if let blocks, !blocks.contains(input.block) { return }
        if attention[input.block] == nil { attention[input.block] = AttentionStatistics(first: input) }
        attention[input.block]!.add(input)
    }

    public func observe(_ input: LinearInput) {
        if let blocks, !blocks.contains(input.block) { return }
        guard let key = input.layers.first else { return }
        for layer in input.layers { keys[layer] = key }
        accumulators[key, default: HessianAccumulator(dimension: input.values.columns)].add(input.values, rowMask: input.rowMask)
    }

    /// The statistics of the input of linear layer `name`.
    public func statistics(of name: String) -> HessianAccumulator? {
        keys[name].flatMap { accumulators[$0] }
    }
}
