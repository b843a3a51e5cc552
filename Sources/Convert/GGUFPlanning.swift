import Foundation
import QPKCore
import Formats
import Quantize
import Model

/// What a conversion to GGUF does with each tensor (spec/gguf.md §6).
///
/// - With a block `--type` (Q4_0, Q4_K, …): the tensors ``TensorSelection`` picks (floating, rank
///   ≥ 2, ≥ 4096 elements, `--include`/`--exclude`) whose row length (the last axis, GGUF's
///   `ne[0]`) is a whole number of blocks are encoded as ggml blocks (``TensorAction/ggmlQuantize(_:)``);
///   for Q4_K and Q6_K, selected tensors whose rows are whole 32-blocks but not 256-blocks take
///   llama.cpp's fallback type (``fallback(for:)``).
/// - With a plain float `--type` (F32, F16, BF16): the selected tensors are cast to it.
/// - Every other floating tensor: 1-D tensors (and scalars) are stored F32, as llama.cpp stores
///   norms and biases; larger ones keep their dtype (or `--dtype`) when GGUF has it, else F32.
/// - Integer tensors I8–I64 are copied; unsigned and boolean tensors have no GGUF type: an error.
/// - From a GGUF source, block-quantized tensors keep their blocks byte for byte unless `--type`
///   selects them for another block type.
public enum GGUFPlanning {
    /// The ggml types qpk writes, in ggml's numbering order.
    public static let writableTypes: [GGMLType] = GGMLType.allCases.filter(GGMLBlockQuantizer.encodableTypes.contains)

    /// Why a GGUF conversion cannot proceed.
    public enum Failure: Error, CustomStringConvertible, Sendable, Equatable {
        case noGGUFType(tensor: String, dtype: DType)
        case unwritableType(GGMLType)

        public var description: String {
            switch self {
            case let .noGGUFType(tensor, dtype):
                "tensor '\(tensor)': GGUF has no element type for \(dtype.rawValue) (it stores F32, F16, BF16, F64 and I8-I64); convert to safetensors instead"
            case let .unwritableType(type):
                "qpk cannot write \(type.name) blocks; use one of " + GGUFPlanning.writableTypes.map(\.name).joined(separator: ", ")
            }
        }
    }

    /// The plan line of one source tensor of `reader`.
    public static func plan(
        _ info: TensorInfo, in reader: (any CheckpointReader)? = nil, quantizedSource: Bool, options: ConversionOptions
    ) throws -> PlannedTensor {
        if let type = options.ggufType, !writableTypes.contains(type) { throw Failure.unwritableType(type) }
        if let stored = storedBlockType(info, in: reader) {
            let selected = options.ggufType.flatMap { $0.isBlockQuantized ? selectedType(info, requested: $0, options: options) : nil }
            let type = selected ?? stored
            return PlannedTensor(
                source: info, output: info, action: .ggmlQuantize(type),
                estimatedBytes: type.byteCount(elementCount: info.elementCount) ?? info.byteCount)
        }
        if let type = options.ggufType.flatMap({ selectedType(info, requested: $0, options: options) }) {
            if type.isBlockQuantized {
                let bytes = type.byteCount(elementCount: info.elementCount) ?? info.byteCount
                return PlannedTensor(source: info, output: info, action: .ggmlQuantize(type), estimatedBytes: bytes)
            }
            return cast(info, to: type.plainDType ?? .f32, quantizedSource: quantizedSource)
        }
        guard info.dtype.isFloatingPoint, info.dtype.isConvertibleToFloat else {
            guard GGMLType(plain: info.dtype) != nil else { throw Failure.noGGUFType(tensor: info.name, dtype: info.dtype) }
            return PlannedTensor(source: info, output: info, action: .copy, estimatedBytes: info.byteCount)
        }
        var dtype = options.dtype ?? info.dtype
        if info.shape.count < 2 || GGMLType(plain: dtype) == nil || !dtype.isFloatingPoint { dtype = .f32 }
        return cast(info, to: dtype, quantizedSource: quantizedSource)
    }

    static func cast(_ info: TensorInfo, to dtype: DType, quantizedSource: Bool) -> PlannedTensor {
        var output = info
        output.dtype = dtype
        let action: TensorAction = quantizedSource ? .dequantize(dtype) : (dtype == info.dtype ? .copy : .cast(dtype))
        return PlannedTensor(source: info, output: output, action: action, estimatedBytes: output.byteCount)
    }

    /// The 32-value type llama.cpp stores a tensor in when a K-quant was asked for but its rows
    /// are not whole 256-value super-blocks (`llama_tensor_get_type`'s fallback): Q4_K → Q5_0,
    /// Q6_K → Q8_0.
    public static func fallback(for type: GGMLType) -> GGMLType? {
        switch type {
        case .q4_K: .q5_0
        case .q6_K: .q8_0
        default: nil
        }
    }

