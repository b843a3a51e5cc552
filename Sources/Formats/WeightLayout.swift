import Foundation
import QPKCore

/// How a checkpoint stores the weight matrices of its layers, which decides the axis their
/// quantization groups run along (the layer's input dimension).
///
/// - PyTorch, and so safetensors and most HDF5 trees written from it, store a linear weight as
///   `[out, in]`: the input runs along the last axis.
/// - Keras stores a dense kernel as `[in, out]` and a convolution kernel as `[kh, kw, in, out]`:
///   the input runs along every axis but the last.
public enum WeightLayout: String, Sendable, Equatable {
    /// `[out, in]`: groups along the last axis.
    case outputMajor
    /// `[…, in, out]` (Keras): groups along the leading axes.
    case inputMajor

    /// The quantization axis that runs along the layer's input.
    public var inputAxis: QuantizationAxis {
        switch self {
        case .outputMajor: .last
        case .inputMajor: .leading
        }
    }

    /// The layout of `reader`'s weights: `inputMajor` for a Keras checkpoint — an HDF5 file in a
    /// Keras layout, or any checkpoint whose metadata carries Keras's root attribute
    /// `keras_version` (as qpk's HDF5 → safetensors conversion keeps it, spec/hdf5-mapping.md) —
    /// and `outputMajor` otherwise.
    public static func of(_ reader: any CheckpointReader) -> WeightLayout {
        if let hdf5 = reader as? HDF5Reader, hdf5.kerasLayout != nil { return .inputMajor }
        let metadata = reader.metadata
        if metadata["keras_version"] != nil { return .inputMajor }
        if let attributes = metadata[HDF5Metadata.attributesKey],
            let data = attributes.data(using: .utf8),
            let tree = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let root = tree["/"] as? [String: Any], root["keras_version"] != nil {
            return .inputMajor
        }
        return .outputMajor
    }
}
