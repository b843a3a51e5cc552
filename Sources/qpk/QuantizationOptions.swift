import ArgumentParser
import Quantize

/// The quantization recipe flags of `qpk convert` (used when writing QPK).
struct QuantizationOptions: ParsableArguments {
    @Option(help: "Quantization method: prequant (outlier-aware, default) or rtn (plain round-to-nearest).")
    var method: String?

    @Option(help: "Bits per weight code: 2, 3, 4 or 8.")
    var bits: Int?

    @Option(help: "Columns per quantization group (32, 64, 128, …) or 'row' for one group per row.")
    var groupSize: String?

    @Option(help: "Zero-point scheme: affine (asymmetric) or symmetric.")
    var scheme: String?

    @Option(help: "How group scales are chosen: minmax, mse (clipping search) or hqq (half-quadratic).")
    var scaleSearch: String?

    @Option(help: "Share of each tensor's parameters kept at full precision, e.g. 0.5% or 0.005 (default: 0.5% for prequant, trimmed so a tensor stays within bits + 0.5 bits per weight).")
    var outlierBudget: String?

    @Option(help: "Outlier shape: auto, rows, columns or elements.")
    var outlierKind: String?

    @Option(help: "Per-column error weights of the MSE fit: norm (data-free, from the model's LayerNorms; prequant default) or none.")
    var importance: String?

    @Flag(help: "Mixed precision: spend the bit budget of --bits where the measured error is largest.")
    var allocate = false
}

extension QuantizationOptions {
    /// The recipe the flags describe: the method's defaults (``QuantizationRecipe/default`` for
    /// prequant, ``QuantizationRecipe/rtn(bits:groupSize:scheme:)`` for rtn), then each flag given.
    func recipe() throws -> QuantizationRecipe {
        let methodName = (method ?? QuantizationRecipe.Method.prequant.rawValue).lowercased()
        guard let parsedMethod = QuantizationRecipe.Method(rawValue: methodName) else {
            throw ValidationError("unknown --method '\(method ?? "")': use \(QuantizationRecipe.Method.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        let bitCount = bits ?? QuantizationRecipe.default.bits
        var recipe = parsedMethod == .rtn ? QuantizationRecipe.rtn(bits: bitCount) : QuantizationRecipe.prequant(bits: bitCount)
        if let groupSize {
            guard let parsed = QuantizationRecipe.parseGroupSize(groupSize) else {
                throw ValidationError("invalid --group-size '\(groupSize)': use a positive number such as 64 or 128, or 'row'")
            }
            recipe.groupSize = parsed
        }
        if let scheme {
            guard let parsed = QuantizationScheme(rawValue: scheme.lowercased()) else {
                throw ValidationError("unknown --scheme '\(scheme)': use affine or symmetric")
            }
            recipe.scheme = parsed
        }
        if let scaleSearch {
            guard let parsed = QuantizationRecipe.ScaleSearch(rawValue: scaleSearch.lowercased()) else {
                throw ValidationError("unknown --scale-search '\(scaleSearch)': use \(QuantizationRecipe.ScaleSearch.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            recipe.scaleSearch = parsed
        }
        if let outlierBudget {
            guard let parsed = QuantizationRecipe.parseBudget(outlierBudget) else {
                throw ValidationError("invalid --outlier-budget '\(outlierBudget)': use a share such as 0.5% or 0.005 (at most 50%)")
            }
            recipe.outlierBudget = parsed
            recipe.maxBitsPerWeight = nil  // an explicit budget is kept whole, not capped
        }
        if let outlierKind {
            guard let parsed = QuantizationRecipe.OutlierKind(rawValue: outlierKind.lowercased()) else {
                throw ValidationError("unknown --outlier-kind '\(outlierKind)': use \(QuantizationRecipe.OutlierKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            recipe.outlierKind = parsed
        }
        if let importance {
            guard let parsed = QuantizationRecipe.Importance(rawValue: importance.lowercased()) else {
                throw ValidationError("unknown --importance '\(importance)': use \(QuantizationRecipe.Importance.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            recipe.importance = parsed
        }
        do {
            try recipe.validate()
        } catch {
            throw ValidationError(String(describing: error))
        }
        return recipe
    }
}
