import QPKCore

/// Why a file is not a valid safetensors file: one case per check of the reference validator
/// (huggingface/safetensors 0.8, `SafeTensors::read_metadata`), in the order it runs them, named
/// after the reference's error variants. See `../shared/DESIGN.md` §2.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Rule 1: the file is shorter than the 8-byte header length.
    case headerTooSmall(path: String, fileSize: Int)
    /// Rule 2: the declared header length exceeds 100,000,000 bytes.
    case headerTooLarge(path: String, headerLength: UInt64, isGitLFSPointer: Bool)
    /// Rule 3: the header length plus 8 runs past the end of the file.
    case invalidHeaderLength(path: String, headerLength: UInt64, fileSize: Int, isGitLFSPointer: Bool)
    /// Rule 4: the header bytes are not valid UTF-8.
    case invalidHeader(path: String)
    /// Rule 5: the header is not a JSON object of the expected shape (syntax, duplicate keys,
    /// unknown dtype, missing or mistyped field, non-string metadata value).
    case invalidHeaderDeserialization(path: String, detail: String)
    /// Rule 6: taken in offset order, the tensor does not start where the previous one ended, or
    /// ends before it begins.
    case invalidOffset(path: String, tensor: String)
    /// Rule 7: the element count (or bit count) of the tensor overflows.
    case validationOverflow(path: String, tensor: String)
    /// Rule 8: a sub-byte dtype's total size is not a whole number of bytes.
    case misalignedSlice(path: String, tensor: String)
    /// Rule 9: the byte range does not have the size that shape and dtype imply.
    case tensorInvalidInfo(path: String, tensor: String)
    /// Rule 10: the tensors do not cover the byte buffer exactly up to the end of the file.
    case metadataIncompleteBuffer(path: String, expectedSize: UInt64, fileSize: Int, isGitLFSPointer: Bool)

    /// The reference implementation's name for the broken rule (stable; used in JSON output).
    public var ruleName: String {
        switch self {
        case .headerTooSmall: "HeaderTooSmall"
        case .headerTooLarge: "HeaderTooLarge"
        case .invalidHeaderLength: "InvalidHeaderLength"
        case .invalidHeader: "InvalidHeader"
        case .invalidHeaderDeserialization: "InvalidHeaderDeserialization"
        case .invalidOffset: "InvalidOffset"
        case .validationOverflow: "ValidationOverflow"
        case .misalignedSlice: "MisalignedSlice"
        case .tensorInvalidInfo: "TensorInvalidInfo"
        case .metadataIncompleteBuffer: "MetadataIncompleteBuffer"
        }
    }

    /// The file the error is about.
    public var path: String {
        switch self {
        case let .headerTooSmall(path, _), let .headerTooLarge(path, _, _),
             let .invalidHeaderLength(path, _, _, _), let .invalidHeader(path),
             let .invalidHeaderDeserialization(path, _), let .invalidOffset(path, _),
             let .validationOverflow(path, _), let .misalignedSlice(path, _),
             let .tensorInvalidInfo(path, _), let .metadataIncompleteBuffer(path, _, _, _):
            path
        }
    }

    /// The tensor the error is about, when the rule is about one tensor.
    public var tensor: String? {
        switch self {
        case let .invalidOffset(_, name), let .validationOverflow(_, name),
             let .misalignedSlice(_, name), let .tensorInvalidInfo(_, name):
            name
        default:
            nil
        }
    }

    private static let truncatedHint = "looks like a git-lfs pointer or a truncated download; fetch the file again"
    private static let lfsHint = "this is a git-lfs pointer, not the model: run `git lfs pull` or download the real file"

    public var description: String {
        switch self {
        case let .headerTooSmall(path, size):
            return "\(path): HeaderTooSmall: the file has \(size) bytes, fewer than the 8-byte header length; \(Self.truncatedHint)"
        case let .headerTooLarge(path, length, lfs):
            return "\(path): HeaderTooLarge: declared header length \(length) exceeds 100000000 bytes; "
                + (lfs ? Self.lfsHint : Self.truncatedHint)
        case let .invalidHeaderLength(path, length, size, lfs):
            return "\(path): InvalidHeaderLength: header length \(length) + 8 runs past the end of the \(size)-byte file; "
                + (lfs ? Self.lfsHint : Self.truncatedHint)
        case let .invalidHeader(path):
            return "\(path): InvalidHeader: the JSON header is not valid UTF-8; the file is corrupt or not safetensors"
        case let .invalidHeaderDeserialization(path, detail):
            return "\(path): InvalidHeaderDeserialization: \(detail); the header must be a JSON object of {dtype, shape, data_offsets} entries plus an optional string-to-string __metadata__"
        case let .invalidOffset(path, name):
            return "\(path): tensor '\(name)': InvalidOffset: in offset order each tensor must begin where the previous one ended (the first at 0) and end at or after its begin; the header's data_offsets are corrupt"
        case let .validationOverflow(path, name):
            return "\(path): tensor '\(name)': ValidationOverflow: the element count of its shape overflows 64 bits; the shape in the header is corrupt"
        case let .misalignedSlice(path, name):
            return "\(path): tensor '\(name)': MisalignedSlice: a sub-byte dtype's total size is not a whole number of bytes; fix the shape or dtype"
        case let .tensorInvalidInfo(path, name):
            return "\(path): tensor '\(name)': TensorInvalidInfo: data_offsets span a different number of bytes than shape × dtype implies; the header is corrupt"
        case let .metadataIncompleteBuffer(path, expected, size, lfs):
            return "\(path): MetadataIncompleteBuffer: the header describes a \(expected)-byte file but it has \(size) bytes; "
                + (lfs ? Self.lfsHint : Self.truncatedHint)
        }
    }
}

