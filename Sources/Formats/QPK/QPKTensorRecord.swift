import QPKCore

/// How a tensor is stored in a QPK file.
public enum QPKEncoding: String, Sendable, Codable {
    /// The original bytes, any dtype.
    case raw
    /// Group-wise affine codes, scales and zero-points (`spec/qpk-format.md` §5).
    case affine
}

/// A tensor's outlier record, without its indices and values (`spec/qpk-format.md` §6).
public struct QPKOutlierRecord: Sendable, Equatable {
    public var kind: OutlierSet.Kind
    /// The number of indices (rows, columns or elements).
    public var count: Int
    public var statistic: String
    public var threshold: Double

    public init(kind: OutlierSet.Kind, count: Int, statistic: String, threshold: Double) {
        self.kind = kind
        self.count = count
        self.statistic = statistic
        self.threshold = threshold
    }

    /// The number of parameters covered in a `rows` × `columns` matrix view.
    public func parameterCount(rows: Int, columns: Int) -> Int {
        switch kind {
        case .rows: count * columns
        case .columns: count * rows
        case .elements: count
        }
    }
}

/// Everything the header says about one tensor: what `inspect` shows without loading any blob.
public struct QPKTensorRecord: Sendable, Equatable {
    /// The original name, dtype and shape.
    public var info: TensorInfo
    public var encoding: QPKEncoding
    /// Scheme, bits and group size (`affine` only).
    public var layout: QuantizationLayout?
    /// How scales and zero-points were chosen (`affine` only).
    public var method: String?
    /// The whole per-tensor decision, when the header records it (§4.3; files from before it
    /// existed record only the layout and method).
    public var decision: QuantizationDecision?
    public var outliers: QPKOutlierRecord?
    /// SQNR and max abs error measured at write time (`affine`, when recorded).
    public var error: QuantizationErrorStats?
    public var blobs: [QPKBlobKind: QPKBlobReference]

    public init(
        info: TensorInfo, encoding: QPKEncoding, layout: QuantizationLayout? = nil, method: String? = nil,
        decision: QuantizationDecision? = nil, outliers: QPKOutlierRecord? = nil, error: QuantizationErrorStats? = nil,
        blobs: [QPKBlobKind: QPKBlobReference]
    ) {
        self.info = info
        self.encoding = encoding
        self.layout = layout
        self.method = method
        self.decision = decision
        self.outliers = outliers
        self.error = error
        self.blobs = blobs
    }

    public var bits: Int? { layout?.bits }
    public var groupSize: Int? { layout?.groupSize }
    public var scheme: QuantizationScheme? { layout?.scheme }

    /// Bytes stored for the tensor (all its blobs, padding excluded).
    public var storedByteCount: Int { blobs.values.reduce(0) { $0 + $1.length } }

    /// Same as ``storedByteCount``.
    public var storedBytes: Int { storedByteCount }

    /// Whether the tensor is stored quantized (`affine`) rather than `raw`.
    public var isQuantized: Bool { encoding == .affine }

    /// Stored bytes of one blob kind (0 when absent).
    public func storedByteCount(of kind: QPKBlobKind) -> Int { blobs[kind]?.length ?? 0 }

    /// The `rows × columns` matrix view the codes and outlier indices refer to.
    public var matrixShape: (rows: Int, columns: Int) {
        (layout?.axis ?? .last).matrixShape(of: info.shape)
    }

    /// The number of parameters kept at full precision.
    public var outlierParameterCount: Int {
        let (rows, columns) = matrixShape
        return outliers?.parameterCount(rows: rows, columns: columns) ?? 0
    }

    /// Effective bits per weight (`spec/qpk-format.md` §7): every stored byte over the parameters.
    public var bitsPerWeight: Double {
        let n = info.elementCount
        return n == 0 ? 0 : Double(storedByteCount) * 8 / Double(n)
    }
}
