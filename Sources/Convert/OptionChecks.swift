import Foundation
import Formats

import QPKCore
import Quantize

/// The checks that turn a conversion request that would silently do nothing, or silently lose
/// data, into a ``UsageError`` (spec/cli.md, "Say no instead of doing nothing").
public enum ConversionChecks {
    /// Checks the options against the source and the target, before planning:
    /// - every `include` and `exclude` pattern matches a tensor of the source, and they are given
    ///   only for QPK output (they choose the tensors to quantize);
    /// - `outlierMask` needs a QPK source and a safetensors or HDF5 output (it marks the outliers
    ///   of dequantized tensors);
    /// - `dtype` has an element-wise float encoding (not `F4`, `F6_*` or `C64`);
    /// - `importanceMatrix` is given only for QPK output and an MSE scale search (the only one
    ///   that weighs columns);
    /// - `workers` is at least 1.
    public static func check(_ options: ConversionOptions, reader: any CheckpointReader, target: OutputTarget) throws {
        try UsageError.requireCount(options.workers, atLeast: 1, option: "--threads")
        if !options.include.isEmpty || !options.exclude.isEmpty {
            guard target.format == .qpk || target.format == .gguf || options.layout != nil else {
                throw UsageError(.notApplicable, "--include and --exclude choose the tensors to quantize and apply only to .qpk, .gguf or --layout output; drop them")
            }
            let names = reader.tensors.map(\.name)
            let source = reader.url.lastPathComponent
            try UsageError.requireMatches(options.include, in: names, option: "--include", source: source)
            try UsageError.requireMatches(options.exclude, in: names, option: "--exclude", source: source)
        }
        if options.outlierMask {
            guard reader.format == .qpk else {
                throw UsageError(.notApplicable, "--outlier-mask marks the outliers of quantized tensors and needs a .qpk source; \(reader.url.lastPathComponent) is \(reader.format.rawValue)")
            }
            guard target.format != .qpk else {
                throw UsageError(.notApplicable, "--outlier-mask applies when dequantizing to .safetensors or .h5; a .qpk output keeps the outlier records itself")
            }
        }
        if options.importanceMatrix != nil, target.format != .qpk || options.layout != nil {
            throw UsageError(.notApplicable, "--imatrix weights the quantization of .qpk output; drop it for \(options.layout.map { "--layout \($0.rawValue)" } ?? target.format.rawValue) output")
        }
        if options.importanceMatrix != nil, options.recipe.scaleSearch != .mse {
            throw UsageError(.notApplicable, "--imatrix weights the MSE scale search; --scale-search \(options.recipe.scaleSearch.rawValue) ignores it (use --scale-search mse)")
        }
        if let dtype = options.dtype, !dtype.isConvertibleToFloat {
            throw UsageError(.notApplicable, "--dtype \(dtype.rawValue): qpk cannot encode values as \(dtype.rawValue); use f32, f16, bf16, f64 or an F8 type")
        }
    }

    /// Checks the finished plan: a float → integer (or bool) cast needs `allowLossyCast`, as
    /// numpy's `same_kind` casting rule refuses it (`astype` would round every value, typically
    /// to zeros for weights); `allowLossyCast` without such a cast would do nothing; and an
    /// importance matrix must weight at least one quantized tensor.
    public static func check(_ plan: ConversionPlan, options: ConversionOptions) throws {
        var lossy: PlannedTensor?
        for entry in plan.tensors where lossy == nil {
            switch entry.action {
            case let .cast(dtype), let .dequantize(dtype):
                if entry.source.dtype.isFloatingPoint, !dtype.isFloatingPoint { lossy = entry }
            default:
                continue
            }
        }
        if let entry = lossy, !options.allowLossyCast {
            throw UsageError(.lossyCast, "tensor '\(entry.source.name)': casting \(entry.source.dtype.rawValue) to \(entry.output.dtype.rawValue) rounds every value to an integer (weights mostly become 0); pass --allow-lossy-cast if that is what you want, or use a float --dtype")
        }
        if options.importanceMatrix != nil, !plan.tensors.contains(where: {
            if case let .quantize(decision) = $0.action { decision.importance == .calibration } else { false }
        }) {
            throw UsageError(.notApplicable, "--imatrix has no effect: no tensor quantized from \(plan.source.lastPathComponent) has an entry in the importance matrix (entries are looked up by tensor name; with --importance none it is ignored)")
        }
        if lossy == nil, options.allowLossyCast {
            throw UsageError(.notApplicable, "--allow-lossy-cast has no effect: no floating tensor is cast to an integer or bool dtype (give one with --dtype)")
        }
    }

    /// Checks that recipe options (`--bits`, `--method`, …) given explicitly take effect: the
    /// output is QPK and the plan quantizes at least one tensor. A QPK → QPK copy whose tensors
    /// are all quantized already, or a source with no tensor to quantize, would ignore them.
    public static func checkRecipeApplies(_ plan: ConversionPlan, flags: [String]) throws {
        guard let flag = flags.first else { return }
        let layoutExport = plan.target.format == .safetensors && plan.tensors.contains {
            if case .quantize = $0.action { true } else { false }
        }
        guard plan.target.format == .qpk || layoutExport else {
            throw UsageError(.notApplicable, "\(flag) is a quantization option and applies only to .qpk output or --layout (this output is \(plan.target.format.rawValue); GGUF takes --type); drop it")
        }
        let quantizes = plan.tensors.contains { if case .quantize = $0.action { true } else { false } }
        guard quantizes else {
            let why = plan.sourceFormat == .qpk
                ? "its quantized tensors are copied as they are (dequantize to .safetensors first to requantize)"
                : "no tensor is selected for quantization (see --include)"
            throw UsageError(.notApplicable, "\(flag) has no effect: \(plan.source.lastPathComponent) → \(plan.destination.lastPathComponent) quantizes no tensor; \(why)")
        }
    }

    /// The dtype a quantized tensor is dequantized to when no `--dtype` is given: its original
    /// dtype, or F32 when that has no element-wise float encoding (F4, F6_*): spec/qpk-format.md
    /// §4.2 defines dequantized values as f32, and a sub-byte re-encoding would be lossy.
    public static func dequantizedDType(of info: TensorInfo, requested: DType?) -> DType {
        requested ?? (info.dtype.isConvertibleToFloat ? info.dtype : .f32)
    }
}
