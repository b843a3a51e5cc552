import ArgumentParser
import Convert
import Foundation
import QPKCore
import Quantize

extension QuantizationMethod: ExpressibleByArgument {}
extension ScaleSearch: ExpressibleByArgument {}
extension QuantizationScheme: ExpressibleByArgument {}
extension QuantizationRecipe.OutlierKind: ExpressibleByArgument {}
extension WeightTransform.Kind: ExpressibleByArgument {}

/// `--codebook none|lloyd|nf4`: `none` asks for the uniform grid.
enum CodebookChoice: String, CaseIterable, ExpressibleByArgument {
    case none, lloyd, nf4

    var kind: CodebookKind? {
        switch self {
        case .none: nil
        case .lloyd: .lloyd
        case .nf4: .nf4
        }
    }
}

/// `--scale-bits f16|2…8`: fp16 group scales, or log codes of that many bits.
enum ScaleBitsChoice: ExpressibleByArgument, Equatable {
    case float16
    case bits(Int)

    init?(argument: String) {
        if argument == "f16" {
            self = .float16
        } else if let bits = Int(argument) {
            self = .bits(bits)
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] { ["f16"] + ScaleCodes.allowedBits.map(String.init) }
}

/// `--zero-points f16|packed|none`: how zero-points are stored in QPK.
enum ZeroPointChoice: String, CaseIterable, ExpressibleByArgument {
    case f16, packed
    case implicit = "none"

    var domain: ZeroPointDomain {
        switch self {
        case .f16: .float16
        case .packed: .packed
        case .implicit: .implicit
        }
    }
}
/// `--importance none|norm`: `calibration` is what the calibrated pipeline records, not a flag value.
extension ImportanceSource: ExpressibleByArgument {
    public init?(argument: String) {
        guard let value = ImportanceSource(rawValue: argument), value != .calibration else { return nil }
        self = value
    }

    public static var allValueStrings: [String] { [ImportanceSource.none, .norm].map(\.rawValue) }
}

/// `--axis`: the quantization axis, or `auto` to detect it from the checkpoint's weight layout.
enum AxisChoice: String, CaseIterable, ExpressibleByArgument {
    case auto, last, leading

    /// The forced axis, `nil` for `auto`.
    var axis: QuantizationAxis? { self == .auto ? nil : QuantizationAxis(name: rawValue) }
}

/// The quantization recipe flags of `qpk convert` (used when writing QPK).
struct QuantizationOptions: ParsableArguments {
    @Option(help: "Quantization method: prequant (outlier-aware, default), rtn (plain round-to-nearest), gptq or boa (calibrated: need a model folder; see --calibration; boa uses attention-aware Hessians for the query, key and value projections).")
    var method: QuantizationMethod?

    @Option(help: "Bits per weight code: 2, 3, 4 or 8.")
    var bits: Int?

    @Option(help: "Columns per quantization group (32, 64, 128, …) or 'row' for one group per row.")
    var groupSize: String?

    @Option(help: "Zero-point scheme: affine (asymmetric) or symmetric.")
    var scheme: QuantizationScheme?

    @Option(help: "How group scales are chosen: minmax, mse (clipping search) or hqq (half-quadratic).")
    var scaleSearch: ScaleSearch?

    @Option(help: "Share of each tensor's parameters kept at full precision, e.g. 0.5% or 0.005 (default: 0.5% for prequant, trimmed so a tensor stays within bits + 0.5 bits per weight).")
    var outlierBudget: String?

    @Option(help: "Outlier shape: auto, rows, columns or elements.")
    var outlierKind: QuantizationRecipe.OutlierKind?

    @Option(help: "Per-column error weights of the MSE fit: norm (data-free, from the model's LayerNorms; prequant default) or none.")
    var importance: ImportanceSource?

    @Option(help: "An importance matrix (from `qpk calibrate`, or llama.cpp's llama-imatrix, .gguf or legacy .dat): weight each input column's error by its measured E[x²] instead of the data-free estimate.")
    var imatrix: String?

    @Option(help: "The axis quantization groups run along: auto (the layer's input: last for PyTorch [out, in], leading for Keras [in, out] and conv kernels), last or leading.")
    var axis: AxisChoice = .auto

    @Option(help: "How zero-points are stored: f16 (default), packed (integer codes of --bits bits, QPK v2) or none (implied 2^(bits-1); needs --scheme symmetric, QPK v2).")
    var zeroPoints: ZeroPointChoice?

    @Option(help: "Rotate each weight matrix before quantizing: hadamard (random-sign block Walsh-Hadamard, QPK v2; data-free methods only).")
    var transform: WeightTransform.Kind?

    @Option(help: "Largest Hadamard block, a power of two (default 256): each tensor uses the largest power of two up to it that divides its column count; tensors with an odd column count are not rotated.")
    var transformBlock: Int?

