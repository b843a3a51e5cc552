/// The overall quantization method.
public enum QuantizationMethod: String, Sendable, Codable, CaseIterable {
    /// Plain round-to-nearest with the chosen scale search; no outliers unless asked for.
    case rtn
    /// PreQuant (Gong et al. 2023): task-agnostic quantization that keeps an outlier set at full
    /// precision and records it, so a later parameter-efficient fine-tuning can train exactly it.
    case prequant
    /// GPTQ (Frantar et al. 2022): calibrated, column-by-column rounding with error feedback through
    /// the inverse Hessian of the layer's inputs (Quantize's `GPTQ`; spec/quantization.md §11).
    case gptq
    /// BoA (Kim et al. 2025): GPTQ with attention-aware Hessians for the query, key and value
    /// projections, whose output rows interact through the attention (Quantize's `BoA`;
    /// spec/quantization.md §12). The other linear layers of a BoA conversion record `gptq`.
    case boa
}

/// How each group's scale (and zero-point) are chosen.
public enum ScaleSearch: String, Sendable, Codable, CaseIterable {
    /// The group's minimum and maximum map to the end codes.
    case minmax
    /// Grid search over clipped ranges, keeping the one with the least squared error.
    case mse
    /// Half-quadratic zero-point (affine) or scale (symmetric) optimization, data-free (HQQ).
    case hqq
}

/// Where per-column error weights come from (spec/quantization.md §10).
public enum ImportanceSource: String, Sendable, Codable, CaseIterable {
    /// Every weight counts the same: the fit minimises the plain weight error.
    case none
    /// Data-free: each input column is weighted by the second moment of the activation it
    /// multiplies, estimated from the model's own normalisation layers.
    case norm
    /// Calibrated: each input column is weighted by the mean x² of its activation measured on
    /// calibration text (what GPTQ's Hessian diagonal holds); set by the calibrated pipeline, not
    /// a choice of the data-free one.
    case calibration
}

/// Which values a group's zero-point may take.
public enum ZeroPointDomain: String, Sendable, Codable, CaseIterable {
    /// Any fp16 value (QPK, MLX): the fit's optimum.
    case float16
    /// An integer code in `[1, 2^bits − 1]`: GPTQ's integer zero-points, whose v1 checkpoints
    /// store `zero − 1` in `bits` bits (so zero 0 cannot be stored).
    case gptqInteger = "gptq_integer"
    /// An integer code in `[0, 2^bits − 1]`, stored packed in `bits` bits (QPK v2
    /// `zero_points: "packed"`, spec/qpk-format.md §5.3).
    case packed
    /// Not stored: `2^(bits−1)`, the symmetric scheme's zero-point (QPK v2 `zero_points: "none"`).
    case implicit = "none"

    /// `zero` moved into the domain for `bits`-bit codes (rounded half to even for the integer
    /// domains).
    public func constrain(_ zero: Float, bits: Int) -> Float {
        switch self {
        case .float16: zero
        case .gptqInteger: min(max((zero + 12_582_912) - 12_582_912, 1), Float((1 << bits) - 1))
        case .packed: min(max((zero + 12_582_912) - 12_582_912, 0), Float((1 << bits) - 1))
        case .implicit: Float(1 << (bits - 1))
        }
    }

    /// Whether the zero-points are whole numbers (the fit then re-fits the scale for the rounded
    /// zero-point).
    public var isInteger: Bool { self != .float16 }

    /// How QPK stores zero-points of this domain: GPTQ's integers stay fp16 (as v1 files have
    /// them), `packed` and `none` are the v2 storages.
    public var storage: ZeroPointStorage {
        switch self {
        case .float16, .gptqInteger: .float16
        case .packed: .packed
        case .implicit: .implicit
        }
    }

    /// The domain a QPK file's storage implies.
    public init(storage: ZeroPointStorage) {
        switch storage {
        case .float16: self = .float16
        case .packed: self = .packed
        case .implicit: self = .implicit
        }
    }
}

