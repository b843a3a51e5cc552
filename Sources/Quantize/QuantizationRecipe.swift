import QPKCore

/// Everything that decides how one tensor is quantized: the method, the numeric scheme, the bit
/// width, the grouping, how scales are searched and how many parameters stay at full precision.
///
/// The recipe is recorded in QPK provenance (``dictionary``), so a file says how it was made.
/// See spec/quantization.md for the algorithms and the measurements behind ``default``.
public struct QuantizationRecipe: Sendable, Codable, Hashable, CustomStringConvertible {
    public typealias Method = QuantizationMethod
    public typealias ScaleSearch = QPKCore.ScaleSearch
    public typealias Importance = ImportanceSource

    /// Which parameters the outlier budget is spent on.
    public enum OutlierKind: String, Sendable, Codable, CaseIterable {
        /// The kind measured best on MiniLM-L6 (currently ``elements``; see spec/quantization.md).
        case auto
        case rows
        case columns
        case elements

        /// The concrete kind `auto` stands for.
        public var resolved: OutlierSet.Kind {
            switch self {
            case .auto, .elements: .elements
            case .rows: .rows
            case .columns: .columns
            }
        }
    }

    public var method: Method
    public var scheme: QuantizationScheme
    /// Bits per code: 2, 3, 4 or 8.
    public var bits: Int
    /// Columns per group, or `nil` for one group per row (row-wise quantization).
    public var groupSize: Int?
    public var scaleSearch: ScaleSearch
    /// The fraction of each tensor's parameters kept at full precision (0 … 0.5).
    public var outlierBudget: Double
    public var outlierKind: OutlierKind
    /// A cap on each tensor's effective bits per weight: the outlier budget is cut so that codes,
    /// scales, zero-points and outliers together stay at or below it. `nil`: no cap.
    public var maxBitsPerWeight: Double?
    /// Per-column error weights for the MSE fit (spec/quantization.md §10); `.none` = unweighted.
    public var importance: Importance = .none
    /// The values and storage of the zero-points: `.float16` (v1), `.packed` integers or
    /// `.implicit` (symmetric only), the last two QPK v2 (spec/quantization.md §14).
    public var zeroPoints: ZeroPointDomain = .float16
    /// The rotation to quantize in (its block size the largest allowed), or `nil` (§14).
    public var transform: WeightTransform?
    /// The codebook the codes index (QPK v2), or `nil` for plain integer codes (§14).
    public var codebook: CodebookKind?
    /// How group scales are stored: `nil` fp16, else log-coded below a row scale (QPK v2, §14;
    /// codebooks with the symmetric scheme only).
    public var scaleCodes: ScaleCodes?
    /// Whether a tensor whose codes, scales and side tables alone would exceed
    /// ``maxBitsPerWeight`` gets wider groups (``QuantizationDecision/fitted(to:)``): true for the
    /// recipe's own group size, false once a caller chose one (`--group-size`), which is then
    /// kept and only the outliers are trimmed. Not recorded: each tensor's decision records the
    /// group size it got.
    public var widensGroupsToCap = true

    /// The bit widths a code can have.
    public static let supportedBits = [2, 3, 4, 8]

    /// - Parameter outlierBudget: defaults to 0.5% for `prequant` (the PreQuant paper's figure)
    ///   and 0 for `rtn`.
    public init(
        method: Method = .prequant, scheme: QuantizationScheme = .affine, bits: Int = 4,
        groupSize: Int? = 96, scaleSearch: ScaleSearch = .mse, outlierBudget: Double? = nil,
        outlierKind: OutlierKind = .auto, maxBitsPerWeight: Double? = nil, importance: Importance = .none
    ) {
        self.method = method
        self.scheme = scheme
        self.bits = bits
        self.groupSize = groupSize
        self.scaleSearch = scaleSearch
        self.outlierBudget = outlierBudget ?? (method == .prequant ? 0.005 : 0)
        self.outlierKind = outlierKind
        self.maxBitsPerWeight = maxBitsPerWeight
        self.importance = importance
    }

    private typealias Key = QuantizationDecision.CodingKeys

