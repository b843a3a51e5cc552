import Formats
import QPKCore
import Quantize

/// How one tensor of a quantized checkpoint is stored, and how much error that cost.
public struct QuantizationSummary: Sendable, Codable, Equatable {
    /// Bits per code (2, 3, 4, 8).
    public var bits: Int
    /// Columns per group (the row length for per-row quantization).
    public var groupSize: Int
    public var scheme: QuantizationScheme
    /// How scales and zero-points were chosen (`minmax`, `mse`, …).
    public var method: String
    /// `rows`, `columns` or `elements`; `nil` when the tensor has no outliers.
    public var outlierKind: OutlierSet.Kind?
    /// Parameters kept at full precision.
    public var outlierCount: Int
    /// Everything stored (codes + scales + zero-points + outliers), in bits, over the parameters.
    public var bitsPerWeight: Double
    /// The SQNR recorded at write time, in dB (`+inf` when exact), if recorded.
    public var sqnrDB: Double?
    /// The largest |x − x̂| recorded at write time, if recorded.
    public var maxAbsError: Double?
    /// Bytes stored for the tensor.
    public var storedBytes: Int
    /// The statistic that selected the outliers (e.g. `quantization_gain`) and its threshold.
    public var outlierStatistic: String?
    public var outlierThreshold: Double?
    /// The axes the groups run along.
    public var axis: QuantizationAxis = .last
    /// The whole decision the tensor was quantized with, when the file records it.
    public var decision: QuantizationDecision?
    /// How the zero-points are stored (QPK v2: `packed`, `none`; `f16` otherwise).
    public var zeroPoints: ZeroPointStorage = .float16
    /// Whether a per-column group index assigns columns to groups (QPK v2).
    public var hasGroupIndex = false
    /// Whether the codes index a codebook (QPK v2).
    public var hasCodebook = false
    /// The rotation the codes were quantized in (QPK v2), if any.
    public var transform: WeightTransform?
    /// How the group scales are coded below a per-row scale (QPK v2 §5.8), or `nil` for fp16.
    public var scaleCodes: ScaleCodes?

    /// The v2 features as a short tag for the per-tensor line (`packed-zp`, `no-zp`, `g_idx`,
    /// `codebook`, `hadamard/128`, `log-scales/8b8o` for 8-bit scale codes over 8 octaves),
    /// empty for a v1 layout.
    public var featureTags: [String] {
        var tags: [String] = []
        switch zeroPoints {
        case .float16: break
        case .packed: tags.append("packed-zp")
        case .implicit: tags.append("no-zp")
        }
        if hasGroupIndex { tags.append("g_idx") }
        if hasCodebook { tags.append("codebook") }
        if let transform { tags.append("\(transform.kind.rawValue)/\(transform.blockSize)") }
        if let scaleCodes { tags.append("log-scales/\(scaleCodes.bits)b\(scaleCodes.octaves)o") }
        return tags
    }

    /// Copies the v2 layout features of `layout`.
    mutating func setFeatures(_ layout: QuantizationLayout) {
        zeroPoints = layout.zeroPoints
        hasGroupIndex = layout.hasGroupIndex
        hasCodebook = layout.hasCodebook
        transform = layout.transform
        scaleCodes = layout.scaleCodes
    }

    public init(
        bits: Int, groupSize: Int, scheme: QuantizationScheme, method: String,
        outlierKind: OutlierSet.Kind?, outlierCount: Int, bitsPerWeight: Double,
        sqnrDB: Double?, maxAbsError: Double?, storedBytes: Int,
        outlierStatistic: String? = nil, outlierThreshold: Double? = nil
    ) {
        self.bits = bits
        self.groupSize = groupSize
        self.scheme = scheme
        self.method = method
        self.outlierKind = outlierKind
        self.outlierCount = outlierCount
        self.bitsPerWeight = bitsPerWeight
        self.sqnrDB = sqnrDB
        self.maxAbsError = maxAbsError
        self.storedBytes = storedBytes
        self.outlierStatistic = outlierStatistic
        self.outlierThreshold = outlierThreshold
    }

    /// The summary of a decoded quantized tensor.
    public init(_ tensor: QuantizedTensor) {
        let (rows, columns) = tensor.matrixShape
        self.init(
            bits: tensor.layout.bits, groupSize: tensor.layout.groupSize, scheme: tensor.layout.scheme,
            method: tensor.method, outlierKind: tensor.outliers?.kind,
            outlierCount: tensor.outliers?.parameterCount(rows: rows, columns: columns) ?? 0,
            bitsPerWeight: tensor.bitsPerWeight, sqnrDB: tensor.error?.sqnrDB,
            maxAbsError: tensor.error?.maxAbsError, storedBytes: tensor.storedByteCount,
            outlierStatistic: tensor.outliers?.statistic, outlierThreshold: tensor.outliers?.threshold)
        axis = tensor.layout.axis
        decision = tensor.decision
        setFeatures(tensor.layout)
    }

