import Foundation

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

    public static func plan(
        reader: any CheckpointReader, destination: URL, target: OutputTarget,
        options: ConversionOptions
    ) throws -> ConversionPlan {
        try ConversionChecks.check(options, reader: reader, target: target)
        var entries: [PlannedTensor] = []
        entries.reserveCapacity(reader.tensors.count)
        for info in reader.tensors {
            let quantizedSource = isQuantized(info, in: reader)
            switch target.format {
            case .qpk:
                if quantizedSource {
                    let bytes = (reader as? QPKReader)?.record(for: info.name)?.storedByteCount ?? info.byteCount
                    entries.append(PlannedTensor(source: info, output: info, action: .copy, estimatedBytes: bytes))
                } else if TensorSelection.shouldQuantize(info, include: options.include, exclude: options.exclude) {
                    entries.append(PlannedTensor(
                        source: info, output: info, action: .quantize(options.recipe),
                        estimatedBytes: estimatedQuantizedBytes(info, recipe: options.recipe)))
                } else {
                    entries.append(try keepOrCast(info, dtype: options.dtype))
                }
            case .safetensors, .hdf5:
                if quantizedSource {
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
        return plan
    }

    static func isQuantized(_ info: TensorInfo, in reader: any CheckpointReader) -> Bool {
        guard let qpk = reader as? QPKReader else { return false }
        return qpk.record(for: info.name)?.encoding == .affine
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

    /// Codes + fp16 scales and zero-points + the outlier budget (u32 index + f32 value each),
    /// the outliers trimmed to the recipe's bits-per-weight cap as the quantizer trims them.
    static func estimatedQuantizedBytes(_ info: TensorInfo, recipe: QuantizationRecipe) -> Int {
        let (rows, columns) = info.matrixShape
        let layout = recipe.layout(columns: columns)
        let groups = rows * layout.groupsPerRow(columns: columns)
        let base = layout.packedByteCount(elementCount: info.elementCount) + groups * 4
        var outlierBytes = Int((Double(info.elementCount) * recipe.outlierBudget).rounded(.up)) * 8
        if let cap = recipe.maxBitsPerWeight {
            let room = Int(cap * Double(info.elementCount) / 8) - base
            outlierBytes = max(0, min(outlierBytes, room / 8 * 8))
        }
        return base + outlierBytes
    }
}
