import Foundation
import QPKCore
import Formats
import Quantize

/// Decides, per tensor, what a conversion does: keep, cast, quantize or dequantize.
///
/// The rules, in order:
/// - QPK output: tensors chosen by ``TensorSelection`` (floating, rank ≥ 2, ≥ 4096 elements,
///   overridden by `--include`/`--exclude`) are quantized with the recipe; tensors that are
///   already quantized are copied as they are; other floating tensors are cast when `--dtype`
///   asks; everything else is copied.
/// - safetensors or HDF5 output: quantized tensors are dequantized to `--dtype` (default: their
///   original dtype), optionally followed by an `<name>.outlier_mask` BOOL tensor; floating
///   tensors are cast when `--dtype` asks; everything else is copied bit for bit.
public enum ConversionPlanner {
    /// The suffix of the mask tensors written by `--outlier-mask`.
    public static let outlierMaskSuffix = ".outlier_mask"

    /// Plans the conversion of `reader` to `destination`: one action per output tensor, and for
    /// every quantized tensor its resolved ``QuantizationDecision``. With `options.allocate` the
    /// decisions' widths are then chosen by ``MixedPrecision`` (which quantizes each tensor at
    /// every width to measure it).
    /// - Throws: ``ConversionError`` for a cast that cannot be done or a `--drop` pattern that
    ///   matches nothing; the reader's errors while measuring for `--allocate`.
    public static func plan(
        reader: any CheckpointReader, destination: URL, target: OutputTarget,
        options: ConversionOptions
    ) throws -> ConversionPlan {
        try ConversionChecks.check(options, reader: reader, target: target)
        for pattern in options.drop where !reader.tensors.contains(where: { pattern.matches($0.name) }) {
            throw ConversionError.dropMatchesNothing(pattern.pattern)
        }
        if let layout = options.layout {
            return try RuntimeLayoutPlanning.plan(
                reader: reader, destination: destination, target: target, options: options, layout: layout)
        }
        let axis = options.axis ?? WeightLayout.of(reader).inputAxis
        var entries: [PlannedTensor] = []
        entries.reserveCapacity(reader.tensors.count)
        for info in reader.tensors where !options.drop.contains(where: { $0.matches(info.name) }) {
            let storedQuantized = reader.quantizedByteCount(of: info)
            switch target.format {
            case .gguf:
                entries.append(try GGUFPlanning.plan(info, in: reader, quantizedSource: storedQuantized != nil, options: options))
            case .qpk:
                if let bytes = storedQuantized {
                    entries.append(PlannedTensor(source: info, output: info, action: .copy, estimatedBytes: bytes))
                } else if TensorSelection.shouldQuantize(info, include: options.include, exclude: options.exclude) {
                    let recipeDecision = options.recipe.decision(axis: axis)
                    let decision = try ImportanceWeights.decision(
                        options.recipe.widensGroupsToCap ? recipeDecision.fitted(to: info) : recipeDecision,
                        for: info, matrix: options.importanceMatrix)
                    entries.append(PlannedTensor(
                        source: info, output: info, action: .quantize(decision),
                        estimatedBytes: decision.estimatedBytes(for: info)))
                } else {
                    entries.append(try keepOrCast(info, dtype: options.dtype))
                }
            case .safetensors, .hdf5:
                if storedQuantized != nil {
                    let dtype = ConversionChecks.dequantizedDType(of: info, requested: options.dtype)
                    var output = info
                    output.dtype = dtype
                    entries.append(PlannedTensor(
                        source: info, output: output, action: .dequantize(dtype), estimatedBytes: output.byteCount))
                    if options.outlierMask {
                        let mask = TensorInfo(name: info.name + outlierMaskSuffix, dtype: .bool, shape: info.shape)
                        entries.append(PlannedTensor(
                            source: info, output: mask, action: .outlierMask(of: info.name), estimatedBytes: mask.byteCount))
                    }
                } else {
                    entries.append(try keepOrCast(info, dtype: options.dtype))
                }
            }
        }
        let plan = ConversionPlan(
            source: reader.url, sourceFormat: reader.format, destination: destination, target: target,
            tensors: entries)
        try ConversionChecks.check(plan, options: options)
        guard options.allocate, target.format == .qpk else { return plan }
        return try MixedPrecision.allocate(
            plan, reader: reader, workers: options.workers, importanceMatrix: options.importanceMatrix)
    }

    static func keepOrCast(_ info: TensorInfo, dtype: DType?) throws -> PlannedTensor {
        guard let dtype, dtype != info.dtype, info.dtype.isFloatingPoint else {
            return PlannedTensor(source: info, output: info, action: .copy, estimatedBytes: info.byteCount)
        }
        guard info.dtype.isConvertibleToFloat, dtype.isConvertibleToFloat else {
            throw ConversionError.notConvertible(info.name, info.dtype, dtype)
        }
        var output = info
        output.dtype = dtype
        return PlannedTensor(source: info, output: output, action: .cast(dtype), estimatedBytes: output.byteCount)
    }
}