    enum CodingKeys: String, CodingKey {
        case bits, scheme, method, axis, decision
        case groupSize = "group_size"
        case outlierKind = "outlier_kind"
        case outlierCount = "outliers"
        case bitsPerWeight = "bits_per_weight"
        case sqnrDB = "sqnr_db"
        case maxAbsError = "max_abs_error"
        case storedBytes = "stored_bytes"
        case outlierStatistic = "outlier_statistic"
        case outlierThreshold = "outlier_threshold"
        case zeroPoints = "zero_points"
        case groupIndex = "group_index"
        case codebook, transform
        case scaleCodes = "scale_codes"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(bits, forKey: .bits)
        try c.encode(groupSize, forKey: .groupSize)
        try c.encode(scheme, forKey: .scheme)
        try c.encode(method, forKey: .method)
        try c.encode(outlierKind, forKey: .outlierKind)
        try c.encode(outlierCount, forKey: .outlierCount)
        try c.encode(bitsPerWeight, forKey: .bitsPerWeight)
        try c.encode(sqnrDB, forKey: .sqnrDB)
        try c.encode(maxAbsError, forKey: .maxAbsError)
        try c.encode(storedBytes, forKey: .storedBytes)
        try c.encode(outlierStatistic, forKey: .outlierStatistic)
        try c.encode(outlierThreshold, forKey: .outlierThreshold)
        try c.encode(axis.name, forKey: .axis)
        try c.encode(decision, forKey: .decision)
        try c.encode(zeroPoints, forKey: .zeroPoints)
        try c.encode(hasGroupIndex, forKey: .groupIndex)
        try c.encode(hasCodebook, forKey: .codebook)
        try c.encode(transform, forKey: .transform)
        try c.encode(scaleCodes, forKey: .scaleCodes)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bits = try c.decode(Int.self, forKey: .bits)
        groupSize = try c.decode(Int.self, forKey: .groupSize)
        scheme = try c.decode(QuantizationScheme.self, forKey: .scheme)
        method = try c.decode(String.self, forKey: .method)
        outlierKind = try c.decodeIfPresent(OutlierSet.Kind.self, forKey: .outlierKind)
        outlierCount = try c.decode(Int.self, forKey: .outlierCount)
        bitsPerWeight = try c.decode(Double.self, forKey: .bitsPerWeight)
        sqnrDB = try c.decodeIfPresent(Double.self, forKey: .sqnrDB)
        maxAbsError = try c.decodeIfPresent(Double.self, forKey: .maxAbsError)
        storedBytes = try c.decode(Int.self, forKey: .storedBytes)
        outlierStatistic = try c.decodeIfPresent(String.self, forKey: .outlierStatistic)
        outlierThreshold = try c.decodeIfPresent(Double.self, forKey: .outlierThreshold)
        axis = QuantizationAxis(name: try c.decode(String.self, forKey: .axis)) ?? .last
        decision = try c.decodeIfPresent(QuantizationDecision.self, forKey: .decision)
        zeroPoints = try c.decodeIfPresent(ZeroPointStorage.self, forKey: .zeroPoints) ?? .float16
        hasGroupIndex = try c.decodeIfPresent(Bool.self, forKey: .groupIndex) ?? false
        hasCodebook = try c.decodeIfPresent(Bool.self, forKey: .codebook) ?? false
        transform = try c.decodeIfPresent(WeightTransform.self, forKey: .transform)
        scaleCodes = try c.decodeIfPresent(ScaleCodes.self, forKey: .scaleCodes)
    }
}

/// A reader that knows how its tensors are quantized without decoding them (the QPK reader).
/// File-wide facts of a quantized checkpoint: how it was made and from what.
public struct QuantizedFileSummary: Sendable, Codable, Equatable {
    /// A source checkpoint file: name, size and header SHA-256, as QPK provenance records it.
    public typealias Source = QPKProvenance.Source

    /// The recipe, as written in the file (numbers as numbers).
    public var recipe: [String: QPKJSONValue]
    public var sources: [Source]
    public var qpkVersion: String
    public var createdBy: String
    /// Parameters kept at full precision, and parameters quantized, over the whole file.
    public var outlierParameters: Int
    public var quantizedParameters: Int
    /// Where the outlier values came from when they were replaced after quantization (tuned).
    public var tunedOutliersFrom: QPKProvenance.TunedOutliers?

    public init(
        recipe: [String: QPKJSONValue], sources: [Source], qpkVersion: String, createdBy: String,
        outlierParameters: Int, quantizedParameters: Int, tunedOutliersFrom: QPKProvenance.TunedOutliers? = nil
    ) {
        self.tunedOutliersFrom = tunedOutliersFrom
        self.recipe = recipe
        self.sources = sources
        self.qpkVersion = qpkVersion
        self.createdBy = createdBy
        self.outlierParameters = outlierParameters
        self.quantizedParameters = quantizedParameters
    }

    enum CodingKeys: String, CodingKey {
        case recipe, sources
        case qpkVersion = "qpk_version"
        case createdBy = "created_by"
        case outlierParameters = "outlier_parameters"
        case quantizedParameters = "quantized_parameters"
        case tunedOutliersFrom = "tuned_outliers_from"
    }
}

public protocol QuantizationInfoProviding: Sendable {
    /// The file-wide recipe and provenance, if the format records them.
    func quantizedFileSummary() -> QuantizedFileSummary?

    /// The quantization of tensor `name`, or `nil` if it is stored unquantized.
    func quantizationSummary(for name: String) -> QuantizationSummary?

    /// The element type the file stores for `name` when it has no qpk dtype (GGUF: `Q4_K`, …);
    /// `nil` shows the dtype.
    func storedTypeName(for name: String) -> String?
}

extension QuantizationInfoProviding {
    public func quantizedFileSummary() -> QuantizedFileSummary? { nil }
    public func storedTypeName(for name: String) -> String? { nil }
}
