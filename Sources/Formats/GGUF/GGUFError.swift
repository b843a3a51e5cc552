import QPKCore
/// Why a file is not a valid GGUF file: one case per structural rule of spec/gguf.md §7, checked
/// in the order a reader meets them. ``ruleName`` is the rule's stable name (used in JSON).
public enum GGUFError: CheckpointDiagnosable, Equatable, Sendable {
    /// The file does not start with the four bytes `GGUF`.
    case badMagic(path: String)
    /// The version is not 2 or 3 (1 used 32-bit counts; a byte-swapped number is a big-endian file).
    case unsupportedVersion(path: String, version: UInt32)
    /// The tensor count or KV count cannot fit in the rest of the file, even at the smallest
    /// possible entry size.
    case countBeyondFile(path: String, what: String, count: UInt64)
    /// A KV pair, string, array or tensor info runs past the end of the file.
    case truncated(path: String, tensor: String?, what: String)
    /// A metadata array has more than ``GGUFHeader/maximumArrayLength`` elements (qpk holds
    /// metadata in memory; real files' largest arrays, token lists, are far shorter).
    case arrayTooLong(path: String, key: String, count: UInt64)
    /// A metadata value has a type number outside the spec's 0…12.
    case unknownValueType(path: String, key: String, type: UInt32)
    /// A key, string value or tensor name is not valid UTF-8.
    case invalidUTF8(path: String, tensor: String?, what: String)
    /// The same metadata key appears twice.
    case duplicateKey(path: String, key: String)
    /// `general.alignment` is not an unsigned 32-bit power of two.
    case invalidAlignment(path: String, detail: String)
    /// Two tensors share a name.
    case duplicateTensorName(path: String, tensor: String)
    /// A tensor has more than 4 dimensions (ggml's `GGML_MAX_DIMS`).
    case tooManyDimensions(path: String, tensor: String, dimensions: UInt32)
    /// A tensor's ggml type number is not a known type.
    case unknownTensorType(path: String, tensor: String, type: UInt32)
    /// A dimension is negative as int64, or the element count or byte size overflows.
    case dimensionOverflow(path: String, tensor: String)
    /// The first (innermost) dimension is not a whole number of the type's blocks.
    case rowNotBlockAligned(path: String, tensor: String, type: String, rowLength: Int, blockSize: Int)
    /// The tensor's data offset is not a multiple of the file's alignment.
    case tensorDataMisaligned(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// The tensor's data runs past the end of the file.
    case tensorDataOutOfBounds(path: String, tensor: String, end: UInt64, dataSize: Int)
    /// The tensor's data overlaps another tensor's.
    case tensorDataOverlap(path: String, tensor: String, other: String)
    /// The stored type is valid GGUF but qpk cannot decode its values (not a validation failure).
    case undecodableType(path: String, tensor: String, type: String)

    /// The rule's stable name.
    public var ruleName: String {
        switch self {
        case .badMagic: "BadMagic"
        case .unsupportedVersion: "UnsupportedVersion"
        case .countBeyondFile: "CountBeyondFile"
        case .truncated: "Truncated"
        case .arrayTooLong: "ArrayTooLong"
        case .unknownValueType: "UnknownValueType"
        case .invalidUTF8: "InvalidUTF8"
        case .duplicateKey: "DuplicateKey"
        case .invalidAlignment: "InvalidAlignment"
        case .duplicateTensorName: "DuplicateTensorName"
        case .tooManyDimensions: "TooManyDimensions"
        case .unknownTensorType: "UnknownTensorType"
        case .dimensionOverflow: "DimensionOverflow"
        case .rowNotBlockAligned: "RowNotBlockAligned"
        case .tensorDataMisaligned: "TensorDataMisaligned"
        case .tensorDataOutOfBounds: "TensorDataOutOfBounds"
        case .tensorDataOverlap: "TensorDataOverlap"
        case .undecodableType: "UndecodableType"
        }
    }

    /// The tensor the rule is about, if any.
    public var tensor: String? {
        switch self {
        case let .truncated(_, tensor, _), let .invalidUTF8(_, tensor, _): tensor
        case let .duplicateTensorName(_, tensor), let .tooManyDimensions(_, tensor, _),
             let .unknownTensorType(_, tensor, _), let .dimensionOverflow(_, tensor),
             let .rowNotBlockAligned(_, tensor, _, _, _), let .tensorDataMisaligned(_, tensor, _, _),
             let .tensorDataOutOfBounds(_, tensor, _, _), let .tensorDataOverlap(_, tensor, _),
             let .undecodableType(_, tensor, _):
            tensor
        default: nil
        }
    }

    private static let truncatedHint = "a truncated download or a corrupt file; fetch the file again"

    /// The problem as data; its rule is ``ruleName`` in snake_case.
    public var diagnostic: CheckpointDiagnostic {
        let (file, message, advice): (String, String, String?)
        switch self {
        case let .badMagic(path):
            (file, message, advice) = (path, "the file does not start with the bytes 'GGUF'", "it is not a GGUF file")
        case let .unsupportedVersion(path, version):
            let swapped = version.byteSwapped
            let hint = (swapped == 2 || swapped == 3)
                ? "this is a big-endian GGUF file; qpk reads little-endian GGUF only"
                : "qpk reads GGUF versions 2 and 3; re-export the model with a current gguf writer"
            (file, message, advice) = (path, "version \(version)", hint)
        case let .countBeyondFile(path, what, count):
            (file, message, advice) = (path, "the header declares \(count) \(what), more than the rest of the file can hold", Self.truncatedHint)
        case let .truncated(path, _, what):
            (file, message, advice) = (path, "\(what) runs past the end of the file", Self.truncatedHint)
        case let .arrayTooLong(path, key, count):
            (file, message, advice) = (path, "metadata key '\(key)' holds an array of \(count) elements, more than the \(GGUFHeader.maximumArrayLength) qpk reads", "the file is corrupt or not a model")
        case let .unknownValueType(path, key, type):
            (file, message, advice) = (path, "metadata key '\(key)' has value type \(type), not one of GGUF's 0…12", "the file is corrupt or from a newer GGUF")
        case let .invalidUTF8(path, _, what):
            (file, message, advice) = (path, "\(what) is not valid UTF-8", "the file is corrupt")
        case let .duplicateKey(path, key):
            (file, message, advice) = (path, "metadata key '\(key)' appears more than once", "keys must be unique")
        case let .invalidAlignment(path, detail):
            (file, message, advice) = (path, "general.alignment \(detail)", "it must be a uint32 power of two")
        case let .duplicateTensorName(path, _):
            (file, message, advice) = (path, "two tensors have this name", "names must be unique")
        case let .tooManyDimensions(path, _, dimensions):
            (file, message, advice) = (path, "\(dimensions) dimensions, ggml allows at most 4", "the tensor info is corrupt")
        case let .unknownTensorType(path, _, type):
            (file, message, advice) = (path, "ggml type \(type) is not a known type", "the file is corrupt or from a newer ggml")
        case let .dimensionOverflow(path, _):
            (file, message, advice) = (path, "a dimension is negative or the element count overflows 64 bits", "the tensor info is corrupt")
        case let .rowNotBlockAligned(path, _, type, rowLength, blockSize):
            (file, message, advice) = (path, "\(type) stores blocks of \(blockSize) values but the first dimension is \(rowLength)", "the tensor info is corrupt")
        case let .tensorDataMisaligned(path, _, offset, alignment):
            (file, message, advice) = (path, "data offset \(offset) is not a multiple of the alignment \(alignment)", "the tensor info is corrupt")
        case let .tensorDataOutOfBounds(path, _, end, dataSize):
            (file, message, advice) = (path, "its data ends at byte \(end) of the data section, which has \(dataSize) bytes", Self.truncatedHint)
        case let .tensorDataOverlap(path, _, other):
            (file, message, advice) = (path, "its data overlaps tensor '\(other)'", "the tensor offsets are corrupt")
        case let .undecodableType(path, _, type):
            (file, message, advice) = (path, "qpk cannot decode \(type) values (it decodes F32, F16, BF16, F64, I8-I64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K, IQ4_NL, IQ4_XS)", "exclude the tensor or convert it with llama.cpp first")
        }
        return CheckpointDiagnostic(
            file: file, tensor: tensor, rule: CheckpointDiagnostic.snakeCase(ruleName), detail: message, hint: advice)
    }
}

/// Misuse of ``GGUFWriter``.
public enum GGUFWriterError: Error, CustomStringConvertible, Equatable, Sendable {
    case duplicateTensor(path: String, tensor: String)
    case rowNotBlockAligned(path: String, tensor: String, type: String, rowLength: Int)
    case tooManyDimensions(path: String, tensor: String, dimensions: Int)
    case unannouncedTensor(path: String, tensor: String)
    case tensorWrittenTwice(path: String, tensor: String)
    case quantizedStorage(path: String, tensor: String)
    case wrongByteCount(path: String, tensor: String, expected: Int, actual: Int)
    case missingTensors(path: String, tensors: [String])
    case alreadyFinished(path: String)