/// Misuse of ``SafetensorsWriter`` or ``ShardedSafetensorsWriter``.
public enum SafetensorsWriterError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Two announced tensors have the same name.
    case duplicateTensor(path: String, tensor: String)
    /// The announced shape has no whole-byte size in its dtype (overflow or sub-byte remainder).
    case invalidShape(path: String, tensor: String)
    /// `write` was called for a tensor that was not announced, or with a different dtype/shape.
    case unannouncedTensor(path: String, tensor: String)
    /// `write` was called twice for the same tensor.
    case tensorWrittenTwice(path: String, tensor: String)
    /// The storage was quantized; safetensors stores dense bytes only.
    case quantizedStorage(path: String, tensor: String)
    /// The dense bytes do not have the size that shape and dtype imply.
    case wrongByteCount(path: String, tensor: String, expected: Int, actual: Int)
    /// `finish` was called before every announced tensor was written.
    case missingTensors(path: String, tensors: [String])
    /// A metadata key is `__metadata__`-reserved or a tensor is called `__metadata__`.
    case reservedName(path: String, name: String)
    /// `maxShardSize` was not positive.
    case invalidShardSize(path: String, size: Int)
    /// `write` or `finish` was called after `finish`.
    case alreadyFinished(path: String)

    /// The same error reported against `path` (a sharded writer reports its directory rather than
    /// the temporary shard file).
    func reported(at path: String) -> SafetensorsWriterError {
        switch self {
        case let .duplicateTensor(_, name): .duplicateTensor(path: path, tensor: name)
        case let .invalidShape(_, name): .invalidShape(path: path, tensor: name)
        case let .unannouncedTensor(_, name): .unannouncedTensor(path: path, tensor: name)
        case let .tensorWrittenTwice(_, name): .tensorWrittenTwice(path: path, tensor: name)
        case let .quantizedStorage(_, name): .quantizedStorage(path: path, tensor: name)
        case let .wrongByteCount(_, name, expected, actual):
            .wrongByteCount(path: path, tensor: name, expected: expected, actual: actual)
        case let .missingTensors(_, names): .missingTensors(path: path, tensors: names)
        case let .reservedName(_, name): .reservedName(path: path, name: name)
        case let .invalidShardSize(_, size): .invalidShardSize(path: path, size: size)
        case .alreadyFinished: .alreadyFinished(path: path)
        }
    }

    public var description: String {
        switch self {
        case let .duplicateTensor(path, name):
            "\(path): tensor '\(name)': announced twice; tensor names must be unique"
        case let .invalidShape(path, name):
            "\(path): tensor '\(name)': shape has no whole-byte size in its dtype (overflow or sub-byte remainder); fix the shape"
        case let .unannouncedTensor(path, name):
            "\(path): tensor '\(name)': was not announced to the writer with this dtype and shape; pass it to init"
        case let .tensorWrittenTwice(path, name):
            "\(path): tensor '\(name)': written twice; write each tensor once"
        case let .quantizedStorage(path, name):
            "\(path): tensor '\(name)': is quantized; safetensors stores dense tensors only, dequantize it first"
        case let .wrongByteCount(path, name, expected, actual):
            "\(path): tensor '\(name)': got \(actual) bytes but shape × dtype needs \(expected); pass the tensor's exact bytes"
        case let .missingTensors(path, names):
            "\(path): \(names.count) announced tensor(s) never written (first: '\(names.first ?? "")'); write every tensor before finish()"
        case let .reservedName(path, name):
            "\(path): tensor '\(name)': the name __metadata__ is reserved by safetensors; rename the tensor"
        case let .invalidShardSize(path, size):
            "\(path): maximum shard size \(size) is not positive; pass a size of at least 1 byte"
        case let .alreadyFinished(path):
            "\(path): the writer has already finished; create a new writer"
        }
    }
}