    /// The type `info` is stored in when `requested` is asked for: `requested` itself, its
    /// ``fallback(for:)`` when only the row length stands in the way, or `nil` (a plain type).
    public static func selectedType(_ info: TensorInfo, requested: GGMLType, options: ConversionOptions) -> GGMLType? {
        if reasonKept(info, type: requested, options: options) == nil { return requested }
        if let fallback = fallback(for: requested), reasonKept(info, type: fallback, options: options) == nil {
            return fallback
        }
        return nil
    }

    /// Why `info` is not stored as `type` under `options`, or `nil` when it is.
    public static func reasonKept(_ info: TensorInfo, type: GGMLType, options: ConversionOptions) -> String? {
        guard info.dtype.isFloatingPoint, info.dtype.isConvertibleToFloat, info.elementCount > 0 else { return "not a floating tensor" }
        if options.exclude.contains(where: { $0.matches(info.name) }) { return "excluded by --exclude" }
        if !options.include.isEmpty {
            if !options.include.contains(where: { $0.matches(info.name) }) { return "not matched by --include" }
        } else if info.shape.count < 2 {
            return "\(info.shape.count)-D"
        } else if info.elementCount < TensorSelection.minimumElements {
            return "fewer than \(TensorSelection.minimumElements) elements"
        }
        let row = info.shape.last ?? 1
        if row % type.blockSize != 0 { return "row length \(row) is not a multiple of \(type.blockSize)" }
        return nil
    }

    /// The block type a GGUF source stores `info` in, `nil` for plain tensors and other formats.
    static func storedBlockType(_ info: TensorInfo, in reader: (any CheckpointReader)?) -> GGMLType? {
        guard let gguf = reader as? GGUFReader, let type = gguf.ggmlType(of: info.name), type.isBlockQuantized else {
            return nil
        }
        return type
    }

    /// Encodes one tensor as ggml blocks and measures the error of the stored result; blocks a
    /// GGUF source already stores in `type` are copied byte for byte.
    static func encode(
        _ entry: PlannedTensor, type: GGMLType, reader: any CheckpointReader
    ) throws -> (TensorStorage, TensorResult) {
        var result = TensorResult(planned: entry)
        result.bytes = entry.estimatedBytes
        if storedBlockType(entry.source, in: reader) == type, let gguf = reader as? GGUFReader {
            result.action = "copy"
            result.bytes = type.byteCount(elementCount: entry.source.elementCount) ?? 0
            return (.dense(try gguf.storedBytes(of: entry.source.name)), result)
        }
        let count = entry.source.elementCount
        let byteCount = type.byteCount(elementCount: count) ?? 0
        let buffer = ByteBuffer(count: byteCount)
        let (signal, noise, _) = try Dequantizer.withFloats(reader.storage(of: entry.source), info: entry.source) { floats in
            GGMLBlockQuantizer.encode(floats, as: type, into: buffer.mutableBytes)
            let decoded = [Float](unsafeUninitializedCapacity: count) { out, initialized in
                GGMLBlockDecoder.decode(type, UnsafeRawBufferPointer(buffer.mutableBytes), count: count, into: out)
                initialized = count
            }
            return decoded.withUnsafeBufferPointer { ErrorEnergy.compare(floats, $0) }
        }
        result.bytes = byteCount
        result.sqnrDB = noise > 0 ? 10 * log10(signal / noise) : .infinity
        result.signalEnergy = signal
        return (.dense(TensorBytes(buffer)), result)
    }

    /// The GGUF writer for `plan`: one declaration per planned tensor, and the source's metadata
    /// (typed, from a GGUF source, minus `general.file_type`, which no longer holds; llama.cpp's
    /// model metadata from a model folder; as strings otherwise), plus `general.quantization_version` 2 when blocks are written.
    static func makeWriter(
        plan: ConversionPlan, reader: any CheckpointReader, options: ConversionOptions
    ) throws -> GGUFWriter {
        let declarations = try plan.tensors.map { entry -> GGUFTensorDeclaration in
            if case let .ggmlQuantize(type) = entry.action {
                return GGUFTensorDeclaration(info: entry.output, type: type)
            }
            guard let type = GGMLType(plain: entry.output.dtype) else {
                throw Failure.noGGUFType(tensor: entry.output.name, dtype: entry.output.dtype)
            }
            return GGUFTensorDeclaration(info: entry.output, type: type)
        }
        var metadata: [(key: String, value: GGUFValue)]
        if let gguf = reader as? GGUFReader {
            metadata = gguf.header.keyValues.filter { $0.key != "general.file_type" }
        } else if let model = reader as? LlamaCppCheckpoint {
            metadata = model.ggufMetadata  // spec/gguf.md §8
        } else {
            metadata = reader.metadata.keys.sorted().map { ($0, .string(reader.metadata[$0]!)) }
        }
        let quantizationVersion = "general.quantization_version"
        if declarations.contains(where: \.type.isBlockQuantized), !metadata.contains(where: { $0.key == quantizationVersion }) {
            metadata.append((quantizationVersion, .uint32(2)))
        }
        return try GGUFWriter(url: plan.destination, tensors: declarations, metadata: metadata, overwrite: options.overwrite)
    }
}
