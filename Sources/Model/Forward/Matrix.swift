import CBLAS
import QPKCore

/// A row-major fp32 matrix: tokens × features for activations.
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var columns: Int
    public var values: [Float]

    public init(rows: Int, columns: Int, values: [Float]) {
        precondition(values.count == rows * columns, "matrix \(rows)×\(columns) needs \(rows * columns) values")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public init(rows: Int, columns: Int) {
        self.init(rows: rows, columns: columns, values: [Float](repeating: 0, count: rows * columns))
    }

    /// Row `row` as an array.
    public func row(_ row: Int) -> ArraySlice<Float> {
        values[(row * columns)..<((row + 1) * columns)]
    }
}

/// A fully connected layer `y = x Wᵀ + b` with PyTorch's `[out, in]` weight layout.
public struct Linear: Sendable {
    /// The tensor name without `.weight`/`.bias`, e.g. `encoder.layer.0.attention.self.query`.
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int
    /// `outFeatures × inFeatures`, row-major.
    public var weight: [Float]
    public var bias: [Float]?

    public init(name: String, inFeatures: Int, outFeatures: Int, weight: [Float], bias: [Float]?) {
        precondition(weight.count == inFeatures * outFeatures && (bias?.count ?? outFeatures) == outFeatures)
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.weight = weight
        self.bias = bias
    }

    /// `x Wᵀ + b` for every row of `x` through `cblas_sgemm` (the output starts as the broadcast
    /// bias and the product is added with β = 1), the rows split over cores.
    public func callAsFunction(_ x: Matrix) -> Matrix {
        precondition(x.columns == inFeatures, "\(name): input has \(x.columns) features, the layer takes \(inFeatures)")
        var out = [Float](repeating: 0, count: x.rows * outFeatures)
        if let bias {
            out.withUnsafeMutableBufferPointer { o in
                bias.withUnsafeBufferPointer { b in
                    for r in 0..<x.rows { (o.baseAddress! + r * outFeatures).update(from: b.baseAddress!, count: outFeatures) }
                }
            }
        }
        BLAS.useCallerThreads()
        let (m, n, k) = (x.rows, outFeatures, inFeatures)
        let beta: Float = bias == nil ? 0 : 1
        x.values.withUnsafeBufferPointer { a in
            weight.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { c in
                    let views = UncheckedSendable((a, w, c))
                    // Row slices on every core, one single-threaded sgemm each.
                    Parallel.forEachChunk(rows: m, work: n * k) { rows in
                        let (a, w, c) = views.value
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                                    Int32(rows.count), Int32(n), Int32(k),
                                    1, a.baseAddress! + rows.lowerBound * k, Int32(k), w.baseAddress, Int32(k),
                                    beta, c.baseAddress! + rows.lowerBound * n, Int32(n))
                    }
                }
            }
        }
        return Matrix(rows: x.rows, columns: outFeatures, values: out)
    }
}

/// How qpk drives OpenBLAS.
enum BLAS {
    /// OpenBLAS's own threads spin while they wait for work, which on a busy machine (more runnable
    /// threads than cores) costs several times the work itself. qpk therefore runs OpenBLAS
    /// single-threaded and spreads independent products over cores itself (``Parallel``).
    private static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    static func useCallerThreads() { _ = singleThreaded }
}
