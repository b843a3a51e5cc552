import Foundation

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

/// How a quantized tensor's zero-points are stored (spec/qpk-format.md §5.3). In memory they are
/// always ``QuantizedTensor/zeros`` (fp16, one per group); the storage only says what the file
/// keeps of them.
public enum ZeroPointStorage: String, Sendable, Hashable, Codable, CaseIterable {
    /// One IEEE binary16 value per group: any zero-point (QPK v1).
    case float16 = "f16"
    /// One unsigned `bits`-bit integer per group in `[0, 2^bits − 1]`, packed like the codes
    /// (QPK v2).
    case packed
    /// Nothing stored: `scheme = symmetric`, every zero-point is `2^(bits−1)` (QPK v2).
    case implicit = "none"
}

/// An orthogonal transform of a tensor's matrix view applied before quantization
/// (spec/qpk-format.md §5.6): the codes encode `M̃ = M·D·H` and readers rebuild `M̂ = dequant(M̃)·H·D`.
///
/// `D` is the diagonal of ±1 signs stored per tensor (``QuantizedTensor/transformSigns``), `H` the
/// block-diagonal matrix of `C / blockSize` Sylvester–Hadamard matrices of order `blockSize`, each
/// scaled by `1/√blockSize` (orthonormal and symmetric, so `H·H = I`). QuaRot (Ashkboos et al.
/// 2024) and QuIP# (Tseng et al. 2024) rotate weights this way to spread outliers over a block.
public struct WeightTransform: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// Random-sign Walsh–Hadamard rotation.
        case hadamard
    }

    public var kind: Kind
    /// Columns per Hadamard block: a power of two ≥ 2 that divides the column count.
    public var blockSize: Int

    public enum CodingKeys: String, CodingKey {
        case kind
        case blockSize = "block_size"
    }

    public init(kind: Kind = .hadamard, blockSize: Int) {
        self.kind = kind
        self.blockSize = blockSize
    }

    /// Whether `blockSize` is a power of two ≥ 2 dividing `columns` (> 0): rule 28.
    public static func isValidBlock(_ blockSize: Int, columns: Int) -> Bool {
        blockSize >= 2 && blockSize & (blockSize - 1) == 0 && columns > 0 && columns % blockSize == 0
    }

    /// The largest power of two `B` with `2 ≤ B ≤ cap` that divides `columns`, or `nil` (odd or
    /// zero `columns`, or `cap < 2`).
    public static func largestBlock(atMost cap: Int, dividing columns: Int) -> Int? {
        guard columns > 0, cap >= 2 else { return nil }
        var block = 1
        while block * 2 <= cap, columns % (block * 2) == 0 { block *= 2 }
        return block >= 2 ? block : nil
    }
}

/// The table of code values a quantizer writes as a QPK v2 codebook (spec/qpk-format.md §5.7):
/// code `q` then stands for `codebook[q]`, so `x̂ = (codebook[q] − z)·s`.
public enum CodebookKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// NormalFloat4 (QLoRA, Dettmers et al. 2023): the 16 quantiles of a standard normal,
    /// normalised to `[−1, 1]` with an exact 0, for 4-bit codes.
    case nf4
    /// One table per tensor fitted to its group-normalised weights by weighted Lloyd–Max
    /// iterations (k-means in one dimension), started from the NormalFloat table of the code
    /// width (spec/quantization.md §14): 2, 3 or 4-bit codes.
    case lloyd

    /// The NF4 levels in `[−1, 1]`, ascending (the QLoRA paper's table).
    static let nf4Levels: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0,
    ]

    /// The NormalFloat table of `bits` bits in `[−1, 1]`, ascending: QLoRA's construction
    /// (`2^(bits−1)` positive and `2^(bits−1) − 1` negative normal quantiles, offset 0.9677, and an
    /// exact 0, scaled so the largest magnitude is 1). NF4 is the paper's table; NF3 and NF2 were
    /// computed the same way (scipy's `norm.ppf`, bench/quality/research/recipes.py `nf_table`).
    public static func normalFloatLevels(bits: Int) -> [Float] {
        switch bits {
        case 2: [-1.0, 0, 0.33791519352165506, 1.0]
        case 3: [-1.0, -0.4786291601159111, -0.21714181782574396, 0, 0.16093017270493618,
                 0.33791519352165506, 0.562616970075237, 1.0]
        default: nf4Levels
        }
    }

    /// The code widths the table exists for.
    public var supportedBits: [Int] {
        switch self {
        case .nf4: [4]
        case .lloyd: [2, 3, 4]
        }
    }

    /// The NF4 codebook for `scheme`, ascending, in code units: affine maps `[−1, 1]` onto the code
    /// range `[0, 2^bits − 1]` (`7.5 + 7.5·v`), so min-max fits put a group's ends on the first
    /// and last entries; symmetric maps it onto `[0, 2^bits]` around the fixed zero-point
    /// `2^(bits−1)` (`8 + 8·v`), so `x̂ = 8·v·s` is QLoRA's absmax scaling with `s = absmax/8`.
    public func values(scheme: QuantizationScheme) -> [Float16] {
        let half: Float = scheme == .affine ? 7.5 : 8
        return Self.nf4Levels.map { Float16(half + half * $0) }
    }
}

