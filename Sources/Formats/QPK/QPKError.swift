import QPKCore

/// Everything that can be wrong with a QPK file, or with what a caller asks ``QPKWriter`` to store.
///
/// Cases up to ``rowScaleNotFinite(path:tensor:row:)`` are the numbered validation rules of
/// `spec/qpk-format.md` §8 (``rule`` gives each rule's name); the rest are writer misuse.
/// Every ``description`` is one line naming the file, the tensor when there is one, the broken
/// rule and a hint.
public enum QPKError: CheckpointDiagnosable, Equatable, Sendable {
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
    // QPK v2 rules (26–28 and 31 structural, 29–30 and 32 content).
    /// Rule 26: a version-1 file has a tensor that uses a v2 feature.
    case featureNeedsVersion2(path: String, tensor: String, feature: String)
    /// Rule 27: an unknown `zero_points` value, or `none` without the symmetric scheme.
    case invalidZeroPoints(path: String, tensor: String, reason: String)
    /// Rule 28: an unknown transform kind, or a block size that is not a power of two ≥ 2
    /// dividing the column count.
    case invalidTransform(path: String, tensor: String, reason: String)
    /// Rule 29: a group-index entry ≥ G, or a group with more than `group_size` columns.
    case groupIndexInvalid(path: String, tensor: String, reason: String)
    /// Rule 30: a codebook entry is NaN or infinite.
    case codebookNotFinite(path: String, tensor: String, entry: Int)
    /// Rule 31: `scale_codes` is not an object, lacks `bits` or `octaves`, or they are not
    /// integers in 2 … 8 and 1 … 32 (§5.8).
    case invalidScaleCodes(path: String, tensor: String, reason: String)
    /// Rule 32: a `row_scales` entry is NaN or infinite (§5.8).
    case rowScaleNotFinite(path: String, tensor: String, row: Int)
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
        case .featureNeedsVersion2: "v2_feature_in_v1"
        case .invalidZeroPoints: "invalid_zero_points"
        case .invalidTransform: "invalid_transform"
        case .groupIndexInvalid: "group_index"
        case .codebookNotFinite: "codebook_not_finite"
        case .invalidScaleCodes: "invalid_scale_codes"
        case .rowScaleNotFinite: "row_scale_not_finite"
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
             let .tensorWrittenTwice(_, tensor), let .invalidStorage(_, tensor, _),
             let .featureNeedsVersion2(_, tensor, _), let .invalidZeroPoints(_, tensor, _),
             let .invalidTransform(_, tensor, _), let .groupIndexInvalid(_, tensor, _),
             let .codebookNotFinite(_, tensor, _), let .invalidScaleCodes(_, tensor, _),
             let .rowScaleNotFinite(_, tensor, _):
            tensor
        default:
            nil
        }
    }

    /// The problem as data: file, tensor, rule (``rule``), what is wrong and what to do.
    public var diagnostic: CheckpointDiagnostic {
        let (file, detail, hint): (String, String, String?) = switch self {
        case let .fileTooSmall(path, size):
            (path, "only \(size) bytes, a QPK file has a 64-byte preamble", "truncated download or not a QPK file")
        case let .badMagic(path):
            (path, "does not start with the QPK magic 89 51 50 4B 0D 0A 1A 0A", "not a QPK file, or mangled by a text-mode transfer")
        case let .unsupportedVersion(path, version):
            (path, "QPK version \(version), this qpk reads versions 1 and 2", "upgrade qpk")
        case let .reservedNotZero(path):
            (path, "reserved preamble bytes are not zero", "the file is corrupt or from an incompatible writer")
        case let .preambleChecksumMismatch(path, stored, computed):
            (path, "preamble CRC-32 is \(hex(computed)), recorded \(hex(stored))", "the first 64 bytes are corrupt, re-create the file")
        case let .headerMisplaced(path, offset, length):
            (path, "header offset \(offset) / length \(length) is not 64-aligned, before byte 64, empty or over 256 MiB", "the preamble is corrupt")
        case let .truncated(path, needed, size):
            (path, "the header ends at byte \(needed) but the file has \(size) bytes", "truncated download or copy, fetch it again")
        case let .trailingBytes(path, expected, size):
            (path, "\(size) bytes where the header says the file ends at \(expected)", "extra data was appended, re-create the file")
        case let .headerChecksumMismatch(path, stored, computed):
            (path, "JSON header CRC-32 is \(hex(computed)), recorded \(hex(stored))", "the header is corrupt, re-create the file")
        case let .invalidHeader(path, reason):
            (path, "\(reason)", "the JSON header does not follow spec/qpk-format.md §4")
        case let .duplicateKey(path, key):
            (path, "the key \"\(key)\" appears twice in one object of the JSON header", "readers disagree on which one counts, so the file is ambiguous: re-create it")
        case let .duplicateTensor(path, _):
            (path, "the name appears more than once", "tensor names must be unique")
        case let .unknownDType(path, _, dtype):
            (path, "'\(dtype)' is not a safetensors dtype name (F32, BF16, I64, …)", nil)
        case let .invalidShape(path, _, reason):
            (path, "\(reason)", "the header is corrupt")
        case let .unknownEncoding(path, _, encoding):
            (path, "'\(encoding)' is neither 'raw' nor 'affine'", "written by a newer qpk?")
        case let .invalidQuantization(path, _, reason):
            (path, "\(reason)", "bits must be 2/3/4/8, group_size ≥ 1, axis -1 or 0")
        case let .blobSetMismatch(path, _, reason):
            (path, "\(reason)", "see spec/qpk-format.md §4.2")
        case let .blobMisaligned(path, _, blob, offset):
            (path, "blob '\(blob)' starts at \(offset), not a multiple of 64", "the header is corrupt")
        case let .blobOutOfBounds(path, _, blob, reason):
            (path, "blob '\(blob)' \(reason)", "the header is corrupt or the file truncated")
        case let .blobOverlap(path, _, blob, otherTensor, otherBlob):
            (path, "blob '\(blob)' overlaps blob '\(otherBlob)' of tensor '\(otherTensor)'", "the header is corrupt")
        case let .blobLengthMismatch(path, _, blob, expected, found):
            (path, "blob '\(blob)' has \(found) bytes, its shape and encoding need \(expected)", "the header is corrupt")
        case let .invalidOutlierRecord(path, _, reason):
            (path, "\(reason)", "see spec/qpk-format.md §6")
        case let .outlierTotalsMismatch(path, reason):
            (path, "file-wide outlier totals \(reason)", "the header is corrupt")
        case let .blobChecksumMismatch(path, _, blob, stored, computed):
            (path, "blob '\(blob)' CRC-32 is \(hex(computed)), recorded \(hex(stored))", "the data is corrupt, re-create or re-download the file")
        case let .outlierIndicesInvalid(path, _, reason):
            (path, "\(reason)", "indices must be strictly increasing and in range")
        case let .symmetricZeroPoint(path, _, found, expected):
            (path, "zero-point \(found) in a symmetric tensor, which needs \(expected)", "the quantizer that wrote it is faulty")
        case let .nonZeroPadding(path, offset):
            (path, "padding byte at offset \(offset) is not zero", "the file is corrupt")
        case let .featureNeedsVersion2(path, _, feature):
            (path, "uses \(feature), a QPK v2 feature, in a version-1 file", "the writer must set version 2 (spec/qpk-format.md §2)")
        case let .invalidZeroPoints(path, _, reason):
            (path, "\(reason)", "zero_points is f16, packed or none (none only with scheme symmetric)")
        case let .invalidTransform(path, _, reason):
            (path, "\(reason)", "transform is {\"kind\": \"hadamard\", \"block_size\": B}, B a power of two ≥ 2 dividing the column count")
        case let .groupIndexInvalid(path, _, reason):
            (path, "\(reason)", "each column's group must be < G and hold at most group_size columns (§5.5)")
        case let .codebookNotFinite(path, _, entry):
            (path, "codebook entry \(entry) is not finite", "the quantizer that wrote it is faulty")
        case let .invalidScaleCodes(path, _, reason):
            (path, "\(reason)", "scale_codes is {\"bits\": K, \"octaves\": O}, K an integer in 2 … 8 and O in 1 … 32 (§5.8)")
        case let .rowScaleNotFinite(path, _, row):
            (path, "row scale \(row) is not finite", "the quantizer that wrote it is faulty")
        case let .tensorNotAnnounced(path, _):
            (path, "was not in the tensor list given to the writer (or its dtype/shape differ)", nil)
        case let .tensorWrittenTwice(path, _):
            (path, "each tensor is written exactly once", nil)
        case let .tensorsNotWritten(path, tensors):
            (path, "\(tensors.count) announced tensor(s) never written, first '\(tensors.first ?? "")'", "write every tensor before finish()")
        case let .invalidStorage(path, _, reason):
            (path, "\(reason)", "the quantized data is inconsistent with its layout")
        case let .writerFinished(path):
            (path, "the writer has already finished", "create a new one")
        }
        return CheckpointDiagnostic(file: file, tensor: tensor, rule: rule, detail: detail, hint: hint)
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

    /// The problem as data.
    public var diagnostic: CheckpointDiagnostic { error.diagnostic }

    public var description: String { message }
}