    public var description: String {
        switch self {
        case let .duplicateTensor(path, name):
            "\(path): tensor '\(name)': announced twice; tensor names must be unique"
        case let .rowNotBlockAligned(path, name, type, rowLength):
            "\(path): tensor '\(name)': its row of \(rowLength) values is not a whole number of \(type) blocks; store it as F32 or F16"
        case let .tooManyDimensions(path, name, dimensions):
            "\(path): tensor '\(name)': has \(dimensions) dimensions, GGUF stores at most 4; reshape it or write safetensors"
        case let .unannouncedTensor(path, name):
            "\(path): tensor '\(name)': was not announced to the writer with this shape; pass it to init"
        case let .tensorWrittenTwice(path, name):
            "\(path): tensor '\(name)': written twice; write each tensor once"
        case let .quantizedStorage(path, name):
            "\(path): tensor '\(name)': is a QPK-quantized tensor; GGUF stores ggml blocks, so dequantize it first"
        case let .wrongByteCount(path, name, expected, actual):
            "\(path): tensor '\(name)': got \(actual) bytes but its ggml type and shape need \(expected); pass the tensor's exact bytes"
        case let .missingTensors(path, names):
            "\(path): \(names.count) announced tensor(s) never written (first: '\(names.first ?? "")'); write every tensor before finish()"
        case let .alreadyFinished(path):
            "\(path): the writer has already finished; create a new writer"
        }
    }
}
