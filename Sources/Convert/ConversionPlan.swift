import Foundation
import QPKCore
import Formats
import Quantize

/// What the converter does with one source tensor.
public enum TensorAction: Sendable, Equatable {
    /// Copy the stored bytes unchanged.
    case copy
    /// Decode to float and re-encode in another dtype.
    case cast(DType)
    /// Quantize as the tensor's decision says (QPK output only).
    case quantize(QuantizationDecision)
    /// Reconstruct a quantized tensor in the given dtype.
    case dequantize(DType)
    /// Emit a BOOL mask marking the outlier parameters of the named quantized tensor.
    case outlierMask(of: String)
    /// Encode as ggml blocks of the given type (GGUF output only; ``GGUFPlanning``).
    case ggmlQuantize(GGMLType)

    /// A short word for tables and JSON.
    public var name: String {
        switch self {
        case .copy: "copy"
        case .cast: "cast"
        case .quantize: "quantize"
        case .dequantize: "dequantize"
        case .outlierMask: "outlier-mask"
        case .ggmlQuantize: "quantize"
        }
    }
}

/// One line of a conversion plan.
public struct PlannedTensor: Sendable {
    /// The tensor as the source stores it.
    public var source: TensorInfo
    /// The tensor as the output will describe it (QPK keeps the source dtype and shape).
    public var output: TensorInfo
    public var action: TensorAction
    /// The bytes the output will spend on it (an estimate for quantized tensors, whose
    /// outlier count is known only once they are quantized).
    public var estimatedBytes: Int
}

/// The whole plan: every output tensor in output order, and what to do for each.
public struct ConversionPlan: Sendable {
    public var source: URL
    public var sourceFormat: CheckpointFormat
    public var destination: URL
    public var target: OutputTarget
    public var tensors: [PlannedTensor]

    /// The estimated size of the payload in bytes (headers excluded).
    public var estimatedBytes: Int { tensors.reduce(0) { $0 + $1.estimatedBytes } }

    /// The decision of a quantized tensor, `nil` for every other action.
    public func decision(at index: Int) -> QuantizationDecision? {
        if case let .quantize(decision) = tensors[index].action { return decision }
        return nil
    }

    /// Parameters in the quantized tensors.
    public var quantizedParameters: Int {
        tensors.reduce(0) { total, entry in
            if case .quantize = entry.action { return total + entry.source.elementCount }
            return total
        }
    }
}

/// Where and how the output is written.
public struct OutputTarget: Sendable, Equatable {
    public var format: CheckpointFormat
    /// Split safetensors output into shards of at most this many bytes (a directory is written).
    public var maxShardSize: Int?
    /// HDF5 only: gzip level for chunked, compressed datasets.
    public var gzipLevel: Int?

    public init(format: CheckpointFormat, maxShardSize: Int? = nil, gzipLevel: Int? = nil) {
        self.format = format
        self.maxShardSize = maxShardSize
        self.gzipLevel = gzipLevel
    }

    /// The target for `url`, which alone decides the format and the layout:
    /// - a folder (an existing directory, a path ending in `/`, or a path without an extension
    ///   when `maxShardSize` is given) is sharded safetensors, in shards of at most
    ///   `maxShardSize` bytes (one shard when `nil`);
    /// - otherwise the extension names the format (`.safetensors`, `.h5`/`.hdf5`, `.qpk`).
    ///
    /// Options that do not fit the path are errors, never silently ignored or obeyed instead of
    /// the path: `maxShardSize` with a file path, `gzipLevel` with anything but HDF5.
    /// - Throws: ``ConversionError/unknownOutputFormat(_:)``, or ``UsageError`` (rule
    ///   `output_layout` / `option_not_applicable`).
    public static func forDestination(
        _ url: URL, maxShardSize: Int?, gzipLevel: Int?
    ) throws -> OutputTarget {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let format = CheckpointFormat(pathExtension: url.pathExtension)
        let name = url.lastPathComponent
        if exists, isDirectory.boolValue, format != nil, !url.hasDirectoryPath {
            throw UsageError(.outputLayout, "\(url.path) is a folder, but its name asks for a \(format!.rawValue) file; choose another output, or write 'NAME/' to fill the folder with safetensors shards")
        }
        let isFolder = (exists && isDirectory.boolValue) || url.hasDirectoryPath
            || (url.pathExtension.isEmpty && maxShardSize != nil && !exists)
        if isFolder {
            if gzipLevel != nil {
                throw UsageError(.notApplicable, "--compression applies only to .h5 output; \(name)/ is a folder of safetensors shards")
            }
            return OutputTarget(format: .safetensors, maxShardSize: maxShardSize ?? Int.max)
        }
        guard let format else { throw ConversionError.unknownOutputFormat(url.path) }
        if maxShardSize != nil {
            throw UsageError(
                format == .safetensors ? .outputLayout : .notApplicable,
                format == .safetensors
                    ? "--max-shard-size writes a folder of shards, but \(name) is a file name; give a folder such as '\(url.deletingPathExtension().lastPathComponent)/' as the output"
                    : "--max-shard-size applies only to safetensors shards (a folder output), not to \(format.rawValue) output \(name)")
        }
        if gzipLevel != nil, format != .hdf5 {
            throw UsageError(.notApplicable, "--compression applies only to .h5 output, not to \(format.rawValue) output \(name); drop it")
        }
        return OutputTarget(format: format, gzipLevel: gzipLevel)
    }
}