/// Group scales stored as `bits`-bit codes on a signed logarithmic grid below one fp16 scale per
/// row (spec/qpk-format.md §5.8), the two-level scale storage of llama.cpp's k-quants with a
/// logarithmic instead of a linear second level: code `u` of row `r` stands for
/// `±d_r · 2^(−k·octaves/k_max)`, `k = u mod 2^(bits−1)`, the sign in the top bit.
///
/// At 8 bits and 8 octaves the grid's steps are 4.5 % apart, fine enough that the scale search
/// loses almost nothing (spec/quantization.md §14), for a quarter of an fp16 scale's bits.
public struct ScaleCodes: Sendable, Hashable, Codable {
    /// Bits per group scale code, sign included: 2 … 8.
    public var bits: Int
    /// Octaves the magnitudes span below the row scale: 1 … 32.
    public var octaves: Int

    public static let allowedBits = 2...8
    public static let allowedOctaves = 1...32

    public init(bits: Int, octaves: Int) {
        self.bits = bits
        self.octaves = octaves
    }

    /// Whether `bits` and `octaves` are in range (spec/qpk-format.md rule 31).
    public var isValid: Bool { Self.allowedBits.contains(bits) && Self.allowedOctaves.contains(octaves) }

    /// The largest magnitude step `k_max = 2^(bits−1) − 1`.
    public var largestStep: Int { (1 << (bits - 1)) - 1 }

    /// The magnitude table `m[k]`, `k = 0 … k_max`: the binary32 value nearest to
    /// `2^(−k·octaves/k_max)`, computed in binary64 and rounded once (§5.8).
    public var magnitudes: [Float] {
        let kMax = largestStep
        return (0...kMax).map { k in
            k == 0 ? 1 : Float(Foundation.exp2(-Double(k) * Double(octaves) / Double(kMax)))
        }
    }

    /// The scale code `u` stands for under the row scale `rowScale`, with `magnitudes` from
    /// ``magnitudes`` (passed in so hot loops compute the table once).
    @inline(__always)
    public func scale(code: UInt8, rowScale: Float, magnitudes: [Float]) -> Float {
        let signBit = UInt8(1) << (bits - 1)
        let magnitude = rowScale * magnitudes[Int(code & (signBit - 1))]
        return code & signBit != 0 ? -magnitude : magnitude
    }

    /// The code whose scale is nearest to `scale` on the logarithmic grid below `rowScale`
    /// (`k = clamp(round(−log2(|scale| / rowScale) · k_max / octaves), 0, k_max)`, half away
    /// from zero); magnitudes above the row scale take `k = 0`, below the grid `k_max`.
    public func code(for scale: Float, rowScale: Float) -> UInt8 {
        let kMax = largestStep
        let signBit = UInt8(1) << (bits - 1)
        let sign: UInt8 = scale < 0 ? signBit : 0
        guard rowScale > 0, scale != 0, scale.isFinite else { return sign | UInt8(kMax) }
        let steps = -Foundation.log2(Double(abs(scale)) / Double(rowScale)) * Double(kMax) / Double(octaves)
        let k = steps.isNaN ? kMax : Int(max(0, min(Double(kMax), steps.rounded())))
        return sign | UInt8(k)
    }
}

/// How the codes of a quantized tensor are laid out.
///
/// `scheme`, `bits`, `groupSize` and `axis` are the v1 layout; ``zeroPoints``, ``hasGroupIndex``,
/// ``hasCodebook`` and ``transform`` are the QPK v2 features (spec/qpk-format.md §5.3, §5.5–§5.7),
/// whose data a ``QuantizedTensor`` carries.
public struct QuantizationLayout: Sendable, Hashable, Codable {
    public var scheme: QuantizationScheme
    /// Bits per code: 2, 3, 4 or 8.
    public var bits: Int
    /// Columns per group. Equal to the column count for per-row quantization.
    public var groupSize: Int
    /// The axes the groups run along.
    public var axis: QuantizationAxis
    /// How the zero-points are stored (`.float16` in v1).
    public var zeroPoints: ZeroPointStorage = .float16
    /// Whether a per-column group index says which group each column belongs to (GPTQ's `g_idx`);
    /// `false`: column `c` is in group `c / groupSize`.
    public var hasGroupIndex = false
    /// Whether a code `q` stands for `codebook[q]` (a `2^bits`-entry fp16 table) instead of `q`.
    public var hasCodebook = false
    /// The rotation applied before quantization, if any.
    public var transform: WeightTransform?
    /// How the group scales are stored: `nil` one fp16 value per group (v1), else log-coded
    /// below one fp16 scale per row (v2, §5.8).
    public var scaleCodes: ScaleCodes?

