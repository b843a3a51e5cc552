import CBLAS

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

    /// `x Wᵀ + b` for every row of `x`, as one `cblas_sgemm` (the output starts as the broadcast
    /// bias and the product is added with β = 1).
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
        x.values.withUnsafeBufferPointer { a in
            weight.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { c in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                                Int32(x.rows), Int32(outFeatures), Int32(inFeatures),
                                1, a.baseAddress, Int32(inFeatures), w.baseAddress, Int32(inFeatures),
                                bias == nil ? 0 : 1, c.baseAddress, Int32(outFeatures))
                }
            }
        }
        return Matrix(rows: x.rows, columns: outFeatures, values: out)
    }
}