/// Everything that decides how one tensor is quantized, resolved once per tensor by the planner
/// and read by everyone after it: the quantizer, the size estimate of a dry run, the QPK header
/// (spec/qpk-format.md §4.3), the convert JSON and inspect (spec/json-schemas.md).
///
/// A file-wide ``QuantizationRecipe`` (in Quantize) is what the user asked for; a decision is what
/// one tensor gets: the recipe with its axis resolved from the weight layout, its `auto` outlier
/// kind resolved, and — under `--allocate` — its own bit width and bits-per-weight cap.
///
/// It owns the byte accounting: ``outlierLimit(rows:columns:)`` is the number of outlier indices
/// the quantizer may keep, and ``estimatedBytes(for:)`` the largest size the tensor can take, both
/// from ``QuantizedByteCount``.
public struct QuantizationDecision: Sendable, Hashable, Codable {
    public var method: QuantizationMethod
    public var scheme: QuantizationScheme
    /// Bits per code: 2, 3, 4 or 8.
    public var bits: Int
    /// Columns per group, or `nil` for one group per row.
    public var groupSize: Int?
    /// The axes the groups run along (the layer's input dimension).
    public var axis: QuantizationAxis
    public var scaleSearch: ScaleSearch
    public var outlierKind: OutlierSet.Kind
    /// The fraction of the tensor's parameters that may stay at full precision (0 … 0.5).
    public var outlierBudget: Double
    /// The cap on the tensor's effective bits per weight (codes, scales, zero-points and
    /// outliers): outliers are dropped to stay under it. `nil`: no cap.
    public var maxBitsPerWeight: Double?
    /// The source of per-column error weights for the MSE fit.
    public var importance: ImportanceSource
    /// The values a zero-point may take (integers for the GPTQ layout and packed QPK v2).
    public var zeroPoints: ZeroPointDomain = .float16
    /// The rotation to quantize in, its `blockSize` the largest block allowed: each tensor uses
    /// the largest power of two ≤ it that divides its column count, and no transform when there
    /// is none ≥ 2 (odd column counts). `nil`: no transform (spec/quantization.md §14).
    public var transform: WeightTransform?
    /// The codebook the codes index (QPK v2 §5.7), or `nil` for plain integer codes.
    public var codebook: CodebookKind?
    /// How the group scales are stored: `nil` fp16, else log-coded below a row scale (QPK v2 §5.8).
    public var scaleCodes: ScaleCodes?

    public init(
        method: QuantizationMethod, scheme: QuantizationScheme, bits: Int, groupSize: Int?,
        axis: QuantizationAxis = .last, scaleSearch: ScaleSearch, outlierKind: OutlierSet.Kind,
        outlierBudget: Double, maxBitsPerWeight: Double?, importance: ImportanceSource
    ) {
        self.method = method
        self.scheme = scheme
        self.bits = bits
        self.groupSize = groupSize
        self.axis = axis
        self.scaleSearch = scaleSearch
        self.outlierKind = outlierKind
        self.outlierBudget = outlierBudget
        self.maxBitsPerWeight = maxBitsPerWeight
        self.importance = importance
    }

    /// The JSON keys of a decision, snake_case: the one vocabulary that the QPK header (§4.3),
    /// the recipe and every `--json` share.
    public enum CodingKeys: String, CodingKey {
        case method, scheme, bits, axis, importance
        case groupSize = "group_size"
        case scaleSearch = "scale_search"
        case outlierKind = "outlier_kind"
        case outlierBudget = "outlier_budget"
        case maxBitsPerWeight = "max_bits_per_weight"
        case zeroPoints = "zero_points"
        case transform
        case groupIndex = "group_index"
        case codebook
        case scaleCodes = "scale_codes"
        /// The QPK header's informative record of how a codebook was made (`codebook` there is the
        /// layout's boolean, spec/qpk-format.md §4.3).
        case codebookKind = "codebook_kind"
    }