    @Option(help: "What the codes stand for: lloyd (a table fitted to each tensor, 2/3/4-bit codes, signed scales; the default at 2-4 bits), nf4 (NormalFloat4, 4-bit codes) or none (a uniform grid, QPK v1 unless another v2 option is given). Not with --transform for gptq/boa.")
    var codebook: CodebookChoice?

    @Option(help: "How group scales are stored: 2-8 (a code of that many bits, sign included, on a logarithmic grid below one fp16 scale per row; QPK v2, with a codebook and --scheme symmetric) or f16 (one fp16 value per group). Default: 8 at 4 bits, 6 at 2-3 bits, f16 otherwise.")
    var scaleBits: ScaleBitsChoice?

    @Option(help: "Octaves the --scale-bits grid spans below the row scale (1-32; default: the recipe's, 6, else 8).")
    var scaleOctaves: Int?

    @Flag(help: "Mixed precision: spend the bit budget of --bits where the measured error is largest.")
    var allocate = false

    @OptionGroup var input: CalibrationInputOptions

    @Option(help: "GPTQ dampening: this share of the Hessian's mean diagonal is added to its diagonal (default 0.01; 0.1 with --random-tokens).")
    var damp: Double?

    @Flag(help: "GPTQ: quantize columns in order of decreasing activation energy; each group is then consecutive columns of that order, recorded per column (a QPK v2 group index, GPTQ's g_idx).")
    var actOrder = false

    @Flag(help: "With --act-order: keep contiguous column groups (a QPK v1 file, no group index).")
    var staticGroups = false
}

extension QuantizationOptions {
    /// The recipe the flags describe: the method's defaults, then each flag given. The defaults
    /// are ``QuantizationRecipe/prequant(bits:)`` (a fitted table with log-coded scales) for
    /// prequant and the calibrated methods (GPTQ and BoA sweep with the same table: measured
    /// best, spec/quantization.md §11–§12), ``QuantizationRecipe/uniform(bits:)`` for flags
    /// that describe a uniform grid or a free zero-point (`--codebook none`, `--scheme affine`,
    /// `--zero-points f16|packed`, `--scale-search hqq` without `--codebook`), and
    /// ``QuantizationRecipe/rtn(bits:groupSize:scheme:)`` for rtn.
    ///
    /// - Parameter uniformOutput: the output stores a uniform grid only (`--layout`): start from
    ///   ``QuantizationRecipe/uniform(bits:)``.
    func recipe(uniformOutput: Bool = false) throws -> QuantizationRecipe {
        let bitCount = bits ?? QuantizationRecipe.default.bits
        let uniformGrid = uniformOutput || codebook == CodebookChoice.none || scheme == .affine
            || (zeroPoints != nil && zeroPoints != .implicit) || (codebook == nil && scaleSearch == .hqq)
        var recipe = method == .rtn ? QuantizationRecipe.rtn(bits: bitCount)
            : uniformGrid ? QuantizationRecipe.uniform(bits: bitCount)
            : QuantizationRecipe.prequant(bits: bitCount)
        if isCalibrated { recipe.method = calibratedMethod }  // PreQuant's grouping, search and outliers, solved by BoA/GPTQ
        if let groupSize {
            guard let parsed = QuantizationRecipe.parseGroupSize(groupSize) else {
                throw ValidationError("invalid --group-size '\(groupSize)': use a positive number such as 64 or 128, or 'row'")
            }
            recipe.groupSize = parsed
            recipe.widensGroupsToCap = false  // the group size asked for is kept
        }
        if let scheme { recipe.scheme = scheme }
        if let scaleSearch { recipe.scaleSearch = scaleSearch }
        if let outlierBudget {
            guard let parsed = QuantizationRecipe.parseBudget(outlierBudget) else {
                throw ValidationError("invalid --outlier-budget '\(outlierBudget)': use a share such as 0.5% or 0.005 (at most 50%)")
            }
            recipe.outlierBudget = parsed
            recipe.maxBitsPerWeight = nil  // an explicit budget is kept whole, not capped
        }
        if let outlierKind { recipe.outlierKind = outlierKind }
        if let importance {
            recipe.importance = importance
        } else if imatrix != nil {
            recipe.importance = .norm  // weighted: by the matrix where it has an entry
        }
        if let zeroPoints {
            if zeroPoints == .implicit, recipe.scheme != .symmetric {
                throw ValidationError("--zero-points none needs --scheme symmetric (an affine zero-point must be stored: use --zero-points packed)")
            }
            recipe.zeroPoints = zeroPoints.domain
        }
        if let codebook {
            recipe.codebook = codebook.kind
            if codebook == .none { recipe.scaleCodes = nil }
        }
        switch scaleBits {
        case .float16?:
            if let scaleOctaves { throw ValidationError("--scale-octaves \(scaleOctaves) applies to log-coded scales, not --scale-bits f16") }
            recipe.scaleCodes = nil
        case let .bits(bits)?:
            recipe.scaleCodes = ScaleCodes(bits: bits, octaves: scaleOctaves ?? recipe.scaleCodes?.octaves ?? 8)
        case nil:
            if let scaleOctaves {
                guard let codes = recipe.scaleCodes else {
                    throw ValidationError("--scale-octaves \(scaleOctaves) needs log-coded scales (--scale-bits 2…8)")
                }
                recipe.scaleCodes = ScaleCodes(bits: codes.bits, octaves: scaleOctaves)
            }
        }
        if let transformBlock, transform == nil {
            throw ValidationError("--transform-block \(transformBlock) needs --transform hadamard")
        }
        if let transform {
            if isCalibrated {
                throw ValidationError("--transform applies to data-free quantization (prequant, rtn); calibrated methods (--method gptq|boa) do not rotate")
            }
            recipe.transform = WeightTransform(kind: transform, blockSize: transformBlock ?? 256)
        }
        do {
            try recipe.validate()
        } catch {
            throw ValidationError(String(describing: error))
        }
        return recipe
    }
}

extension RuntimeLayout: ExpressibleByArgument {}


extension QuantizationOptions {
    /// Whether the conversion is calibrated: `--method gptq|boa`, or `--calibration` without a method.
    var isCalibrated: Bool { method == .gptq || method == .boa || (method == nil && input.isGiven) }