/// The user's choices for one conversion.
public struct ConversionOptions: Sendable {
    /// The quantization recipe, used only when writing QPK: the file-wide choice each tensor's
    /// ``QuantizationDecision`` starts from.
    public var recipe: QuantizationRecipe
    /// The axis quantization groups run along; `nil` detects it from the checkpoint's weight
    /// layout (``WeightLayout``): the last axis for PyTorch `[out, in]`, the leading axes for
    /// Keras `[in, out]` and convolution kernels.
    public var axis: QuantizationAxis?
    /// Mixed precision (``MixedPrecision``): per-tensor widths under the uniform recipe's budget.
    public var allocate: Bool = false
    /// Tensors left out of the output entirely.
    public var drop: [Glob] = []
    /// Write a Hugging Face model folder in a runtime's quantized layout instead of QPK
    /// (spec/runtime-layouts.md).
    public var layout: RuntimeLayout?
    /// Floating tensors are cast to this dtype (the dequantized dtype for QPK sources).
    public var dtype: DType?
    public var include: [Glob]
    public var exclude: [Glob]
    /// Replace an existing output.
    public var overwrite: Bool
    /// Emit `<name>.outlier_mask` tensors when dequantizing a QPK file.
    public var outlierMask: Bool
    /// Worker threads (tensors processed at once).
    public var workers: Int
    /// Recorded in QPK provenance as `created_by` (e.g. the command line).
    public var createdBy: String = "qpk"
    /// GGUF output only: the ggml type of the selected weights (`--type`); `nil` keeps dtypes.
    public var ggufType: GGMLType?
    /// Allow float → integer/bool casts with `dtype` (numpy's `casting="unsafe"`); refused otherwise.
    public var allowLossyCast = false
    /// Measured input statistics (`--imatrix`, spec/gguf.md §9): a weight quantized to QPK that
    /// has an entry is weighted by its `E[x_j²]` (importance `calibration`) instead of the
    /// data-free estimate.
    public var importanceMatrix: ImportanceMatrix?

    /// The version of qpk recorded in the files it writes.
    public static let toolVersion = "0.1.0"

    public init(
        recipe: QuantizationRecipe = .default, axis: QuantizationAxis? = nil, allocate: Bool = false,
        dtype: DType? = nil, include: [Glob] = [], exclude: [Glob] = [], drop: [Glob] = [],
        overwrite: Bool = false, outlierMask: Bool = false,
        workers: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.recipe = recipe
        self.axis = axis
        self.allocate = allocate
        self.drop = drop
        self.dtype = dtype
        self.include = include
        self.exclude = exclude
        self.overwrite = overwrite
        self.outlierMask = outlierMask
        self.workers = max(1, workers)
    }
}

/// Problems of a conversion that are not problems of one format.
public enum ConversionError: Error, CustomStringConvertible, Sendable, Equatable {
    case unknownOutputFormat(String)
    case sameFile(String)
    case notConvertible(String, DType, DType)
    case quantizedOutputRequiresQPK(String)
    /// A `--drop` pattern that matches no tensor of the source.
    case dropMatchesNothing(String)
    case layoutGroupSize(RuntimeLayout, Int)
    case layoutBits(RuntimeLayout, Int)
    /// A QPK v2 feature (codebook, log-coded scales, transform) that the layout cannot store.
    case layoutFeature(RuntimeLayout, String)
    case layoutNeedsOutputMajor(RuntimeLayout)
    case layoutFromQuantized(String)
    case layoutNeedsFolder(String)
    case invalidConfig(String)

    public var description: String {
        switch self {
        case let .unknownOutputFormat(path):
            "\(path): cannot tell the output format: use a .safetensors, .h5/.hdf5, .qpk or .gguf extension, or a directory for shards"
        case let .sameFile(path):
            "\(path): input and output are the same file"
        case let .notConvertible(name, from, to):
            "tensor '\(name)': cannot cast \(from.rawValue) to \(to.rawValue) (no float view); exclude it or keep its dtype"
        case let .layoutGroupSize(layout, group):
            "--layout \(layout.rawValue): group size \(group) is not one its runtimes load; use \(layout.supportedGroupSizes.map(String.init).joined(separator: ", "))"
        case let .layoutBits(layout, bits):
            "--layout \(layout.rawValue): \(bits)-bit codes are not supported; use \(layout.supportedBits.map(String.init).joined(separator: ", "))"
        case let .layoutFeature(layout, feature):
            "--layout \(layout.rawValue) stores a uniform integer grid with fp16 scales; it cannot hold \(feature) (drop that option)"
        case let .layoutNeedsOutputMajor(layout):
            "--layout \(layout.rawValue) stores PyTorch [out, in] weights; this is a Keras checkpoint ([in, out] kernels)"
        case let .layoutFromQuantized(name):
            "tensor '\(name)': is already quantized; dequantize the QPK file to safetensors first, then export the layout from the original weights"
        case let .layoutNeedsFolder(path):
            "\(path): --layout writes a model folder; give a directory (e.g. out-mlx/), not a file"
        case let .invalidConfig(path):
            "\(path): config.json is not a JSON object"
        case let .dropMatchesNothing(pattern):
            "--drop '\(pattern)' matches no tensor; check the name with `qpk inspect`"
        case let .quantizedOutputRequiresQPK(name):
            "tensor '\(name)': quantized tensors can only be stored in QPK; dequantization failed"
        }
    }
}