    /// Encodes every key, `null` where there is no value (`group_size` for per-row groups,
    /// `max_bits_per_weight` without a cap), and the axis by name.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method)
        try c.encode(scheme, forKey: .scheme)
        try c.encode(bits, forKey: .bits)
        try c.encode(groupSize, forKey: .groupSize)
        try c.encode(axis.name, forKey: .axis)
        try c.encode(scaleSearch, forKey: .scaleSearch)
        try c.encode(outlierKind, forKey: .outlierKind)
        try c.encode(outlierBudget, forKey: .outlierBudget)
        try c.encode(maxBitsPerWeight, forKey: .maxBitsPerWeight)
        try c.encode(importance, forKey: .importance)
        try c.encode(zeroPoints, forKey: .zeroPoints)
        try c.encodeIfPresent(transform, forKey: .transform)
        try c.encodeIfPresent(codebook, forKey: .codebook)
        try c.encodeIfPresent(scaleCodes, forKey: .scaleCodes)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decode(QuantizationMethod.self, forKey: .method)
        scheme = try c.decode(QuantizationScheme.self, forKey: .scheme)
        bits = try c.decode(Int.self, forKey: .bits)
        groupSize = try c.decodeIfPresent(Int.self, forKey: .groupSize)
        let axisName = try c.decode(String.self, forKey: .axis)
        guard let axis = QuantizationAxis(name: axisName) else {
            throw DecodingError.dataCorruptedError(forKey: .axis, in: c, debugDescription: "unknown axis '\(axisName)'")
        }
        self.axis = axis
        scaleSearch = try c.decode(ScaleSearch.self, forKey: .scaleSearch)
        outlierKind = try c.decode(OutlierSet.Kind.self, forKey: .outlierKind)
        outlierBudget = try c.decode(Double.self, forKey: .outlierBudget)
        maxBitsPerWeight = try c.decodeIfPresent(Double.self, forKey: .maxBitsPerWeight)
        importance = try c.decode(ImportanceSource.self, forKey: .importance)
        zeroPoints = try c.decodeIfPresent(ZeroPointDomain.self, forKey: .zeroPoints) ?? .float16
        transform = try c.decodeIfPresent(WeightTransform.self, forKey: .transform)
        codebook = try? c.decodeIfPresent(CodebookKind.self, forKey: .codebook)
        scaleCodes = try? c.decodeIfPresent(ScaleCodes.self, forKey: .scaleCodes)
    }

    /// The layout of `info` under this decision (per-row groups span the whole row).
    public func layout(for info: TensorInfo) -> QuantizationLayout {
        layout(columns: axis.matrixShape(of: info.shape).columns)
    }

    /// The layout of a matrix with `columns` columns: the zero-point storage of ``zeroPoints``,
    /// and the ``transform`` with this matrix's block size (none when no block fits).
    public func layout(columns: Int) -> QuantizationLayout {
        QuantizationLayout(
            scheme: scheme, bits: bits, groupSize: max(1, groupSize ?? columns), axis: axis,
            zeroPoints: zeroPoints.storage, hasCodebook: codebook != nil,
            transform: transform.flatMap { t in
                WeightTransform.largestBlock(atMost: t.blockSize, dividing: columns).map {
                    WeightTransform(kind: t.kind, blockSize: $0)
                }
            },
            scaleCodes: scaleCodes)
    }

    /// The budget actually spent, clamped to 0 … 0.5.
    public var effectiveOutlierBudget: Double { max(0, min(outlierBudget, 0.5)) }

    /// The most outlier indices (rows, columns or elements, by ``outlierKind``) a
    /// `rows × columns` matrix may keep: the budget's share of its parameters, cut so that codes,
    /// scales, zero-points and outliers stay within ``maxBitsPerWeight``.
    public func outlierLimit(rows: Int, columns: Int) -> Int {
        let count = rows * columns
        let budget = effectiveOutlierBudget
        guard count > 0, budget > 0 else { return 0 }
        let allowedParameters = Int((budget * Double(count)).rounded(.down))
        var limit: Int
        switch outlierKind {
        case .elements: limit = allowedParameters
        case .rows: limit = min(allowedParameters / columns, rows)
        case .columns: limit = min(allowedParameters / rows, columns)
        }
        if let cap = maxBitsPerWeight {
            let layout = layout(columns: columns)
            let fixed = QuantizedByteCount.codesScalesZeros(layout: layout, rows: rows, columns: columns)
            let spare = max(0, Int((cap * Double(count) / 8).rounded(.down)) - fixed)
            limit = min(limit, spare / QuantizedByteCount.bytesPerOutlier(outlierKind, rows: rows, columns: columns))
        }
        return max(0, limit)
    }

    /// The most bytes `info` can take under this decision: codes, scales and zero-points, plus
    /// outliers up to ``outlierLimit(rows:columns:)`` (the quantizer may keep fewer).
    public func estimatedBytes(for info: TensorInfo) -> Int {
        let layout = layout(for: info)
        let (rows, columns) = layout.matrixShape(of: info)
        return QuantizedByteCount.codesScalesZeros(layout: layout, rows: rows, columns: columns)
            + QuantizedByteCount.outliers(
                outlierKind, count: outlierLimit(rows: rows, columns: columns), rows: rows, columns: columns)
    }

    /// This decision for `info`, its groups widened (doubled, up to the whole row) while codes,
    /// scales, zero-points and side tables alone would exceed ``maxBitsPerWeight``; unchanged
    /// without a cap, with per-row groups, or when it fits. Narrow matrices pay more per weight for
    /// partial groups, row scales and the codebook (a 64-column tensor at groups of 20 and 8-bit
    /// scale codes: 4.75 bpw); wider groups keep the size the cap promises, and the outliers then
    /// fill what is left (spec/quantization.md §14).
    public func fitted(to info: TensorInfo) -> QuantizationDecision {
        guard let cap = maxBitsPerWeight else { return self }
        let (rows, columns) = axis.matrixShape(of: info.shape)
        let count = rows * columns
        guard count > 0 else { return self }
        var fitted = self
        while let groupSize = fitted.groupSize, groupSize < columns {
            let fixed = QuantizedByteCount.codesScalesZeros(layout: fitted.layout(columns: columns), rows: rows, columns: columns)
            guard Double(fixed * 8) > cap * Double(count) else { break }
            fitted.groupSize = groupSize * 2 >= columns ? nil : groupSize * 2  // nil: one group per row
        }
        return fitted
    }

    /// Whether this decision can take `bits`-bit codes: 2, 3, 4 or 8, and a width its codebook
    /// has (a fitted table: 2, 3 or 4).
    public func allowsBits(_ bits: Int) -> Bool {
        [2, 3, 4, 8].contains(bits) && (codebook?.supportedBits.contains(bits) ?? true)
    }

    /// The method string recorded per tensor in QPK: `"prequant+mse"`, `"rtn+minmax"`, …
    public var methodTag: String { "\(method.rawValue)+\(scaleSearch.rawValue)" }

    /// The same decision at another width, its bits-per-weight cap moved by the same amount, so
    /// that the outlier room above the codes stays the same (what `--allocate` measures and writes).
    public func withBits(_ newBits: Int) -> QuantizationDecision {
        var copy = self
        copy.bits = newBits
        copy.maxBitsPerWeight = maxBitsPerWeight.map { $0 - Double(bits) + Double(newBits) }
        return copy
    }
}
