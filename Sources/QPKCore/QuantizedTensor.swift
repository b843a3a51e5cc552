/// The numeric scheme of a group-wise quantized tensor.
///
/// A tensor is viewed as a matrix whose columns run along the layer's input (reduction) dimension
/// (``QuantizationAxis``). Each row is cut into groups of `groupSize` consecutive columns (the
/// last group of a row may be shorter). Every group has one scale `s` and one zero-point `z` (both
/// fp16), and element `x` is stored as the code `q` with `x ≈ (q − z) · s`.
public enum QuantizationScheme: String, Sendable, Codable, CaseIterable {
    /// `q ∈ [0, 2^bits − 1]`, `z` free (min/max or optimized): asymmetric.
    case affine
    /// `q ∈ [0, 2^bits − 1]` with `z = 2^(bits−1)` fixed: symmetric around zero.
    case symmetric
}

/// Which axes of a tensor its quantization groups run along: the layer's input (reduction)
/// dimension, so that a group's values multiply the same activations' neighbours
/// (spec/qpk-format.md §5.1).
///
/// The raw values are the QPK header's `quantization.axis` integers.
public enum QuantizationAxis: Int, Sendable, Hashable, Codable, CaseIterable {
    /// Groups run along the last axis: the tensor `[d0, …, dn]` is a matrix of
    /// `d0·…·d(n−1)` rows by `dn` columns. PyTorch/safetensors linear weights are `[out, in]`.
    case last = -1
    /// Groups run along the leading axes: the tensor is viewed as the transpose of the `.last`
    /// view, `dn` rows by `d0·…·d(n−1)` columns. Keras kernels are `[in, out]` and convolution
    /// kernels `[kh, kw, in, out]`, whose reduction runs over every axis but the last.
    case leading = 0

    /// The name used on the command line and in JSON (`"last"`, `"leading"`).
    public var name: String {
        switch self {
        case .last: "last"
        case .leading: "leading"
        }
    }

    /// The axis called `name` (`"last"`, `"leading"`).
    public init?(name: String) {
        guard let axis = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = axis
    }

    /// The `rows × columns` matrix a tensor of `shape` is quantized as. A scalar or vector is one
    /// row under either axis.
    public func matrixShape(of shape: [Int]) -> (rows: Int, columns: Int) {
        guard let last = shape.last else { return (1, 1) }
        let leading = shape.dropLast().reduce(1, *)
        switch self {
        case .last: return (leading, last)
        case .leading: return shape.count < 2 ? (1, last) : (last, leading)
        }
    }

    /// Whether the matrix view is the transpose of the row-major tensor.
    public func transposes(_ shape: [Int]) -> Bool { self == .leading && shape.count >= 2 }
}

/// How the codes of a quantized tensor are laid out.
public struct QuantizationLayout: Sendable, Hashable, Codable {
    public var scheme: QuantizationScheme
    /// Bits per code: 2, 3, 4 or 8.
    public var bits: Int
    /// Columns per group. Equal to the column count for per-row quantization.
    public var groupSize: Int
    /// The axes the groups run along.
    public var axis: QuantizationAxis

    public init(scheme: QuantizationScheme, bits: Int, groupSize: Int, axis: QuantizationAxis = .last) {
        self.scheme = scheme
        self.bits = bits
        self.groupSize = groupSize
        self.axis = axis
    }

    /// The `rows × columns` matrix `info` is quantized as under this layout's axis.
    public func matrixShape(of info: TensorInfo) -> (rows: Int, columns: Int) {
        axis.matrixShape(of: info.shape)
    }

    /// The number of groups in one row of `columns` columns.
    public func groupsPerRow(columns: Int) -> Int {
        columns == 0 ? 0 : (columns + groupSize - 1) / groupSize
    }

    /// The packed size, in bytes, of `elementCount` codes: an LSB-first bit stream.
    public func packedByteCount(elementCount: Int) -> Int {
        (elementCount * bits + 7) / 8
    }
}

