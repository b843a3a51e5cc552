import QPKCore

/// Which tensors a conversion quantizes (issue 2 §5).
///
/// By default: floating tensors (decodable to `Float`) of rank ≥ 2 with at least
/// ``minimumElements`` elements, i.e. the weight matrices, not biases, norms or small tables.
/// `--include` globs replace the default rule: when any is given, exactly the floating tensors
/// matching one are quantized, whatever their rank or size (so `--include 'encoder.*.weight'`
/// quantizes the encoder's weights and nothing else). `--exclude` globs keep matching tensors as
/// they are, with or without includes. Exclusion wins over inclusion.
///
/// Optimizer state is never quantized by default: Keras 2 keeps it under `optimizer_weights/`
/// and Keras 3 under `optimizer/` (Adam moments are not weights, and a training run that resumes
/// from them needs them exact). `--include` can still select such tensors by name.
public enum TensorSelection {
    public static let minimumElements = 4096

    /// The name prefixes of optimizer state (Keras 2 `model.save`, Keras 3 `.weights.h5`).
    public static let optimizerStatePrefixes = ["optimizer_weights/", "optimizer/"]

    /// The default rule alone.
    public static func isQuantizableByDefault(_ info: TensorInfo) -> Bool {
        isFloat(info) && info.shape.count >= 2 && info.elementCount >= minimumElements
            && !isOptimizerState(info.name)
    }

    /// Whether `name` is optimizer state rather than a model weight.
    public static func isOptimizerState(_ name: String) -> Bool {
        optimizerStatePrefixes.contains { name.hasPrefix($0) }
    }

    /// The default rule with the user's overrides.
    public static func shouldQuantize(_ info: TensorInfo, include: [Glob], exclude: [Glob]) -> Bool {
        guard isFloat(info), info.elementCount > 0 else { return false }
        if exclude.contains(where: { $0.matches(info.name) }) { return false }
        if !include.isEmpty { return include.contains { $0.matches(info.name) } }
        return isQuantizableByDefault(info)
    }

    static func isFloat(_ info: TensorInfo) -> Bool {
        info.dtype.isFloatingPoint && info.dtype.isConvertibleToFloat
    }
}