    /// Encodes the recipe with the decision's snake_case keys (spec/json-schemas.md): the one
    /// serialisation that the convert JSON and the QPK header's `recipe` (spec/qpk-format.md §4.5)
    /// share. Per-row groups are `"group_size": null`, no cap is `"max_bits_per_weight": null`,
    /// `auto` outliers are written as the kind they stand for, and the budget as applied.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(method, forKey: .method)
        try c.encode(scheme, forKey: .scheme)
        try c.encode(bits, forKey: .bits)
        try c.encode(groupSize, forKey: .groupSize)
        try c.encode(scaleSearch, forKey: .scaleSearch)
        try c.encode(outlierKind.resolved.rawValue, forKey: .outlierKind)
        try c.encode(effectiveOutlierBudget, forKey: .outlierBudget)
        try c.encode(maxBitsPerWeight, forKey: .maxBitsPerWeight)
        try c.encode(importance, forKey: .importance)
        // QPK v2 options, written only when used: recipes without them stay byte-identical.
        if zeroPoints != .float16 { try c.encode(zeroPoints, forKey: .zeroPoints) }
        try c.encodeIfPresent(transform, forKey: .transform)
        try c.encodeIfPresent(codebook, forKey: .codebook)
        try c.encodeIfPresent(scaleCodes, forKey: .scaleCodes)
    }

    /// Decodes what ``encode(to:)`` writes; `max_bits_per_weight` and `importance` may be absent
    /// (recipes written before they existed mean no cap and `.none`), and the QPK header's older
    /// `"group_size": "row"` means per-row groups.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        method = try c.decode(Method.self, forKey: .method)
        scheme = try c.decode(QuantizationScheme.self, forKey: .scheme)
        bits = try c.decode(Int.self, forKey: .bits)
        if let text = try? c.decode(String.self, forKey: .groupSize) {
            guard text == "row" else {
                throw DecodingError.dataCorruptedError(forKey: .groupSize, in: c, debugDescription: "group_size '\(text)'")
            }
            groupSize = nil
        } else {
            groupSize = try c.decodeIfPresent(Int.self, forKey: .groupSize)
        }
        scaleSearch = try c.decode(ScaleSearch.self, forKey: .scaleSearch)
        outlierBudget = try c.decode(Double.self, forKey: .outlierBudget)
        outlierKind = try c.decode(OutlierKind.self, forKey: .outlierKind)
        maxBitsPerWeight = try c.decodeIfPresent(Double.self, forKey: .maxBitsPerWeight)
        importance = try c.decodeIfPresent(Importance.self, forKey: .importance) ?? .none
        zeroPoints = try c.decodeIfPresent(ZeroPointDomain.self, forKey: .zeroPoints) ?? .float16
        transform = try c.decodeIfPresent(WeightTransform.self, forKey: .transform)
        codebook = try c.decodeIfPresent(CodebookKind.self, forKey: .codebook)
        scaleCodes = try c.decodeIfPresent(ScaleCodes.self, forKey: .scaleCodes)
        do {
            try validate()
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: error.description))
        }
    }

    /// The element-outlier budget that fills exactly a quarter of a bit per weight: each element
    /// outlier stores a u32 index and an f32 value, 64 bits, so 0.25 / 64 = 0.390625%.
    public static let quarterBitElementBudget = 0.25 / 64

    /// The best measured data-free recipe at 4 bits within 4.5 effective bits per weight
    /// (spec/quantization.md §7, §14): 4-bit codes indexing a table fitted to each tensor
    /// (``CodebookKind/lloyd``), one signed scale per group of 20 stored as an 8-bit code on a
    /// 6-octave logarithmic grid below an fp16 row scale (4.44 bpw of codes and scales on
    /// MiniLM-L6), scales searched for the least error weighted by the data-free input importance
    /// (§10), and PreQuant's sparse element outliers — its 0.5% budget, capped so the tensor stays
    /// at 4.5 bpw. Mean embedding cosine on MiniLM-L6 0.985, against 0.976 for the uniform affine
    /// grid of ``uniform(bits:)`` at the same size. Writes QPK version 2.
    public static let `default` = codebook(bits: 4, groupSize: 20, scaleCodes: ScaleCodes(bits: 8, octaves: 6))

    /// The data-free default at `bits` bits, its cap at `bits + 0.5` bpw: the fitted-table recipe
    /// of ``default`` for 2, 3 and 4 bits (at 2 and 3 bits with groups of 16 and 6-bit scale codes
    /// over 6 octaves, the best measured: spec/quantization.md §14), the uniform grid of
    /// ``uniform(bits:)`` for 8 bits, where a table has nothing to gain.
    public static func prequant(bits: Int) -> QuantizationRecipe {
        switch bits {
        case 4: .default
        case 2, 3: codebook(bits: bits, groupSize: 16, scaleCodes: ScaleCodes(bits: 6, octaves: 6))
        default: uniform(bits: bits)
        }
    }

    /// PreQuant on a uniform affine grid: group 96, fp16 scale and zero-point (4.33 bpw of codes,
    /// scales and zeros at 4 bits), MSE-optimal clipping weighted by the data-free importance
    /// (§10), element outliers (0.5%, capped at `bits + 0.5` bpw). The default before QPK v2's
    /// fitted tables (`--codebook none`), the 8-bit default, and what `--layout` exports start
    /// from; writes QPK version 1.
    /// Measured in spec/quantization.md §7 and §10.
    public static func uniform(bits: Int) -> QuantizationRecipe {
        QuantizationRecipe(
            method: .prequant, scheme: .affine, bits: bits, groupSize: 96, scaleSearch: .mse,
            outlierBudget: 0.005, outlierKind: .elements, maxBitsPerWeight: Double(bits) + 0.5, importance: .norm)
    }

    /// PreQuant with a fitted table (``CodebookKind/lloyd``) and signed, log-coded group scales:
    /// symmetric, no zero-points, MSE search weighted by the data-free importance, element
    /// outliers (0.5%, capped at `bits + 0.5` bpw).
    static func codebook(bits: Int, groupSize: Int, scaleCodes: ScaleCodes) -> QuantizationRecipe {
        var recipe = QuantizationRecipe(
            method: .prequant, scheme: .symmetric, bits: bits, groupSize: groupSize, scaleSearch: .mse,
            outlierBudget: 0.005, outlierKind: .elements, maxBitsPerWeight: Double(bits) + 0.5, importance: .norm)
        recipe.zeroPoints = .implicit
        recipe.codebook = .lloyd
        recipe.scaleCodes = scaleCodes
        return recipe
    }

    /// Plain round-to-nearest: min/max scales, no outliers. `rtn(bits: 4, groupSize: 64)` is
    /// the foundation's recipe and the MLX-style peer.
    public static func rtn(bits: Int, groupSize: Int? = 64, scheme: QuantizationScheme = .affine) -> QuantizationRecipe {
        QuantizationRecipe(
            method: .rtn, scheme: scheme, bits: bits, groupSize: groupSize, scaleSearch: .minmax,
            outlierBudget: 0, outlierKind: .auto)
    }

    /// The decision for one tensor whose groups run along `axis`: this recipe with its `auto`
    /// outlier kind resolved.
    public func decision(axis: QuantizationAxis = .last) -> QuantizationDecision {
        var decision = QuantizationDecision(
            method: method, scheme: scheme, bits: bits, groupSize: groupSize, axis: axis,
            scaleSearch: scaleSearch, outlierKind: outlierKind.resolved,
            outlierBudget: effectiveOutlierBudget, maxBitsPerWeight: maxBitsPerWeight, importance: importance)
        decision.zeroPoints = zeroPoints
        decision.transform = transform
        decision.codebook = codebook
        decision.scaleCodes = scaleCodes
        return decision
    }

    /// Whether groups span whole rows.
    public var isRowWise: Bool { groupSize == nil }

    /// The budget actually spent: `rtn` keeps no outliers unless a budget is set explicitly.
    public var effectiveOutlierBudget: Double { max(0, min(outlierBudget, 0.5)) }

    /// One line, e.g. `prequant affine 4-bit g128 mse outliers=elements 0.39%`.
    public var description: String {
        let group = groupSize.map { "g\($0)" } ?? "per-row"
        var text = "\(method.rawValue) \(scheme.rawValue) \(bits)-bit \(group) \(scaleSearch.rawValue)"
        if effectiveOutlierBudget > 0 {
            text += " outliers=\(outlierKind.resolved.rawValue) \(Self.formatPercent(effectiveOutlierBudget))"
            if let cap = maxBitsPerWeight { text += " ≤\(Self.formatNumber(cap))bpw" }
        }
        if importance != .none { text += " importance=\(importance.rawValue)" }
        if zeroPoints != .float16 { text += " zero-points=\(zeroPoints.rawValue)" }
        if let transform { text += " \(transform.kind.rawValue)≤\(transform.blockSize)" }
        if let codebook { text += " codebook=\(codebook.rawValue)" }
        if let scaleCodes { text += " scale-codes=\(scaleCodes.bits)b/\(scaleCodes.octaves)oct" }
        return text
    }

    /// A recipe that cannot be applied.
    public enum Invalid: Error, CustomStringConvertible, Sendable, Equatable {
        case bits(Int)
        case groupSize(Int)
        case outlierBudget(Double)
        case maxBitsPerWeight(Double)
        case zeroPoints(ZeroPointDomain, QuantizationScheme)
        case transformBlock(Int)
        case codebook(CodebookKind, Int)
        case codebookSearch(ScaleSearch)
        case scaleCodes(ScaleCodes)
        case scaleCodesNeedCodebook
        case fittedCodebookScheme

        public var description: String {
            switch self {
            case let .bits(b):
                "recipe: bits \(b) is not supported; use --bits 2, 3, 4 or 8"
            case let .groupSize(g):
                "recipe: group size \(g) must be at least 1; use e.g. --group-size 64, 128 or 'row'"
            case let .outlierBudget(b):
                "recipe: outlier budget \(b) is outside 0…0.5; use e.g. --outlier-budget 0.5%"
            case let .maxBitsPerWeight(b):
                "recipe: bits-per-weight cap \(b) is not a positive number; use e.g. 4.5"
            case let .zeroPoints(domain, scheme):
                "recipe: zero-points '\(domain.rawValue)' do not go with the \(scheme.rawValue) scheme; --zero-points none needs --scheme symmetric"
            case let .codebook(kind, bits):
                "recipe: the \(kind.rawValue) codebook is for \(kind.supportedBits.map(String.init).joined(separator: ", "))-bit codes, not \(bits); use --bits \(kind.supportedBits.last!)"
            case let .codebookSearch(search):
                "recipe: --scale-search \(search.rawValue) does not apply to a codebook with the symmetric scheme (its signed scales are searched by minmax or mse)"
            case let .scaleCodes(codes):
                "recipe: scale codes of \(codes.bits) bits over \(codes.octaves) octaves are out of range; use --scale-bits 2…8 and --scale-octaves 1…32"
            case .fittedCodebookScheme:
                "recipe: --codebook lloyd fits a table for signed group scales; it needs --scheme symmetric"
            case .scaleCodesNeedCodebook:
                "recipe: --scale-bits applies to codebook quantization with the symmetric scheme (--codebook lloyd|nf4 --scheme symmetric)"
            case let .transformBlock(b):
                "recipe: transform block \(b) is not a power of two ≥ 2; use e.g. --transform-block 128"
            }
        }
    }

    /// Throws if the bits, group size or budget are out of range.
    public func validate() throws(Invalid) {
        guard Self.supportedBits.contains(bits) else { throw .bits(bits) }
        if let g = groupSize, g < 1 { throw .groupSize(g) }
        guard outlierBudget.isFinite, outlierBudget >= 0, outlierBudget <= 0.5 else { throw .outlierBudget(outlierBudget) }
        if let cap = maxBitsPerWeight, !(cap.isFinite && cap > 0) { throw .maxBitsPerWeight(cap) }
        if zeroPoints == .implicit, scheme != .symmetric { throw .zeroPoints(zeroPoints, scheme) }
        if let b = transform?.blockSize, !(b >= 2 && b & (b - 1) == 0) { throw .transformBlock(b) }
        if let codebook, !codebook.supportedBits.contains(bits) { throw .codebook(codebook, bits) }
        if codebook != nil, scheme == .symmetric, scaleSearch == .hqq { throw .codebookSearch(scaleSearch) }
        if codebook == .lloyd, scheme != .symmetric { throw .fittedCodebookScheme }
        if let scaleCodes {
            guard scaleCodes.isValid else { throw .scaleCodes(scaleCodes) }
            guard codebook != nil, scheme == .symmetric else { throw .scaleCodesNeedCodebook }
        }
    }

    /// Parses a budget as written on the command line: `"0.5%"` → 0.005, `"0.005"` → 0.005,
    /// `"0"` → 0. Returns `nil` for anything else or for values outside 0…0.5.
    public static func parseBudget(_ text: String) -> Double? {
        var body = Substring(text)
        while let c = body.first, c == " " || c == "\t" { body.removeFirst() }
        while let c = body.last, c == " " || c == "\t" { body.removeLast() }
        var divisor = 1.0
        if body.hasSuffix("%") {
            body = body.dropLast()
            divisor = 100
        }
        guard !body.isEmpty, let value = Double(body), value.isFinite else { return nil }
        let fraction = value / divisor
        return (0...0.5).contains(fraction) ? fraction : nil
    }

    /// Parses a group size as written on the command line: a positive integer, or `row`/`per-row`
    /// for row-wise groups (returned as `.some(nil)`). `nil` if invalid.
    public static func parseGroupSize(_ text: String) -> Int?? {
        let t = text.lowercased()
        if t == "row" || t == "per-row" || t == "rowwise" || t == "row-wise" { return .some(nil) }
        guard let g = Int(t), g >= 1 else { return nil }
        return .some(g)
    }

    static func formatPercent(_ fraction: Double) -> String {
        formatNumber(fraction * 100) + "%"
    }

    static func formatNumber(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        var text = String(rounded)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }
}