    public init(
        scheme: QuantizationScheme, bits: Int, groupSize: Int, axis: QuantizationAxis = .last,
        zeroPoints: ZeroPointStorage = .float16, hasGroupIndex: Bool = false, hasCodebook: Bool = false,
        transform: WeightTransform? = nil, scaleCodes: ScaleCodes? = nil
    ) {
        self.scaleCodes = scaleCodes
        self.scheme = scheme
        self.bits = bits
        self.groupSize = groupSize
        self.axis = axis
        self.zeroPoints = zeroPoints
        self.hasGroupIndex = hasGroupIndex
        self.hasCodebook = hasCodebook
        self.transform = transform
    }

    /// Whether the layout uses a QPK v2 feature (so a file holding it is version 2, §2).
    public var requiresVersion2: Bool {
        zeroPoints != .float16 || hasGroupIndex || hasCodebook || transform != nil || scaleCodes != nil
    }

    /// Whether dequantizing needs more than `(q − z)·s` with `g = c / groupSize` (group index,
    /// codebook or transform); the zero-point and scale storage do not matter once decoded.
    public var needsGeneralDecoding: Bool { hasGroupIndex || hasCodebook || transform != nil }

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

    /// Calls `body` with the flat row-major index `r·columns + c` of every parameter covered, in a
    /// tensor of `rows` × `columns`.
    public func forEachCoveredElement(rows: Int, columns: Int, _ body: (Int) -> Void) {
        for index in indices {
            switch kind {
            case .elements: body(Int(index))
            case .rows: for c in 0..<columns { body(Int(index) * columns + c) }
            case .columns: for r in 0..<rows { body(r * columns + Int(index)) }
            }
        }
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
    /// With ``QuantizationLayout/hasGroupIndex``: one group number per column of the matrix view
    /// (`< groupsPerRow`, at most `groupSize` columns per group), else `nil`.
    public var groupIndex: [UInt32]?
    /// With ``QuantizationLayout/hasCodebook``: the `2^bits` finite values the codes stand for,
    /// else `nil`.
    public var codebook: [Float16]?
    /// With a ``QuantizationLayout/transform``: the column signs `D`, `ceil(C/8)` bytes, bit `c`
    /// (LSB-first) set for sign −1 of column `c`; else `nil`.
    public var transformSigns: [UInt8]?
    /// With ``QuantizationLayout/scaleCodes``: one unpacked scale code per group, in the order of
    /// ``scales`` (which is then empty), and ``rowScales``; else `nil`.
    public var scaleCodes: [UInt8]?
    /// With ``QuantizationLayout/scaleCodes``: one fp16 scale `d_r` per row of the matrix view.
    public var rowScales: [Float16]?

    public init(
        info: TensorInfo, layout: QuantizationLayout, codes: [UInt8], scales: [Float16],
        zeros: [Float16], outliers: OutlierSet? = nil, error: QuantizationErrorStats? = nil,
        method: String, decision: QuantizationDecision? = nil, groupIndex: [UInt32]? = nil,
        codebook: [Float16]? = nil, transformSigns: [UInt8]? = nil, scaleCodes: [UInt8]? = nil,
        rowScales: [Float16]? = nil
    ) {
        self.scaleCodes = scaleCodes
        self.rowScales = rowScales
        self.decision = decision
        self.groupIndex = groupIndex
        self.codebook = codebook
        self.transformSigns = transformSigns
        self.info = info
        self.layout = layout
        self.codes = codes
        self.scales = scales
        self.zeros = zeros
        self.outliers = outliers
        self.error = error
        self.method = method
    }

    /// The `rows × groupsPerRow` group scales as f32, in row-major (row, group) order: the fp16
    /// ``scales`` widened, or with log-coded scales (spec/qpk-format.md §5.8) each code decoded
    /// under its row's scale. `nil` when the arrays do not match `rows × groupsPerRow` (a
    /// malformed tensor).
    public func decodedScales(rows: Int, groupsPerRow: Int) -> [Float]? {
        let (count, overflow) = rows.multipliedReportingOverflow(by: groupsPerRow)
        guard !overflow else { return nil }
        guard let coding = layout.scaleCodes else {
            return scales.count == count ? scales.map { Float($0) } : nil
        }
        guard let codes = scaleCodes, let rowScales, codes.count == count, rowScales.count == rows,
              codes.allSatisfy({ Int($0) < 1 << coding.bits })
        else { return nil }
        let magnitudes = coding.magnitudes
        var decoded = [Float](repeating: 0, count: count)
        for r in 0..<rows {
            let d = Float(rowScales[r])
            for g in 0..<groupsPerRow {
                decoded[r * groupsPerRow + g] = coding.scale(code: codes[r * groupsPerRow + g], rowScale: d, magnitudes: magnitudes)
            }
        }
        return decoded
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