/// Which parameters of a tensor are kept at full precision, and why.
///
/// PreQuant (Gong et al. 2023) fine-tunes exactly these parameters after task-agnostic
/// quantization, so they are recorded rather than merely applied.
public struct OutlierSet: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Whole rows of the matrix view; `indices` are row numbers.
        case rows
        /// Whole columns of the matrix view; `indices` are column numbers.
        case columns
        /// Single elements; `indices` are flat row-major element indices.
        case elements
    }

    public var kind: Kind
    /// Sorted, unique indices (rows, columns or flat elements, according to `kind`).
    public var indices: [Int64]
    /// The full-precision values of the outlier parameters, in row-major order of the parameters
    /// they cover (for `rows`: each row in turn; for `columns`: row by row, the selected columns).
    public var values: [Float]
    /// The statistic that selected them (e.g. `"abs_deviation"`, `"row_kurtosis"`).
    public var statistic: String
    /// The threshold of that statistic at which selection stopped.
    public var threshold: Double

    public init(kind: Kind, indices: [Int64], values: [Float], statistic: String, threshold: Double) {
        self.kind = kind
        self.indices = indices
        self.values = values
        self.statistic = statistic
        self.threshold = threshold
    }

    /// The number of parameters covered, in a tensor of `rows` × `columns`.
    public func parameterCount(rows: Int, columns: Int) -> Int {
        switch kind {
        case .rows: indices.count * columns
        case .columns: indices.count * rows
        case .elements: indices.count
        }
    }
}

/// The measured error of a quantized tensor against its source, recorded at write time.
public struct QuantizationErrorStats: Sendable, Equatable, Codable {
    /// Signal-to-quantization-noise ratio, 10·log10(Σx² / Σ(x − x̂)²), in dB (∞ if exact).
    public var sqnrDB: Double
    /// The largest |x − x̂|.
    public var maxAbsError: Double

    public init(sqnrDB: Double, maxAbsError: Double) {
        self.sqnrDB = sqnrDB
        self.maxAbsError = maxAbsError
    }
}

/// A quantized tensor: packed codes, per-group scales and zero-points, and optional outliers.
public struct QuantizedTensor: Sendable {
    /// The original tensor (name, dtype and shape before quantization).
    public var info: TensorInfo
    public var layout: QuantizationLayout
    /// `info.elementCount` codes of `layout.bits` bits, an LSB-first bit stream in row-major order.
    public var codes: [UInt8]
    /// One fp16 scale per group, row-major (`rows × groupsPerRow`).
    public var scales: [Float16]
    /// One fp16 zero-point per group, in code units, same order as `scales`.
    public var zeros: [Float16]
    public var outliers: OutlierSet?
    public var error: QuantizationErrorStats?
    /// How the scales/zeros were chosen (`"prequant+mse"`, `"rtn+minmax"`, …), for provenance.
    public var method: String
    /// The decision the tensor was quantized with, when known (recorded in QPK, spec §4.3).
    public var decision: QuantizationDecision?

    public init(
        info: TensorInfo, layout: QuantizationLayout, codes: [UInt8], scales: [Float16],
        zeros: [Float16], outliers: OutlierSet? = nil, error: QuantizationErrorStats? = nil,
        method: String, decision: QuantizationDecision? = nil
    ) {
        self.decision = decision
        self.info = info
        self.layout = layout
        self.codes = codes
        self.scales = scales
        self.zeros = zeros
        self.outliers = outliers
        self.error = error
        self.method = method
    }

    /// Bytes of codes, scales, zero-points and outliers (indices u32, values f32, as QPK stores them).
    public var storedByteCount: Int {
        let (rows, columns) = layout.matrixShape(of: info)
        return QuantizedByteCount.codesScalesZeros(layout: layout, rows: rows, columns: columns)
            + (outliers.map { QuantizedByteCount.outliers($0.kind, count: $0.indices.count, rows: rows, columns: columns) } ?? 0)
    }

    /// The `rows × columns` matrix the codes, scales, zeros and outlier indices refer to.
    public var matrixShape: (rows: Int, columns: Int) { layout.matrixShape(of: info) }

    /// Effective bits per weight: everything stored, over the parameter count.
    public var bitsPerWeight: Double {
        let n = info.elementCount
        return n == 0 ? 0 : Double(storedByteCount * 8) / Double(n)
    }
}