    /// The calibrated method: the one asked for, else BoA, the best measured (above GPTQ at 4, 3
    /// and 2 bits on MiniLM-L6: spec/quantization.md §12).
    var calibratedMethod: QuantizationMethod { method == .gptq ? .gptq : .boa }

    /// The calibration settings of the flags; a calibration flag without a calibrated method is a
    /// usage error.
    func calibrationOptions() throws -> CalibrationOptions? {
        let given = input.givenFlags + [("--damp", damp != nil), ("--act-order", actOrder), ("--static-groups", staticGroups)]
            .filter(\.1).map(\.0)
        if isCalibrated, imatrix != nil {
            throw ValidationError("--imatrix applies to data-free quantization; calibrated quantization (--method gptq|boa, --calibration) measures its own statistics")
        }
        guard isCalibrated else {
            if let flag = given.first {
                throw ValidationError("\(flag) applies to calibrated quantization only (--method gptq or boa); --method \(method?.rawValue ?? "prequant") is data-free")
            }
            return nil
        }
        var options = try input.options()
        if let damp { options.gptq.damp = damp }
        if staticGroups, !actOrder {
            throw ValidationError("--static-groups applies with --act-order only: without it the groups are contiguous anyway")
        }
        options.gptq.actOrder = actOrder
        options.gptq.staticGroups = staticGroups
        options.method = calibratedMethod
        return options
    }
}

/// What calibration reads and how much of it (`--calibration`, `--random-tokens`, `--samples`,
/// `--seq-len`), shared by `convert`'s calibrated methods and `calibrate`.
struct CalibrationInputOptions: ParsableArguments {
    @Option(help: "Calibration text (paragraphs separated by blank lines) the model runs on while it is measured (default: qpk's built-in text). Needs a model folder (config.json, tokenizer.json) as input.")
    var calibration: String?

    @Flag(help: "Calibrate without data: run the model on random sequences of its tokenizer's ordinary tokens instead of text (fixed seed, so the same command writes the same file).")
    var randomTokens = false

    @Option(help: "Calibration passages or random sequences (default 128).")
    var samples: Int?

    @Option(help: "Tokens per calibration passage or random sequence (default 128; 32 with --random-tokens).")
    var seqLen: Int?

    /// Whether a flag choosing the calibration input was given (`--calibration`, `--random-tokens`).
    var isGiven: Bool { calibration != nil || randomTokens }

    /// The flags of this group that were given, by name.
    var givenFlags: [String] {
        [("--calibration", calibration != nil), ("--random-tokens", randomTokens), ("--samples", samples != nil),
         ("--seq-len", seqLen != nil)].filter(\.1).map(\.0)
    }

    /// The calibration options the flags describe (the rest at their defaults).
    func options() throws -> CalibrationOptions {
        if randomTokens, calibration != nil {
            throw ValidationError("--random-tokens calibrates without text, --calibration on a text: give one of them")
        }
        var options = randomTokens ? CalibrationOptions(source: .randomTokens(seed: 0))
            : CalibrationOptions(text: calibration.map { URL(fileURLWithPath: $0) })
        if let samples { options.samples = samples }
        if let seqLen { options.sequenceLength = seqLen }
        return options
    }
}
