import QPKCore

/// Everything that can be wrong with a QPK file, or with what a caller asks ``QPKWriter`` to store.
///
/// Cases up to ``nonZeroPadding(path:offset:)`` are the numbered validation rules of
/// `spec/qpk-format.md` §8 (``rule`` gives each rule's name); the rest are writer misuse.
/// Every ``description`` is one line naming the file, the tensor when there is one, the broken
/// rule and a hint.
public enum QPKError: Error, CustomStringConvertible, Equatable, Sendable {
    // Structural rules (checked on open).
    case fileTooSmall(path: String, size: Int)
    case badMagic(path: String)
    case unsupportedVersion(path: String, version: UInt32)
    case reservedNotZero(path: String)
    case preambleChecksumMismatch(path: String, stored: UInt32, computed: UInt32)
    case headerMisplaced(path: String, offset: UInt64, length: UInt64)
    case truncated(path: String, needed: UInt64, size: Int)
    case trailingBytes(path: String, expected: UInt64, size: Int)
    case headerChecksumMismatch(path: String, stored: UInt32, computed: UInt32)
    case invalidHeader(path: String, reason: String)
    /// Rule 10a: a JSON object of the header has two members with the same key.
    case duplicateKey(path: String, key: String)
    case duplicateTensor(path: String, tensor: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case invalidShape(path: String, tensor: String, reason: String)
    case unknownEncoding(path: String, tensor: String, encoding: String)
    case invalidQuantization(path: String, tensor: String, reason: String)
    case blobSetMismatch(path: String, tensor: String, reason: String)
    case blobMisaligned(path: String, tensor: String, blob: String, offset: Int)
    case blobOutOfBounds(path: String, tensor: String, blob: String, reason: String)
    case blobOverlap(path: String, tensor: String, blob: String, otherTensor: String, otherBlob: String)
    case blobLengthMismatch(path: String, tensor: String, blob: String, expected: Int, found: Int)
    case invalidOutlierRecord(path: String, tensor: String, reason: String)
    case outlierTotalsMismatch(path: String, reason: String)
    // Content rules (checked by `validate`, and 22–23 whenever a tensor is read).
    case blobChecksumMismatch(path: String, tensor: String, blob: String, stored: UInt32, computed: UInt32)
    case outlierIndicesInvalid(path: String, tensor: String, reason: String)
    case symmetricZeroPoint(path: String, tensor: String, found: Double, expected: Double)
    case nonZeroPadding(path: String, offset: Int)
    // Writer misuse.
    case tensorNotAnnounced(path: String, tensor: String)
    case tensorWrittenTwice(path: String, tensor: String)
    case tensorsNotWritten(path: String, tensors: [String])
    case invalidStorage(path: String, tensor: String, reason: String)
    case writerFinished(path: String)

    /// The spec's name of the broken rule (`spec/qpk-format.md` §8), or of the writer misuse.
    public var rule: String {
        switch self {
        case .fileTooSmall: "file_too_small"
        case .badMagic: "bad_magic"
        case .unsupportedVersion: "unsupported_version"
        case .reservedNotZero: "reserved_not_zero"
        case .preambleChecksumMismatch: "preamble_checksum"
        case .headerMisplaced: "header_misplaced"
        case .truncated: "truncated"
        case .trailingBytes: "trailing_bytes"
        case .headerChecksumMismatch: "header_checksum"
        case .invalidHeader: "invalid_header"
        case .duplicateKey: "duplicate_key"
        case .duplicateTensor: "duplicate_tensor"
        case .unknownDType: "unknown_dtype"
        case .invalidShape: "invalid_shape"
        case .unknownEncoding: "unknown_encoding"
        case .invalidQuantization: "invalid_quantization"
        case .blobSetMismatch: "blob_set"
        case .blobMisaligned: "blob_misaligned"
        case .blobOutOfBounds: "blob_out_of_bounds"
        case .blobOverlap: "blob_overlap"
        case .blobLengthMismatch: "blob_length"
        case .invalidOutlierRecord, .outlierTotalsMismatch: "invalid_outlier_record"
        case .blobChecksumMismatch: "blob_checksum"
        case .outlierIndicesInvalid: "outlier_indices"
        case .symmetricZeroPoint: "symmetric_zero_point"
        case .nonZeroPadding: "nonzero_padding"
        case .tensorNotAnnounced: "tensor_not_announced"
        case .tensorWrittenTwice: "tensor_written_twice"
        case .tensorsNotWritten: "tensors_not_written"
        case .invalidStorage: "invalid_storage"
        case .writerFinished: "writer_finished"
        }
    }

    /// The tensor the problem is about, if any.
    public var tensor: String? {
        switch self {
        case let .duplicateTensor(_, tensor), let .unknownDType(_, tensor, _), let .invalidShape(_, tensor, _),
             let .unknownEncoding(_, tensor, _), let .invalidQuantization(_, tensor, _),
             let .blobSetMismatch(_, tensor, _), let .blobMisaligned(_, tensor, _, _),
             let .blobOutOfBounds(_, tensor, _, _), let .blobOverlap(_, tensor, _, _, _),
             let .blobLengthMismatch(_, tensor, _, _, _), let .invalidOutlierRecord(_, tensor, _),
             let .blobChecksumMismatch(_, tensor, _, _, _), let .outlierIndicesInvalid(_, tensor, _),
             let .symmetricZeroPoint(_, tensor, _, _), let .tensorNotAnnounced(_, tensor),
             let .tensorWrittenTwice(_, tensor), let .invalidStorage(_, tensor, _):
            tensor
        default:
            nil
        }
    }

    public var description: String {
        switch self {
        case let .fileTooSmall(path, size):
            "\(path): [file_too_small] only \(size) bytes, a QPK file has a 64-byte preamble; truncated download or not a QPK file"
        case let .badMagic(path):
            "\(path): [bad_magic] does not start with the QPK magic 89 51 50 4B 0D 0A 1A 0A; not a QPK file, or mangled by a text-mode transfer"
        case let .unsupportedVersion(path, version):
            "\(path): [unsupported_version] QPK version \(version), this qpk reads version 1; upgrade qpk"
        case let .reservedNotZero(path):
            "\(path): [reserved_not_zero] reserved preamble bytes are not zero; the file is corrupt or from an incompatible writer"
        case let .preambleChecksumMismatch(path, stored, computed):
            "\(path): [preamble_checksum] preamble CRC-32 is \(hex(computed)), recorded \(hex(stored)); the first 64 bytes are corrupt, re-create the file"
        case let .headerMisplaced(path, offset, length):
            "\(path): [header_misplaced] header offset \(offset) / length \(length) is not 64-aligned, before byte 64, empty or over 256 MiB; the preamble is corrupt"
        case let .truncated(path, needed, size):
            "\(path): [truncated] the header ends at byte \(needed) but the file has \(size) bytes; truncated download or copy, fetch it again"
        case let .trailingBytes(path, expected, size):
            "\(path): [trailing_bytes] \(size) bytes where the header says the file ends at \(expected); extra data was appended, re-create the file"
        case let .headerChecksumMismatch(path, stored, computed):
            "\(path): [header_checksum] JSON header CRC-32 is \(hex(computed)), recorded \(hex(stored)); the header is corrupt, re-create the file"
        case let .invalidHeader(path, reason):
            "\(path): [invalid_header] \(reason); the JSON header does not follow spec/qpk-format.md §4"
        case let .duplicateKey(path, key):
            "\(path): [duplicate_key] the key \"\(key)\" appears twice in one object of the JSON header; readers disagree on which one counts, so the file is ambiguous: re-create it"
        case let .duplicateTensor(path, tensor):
            "\(path): tensor '\(tensor)': [duplicate_tensor] the name appears more than once; tensor names must be unique"
        case let .unknownDType(path, tensor, dtype):
            "\(path): tensor '\(tensor)': [unknown_dtype] '\(dtype)' is not a safetensors dtype name (F32, BF16, I64, …)"
        case let .invalidShape(path, tensor, reason):
            "\(path): tensor '\(tensor)': [invalid_shape] \(reason); the header is corrupt"
        case let .unknownEncoding(path, tensor, encoding):
            "\(path): tensor '\(tensor)': [unknown_encoding] '\(encoding)' is neither 'raw' nor 'affine'; written by a newer qpk?"
        case let .invalidQuantization(path, tensor, reason):
            "\(path): tensor '\(tensor)': [invalid_quantization] \(reason); bits must be 2/3/4/8, group_size ≥ 1, axis -1 or 0"
        case let .blobSetMismatch(path, tensor, reason):
            "\(path): tensor '\(tensor)': [blob_set] \(reason); see spec/qpk-format.md §4.2"
        case let .blobMisaligned(path, tensor, blob, offset):
            "\(path): tensor '\(tensor)': [blob_misaligned] blob '\(blob)' starts at \(offset), not a multiple of 64; the header is corrupt"
        case let .blobOutOfBounds(path, tensor, blob, reason):
            "\(path): tensor '\(tensor)': [blob_out_of_bounds] blob '\(blob)' \(reason); the header is corrupt or the file truncated"
        case let .blobOverlap(path, tensor, blob, otherTensor, otherBlob):
            "\(path): tensor '\(tensor)': [blob_overlap] blob '\(blob)' overlaps blob '\(otherBlob)' of tensor '\(otherTensor)'; the header is corrupt"
        case let .blobLengthMismatch(path, tensor, blob, expected, found):
            "\(path): tensor '\(tensor)': [blob_length] blob '\(blob)' has \(found) bytes, its shape and encoding need \(expected); the header is corrupt"
        case let .invalidOutlierRecord(path, tensor, reason):
            "\(path): tensor '\(tensor)': [invalid_outlier_record] \(reason); see spec/qpk-format.md §6"
        case let .outlierTotalsMismatch(path, reason):
            "\(path): [invalid_outlier_record] file-wide outlier totals \(reason); the header is corrupt"
        case let .blobChecksumMismatch(path, tensor, blob, stored, computed):
            "\(path): tensor '\(tensor)': [blob_checksum] blob '\(blob)' CRC-32 is \(hex(computed)), recorded \(hex(stored)); the data is corrupt, re-create or re-download the file"
        case let .outlierIndicesInvalid(path, tensor, reason):
            "\(path): tensor '\(tensor)': [outlier_indices] \(reason); indices must be strictly increasing and in range"
        case let .symmetricZeroPoint(path, tensor, found, expected):
            "\(path): tensor '\(tensor)': [symmetric_zero_point] zero-point \(found) in a symmetric tensor, which needs \(expected); the quantizer that wrote it is faulty"
        case let .nonZeroPadding(path, offset):
            "\(path): [nonzero_padding] padding byte at offset \(offset) is not zero; the file is corrupt"
        case let .tensorNotAnnounced(path, tensor):
            "\(path): tensor '\(tensor)': [tensor_not_announced] was not in the tensor list given to the writer (or its dtype/shape differ)"
        case let .tensorWrittenTwice(path, tensor):
            "\(path): tensor '\(tensor)': [tensor_written_twice] each tensor is written exactly once"
        case let .tensorsNotWritten(path, tensors):
            "\(path): [tensors_not_written] \(tensors.count) announced tensor(s) never written, first '\(tensors.first ?? "")'; write every tensor before finish()"
        case let .invalidStorage(path, tensor, reason):
            "\(path): tensor '\(tensor)': [invalid_storage] \(reason); the quantized data is inconsistent with its layout"
        case let .writerFinished(path):
            "\(path): [writer_finished] the writer has already finished; create a new one"
        }
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}

/// One problem found by ``QPKReader/validate()``: the tensor (if any), the rule, and a line to print.
public struct QPKProblem: Sendable, Equatable, CustomStringConvertible {
    public var tensor: String?
    /// The rule's name from `spec/qpk-format.md` §8 (e.g. `blob_checksum`).
    public var rule: String
    /// One line naming the file, tensor, rule and a hint.
    public var message: String
    public var error: QPKError

    public init(_ error: QPKError) {
        self.error = error
        tensor = error.tensor
        rule = error.rule
        message = error.description
    }

    public var description: String { message }
}
