import QPKCore

/// Everything that can go wrong reading or writing an HDF5 checkpoint.
///
/// Each description is one line naming the file, the dataset when there is one, what failed and a
/// hint the user can act on. The library's own error stack is never printed; its innermost message
/// is folded into ``operationFailed(file:object:operation:detail:hint:)`` instead.
public enum HDF5Error: CheckpointDiagnosable, Equatable, Sendable {
    /// The file does not start with the HDF5 signature (at offset 0, 512, 1024, …).
    case notHDF5(file: String)
    /// libhdf5 refused to open the file.
    case cannotOpen(file: String, detail: String)
    /// A libhdf5 call on `object` (a group, dataset or attribute path) returned an error.
    case operationFailed(file: String, object: String, operation: String, detail: String, hint: String)
    /// The dataset is not a numeric tensor qpk can read (it is listed in `HDF5Reader.skipped`).
    case notATensor(file: String, dataset: String, reason: String)
    /// The dataset declares more data than this machine could hold.
    case datasetTooLarge(file: String, dataset: String, bytes: String)
    /// A tensor name that has no reversible HDF5 path (see spec/hdf5-mapping.md).
    case invalidName(file: String, name: String, reason: String)
    /// A tensor name is both a dataset and a group (`a` and `a/b`).
    case nameConflict(file: String, name: String)
    /// ``HDF5Writer/write(_:storage:)`` got a tensor the initializer did not announce, or got it twice.
    case unexpectedTensor(file: String, name: String, reason: String)
    /// ``HDF5Writer/finish()`` was called before every announced tensor was written.
    case missingTensors(file: String, names: [String])
    /// The bytes handed to the writer do not match the tensor's dtype and shape.
    case sizeMismatch(file: String, name: String, expected: Int, actual: Int)
    /// Quantized storage handed to the HDF5 writer, which stores dense tensors only.
    case quantizedTensor(file: String, name: String)
    /// The `hdf5.*` metadata handed to the writer is malformed.
    case invalidMetadata(file: String, key: String, reason: String)
    /// The isolated worker died on the file (`signal` is e.g. `SIGSEGV`, almost always inside
    /// libhdf5); see ``HDF5Isolation``.
    case libraryCrashed(file: String, signal: String, step: String)
    /// The isolated worker made no progress for `seconds` (libhdf5 looping) and was killed.
    case libraryHung(file: String, seconds: Int, step: String)
    /// The worker process for ``HDF5Isolation`` could not be started.
    case workerUnavailable(file: String, reason: String)

    /// The problem as data (rules listed in spec/cli.md §8).
    public var diagnostic: CheckpointDiagnostic {
        switch self {
        case let .notHDF5(file):
            CheckpointDiagnostic(
                file: file, rule: "signature", detail: "not an HDF5 file (no \\x89HDF signature at offset 0, 512, 1024, …)",
                hint: "check the path")
        case let .cannotOpen(file, detail):
            CheckpointDiagnostic(
                file: file, rule: "open", detail: "cannot open as HDF5 (\(detail))",
                hint: "the file is probably truncated or corrupt, re-download it")
        case let .operationFailed(file, object, operation, detail, hint):
            CheckpointDiagnostic(
                file: file, tensor: object, rule: "operation_failed",
                detail: "\(operation) failed\(detail.isEmpty ? "" : " (\(detail))")", hint: hint)
        case let .notATensor(file, dataset, reason):
            CheckpointDiagnostic(
                file: file, tensor: dataset, rule: "not_a_tensor", detail: "not a numeric tensor: \(reason)",
                hint: "it is skipped")
        case let .datasetTooLarge(file, dataset, bytes):
            CheckpointDiagnostic(
                file: file, tensor: dataset, rule: "dataset_too_large",
                detail: "declares \(bytes) bytes, more than this machine's memory", hint: "the file is probably corrupt")
        case let .invalidName(file, name, reason):
            CheckpointDiagnostic(
                file: file, tensor: name, rule: "invalid_name", detail: "the name cannot be an HDF5 path: \(reason)",
                hint: "rename it (see spec/hdf5-mapping.md)")
        case let .nameConflict(file, name):
            CheckpointDiagnostic(
                file: file, tensor: name, rule: "name_conflict",
                detail: "the name is both a dataset and a group prefix of another tensor", hint: "rename one of them")
        case let .unexpectedTensor(file, name, reason):
            CheckpointDiagnostic(
                file: file, tensor: name, rule: "unexpected_tensor", detail: reason,
                hint: "announce every tensor exactly once to the writer")
        case let .missingTensors(file, names):
            CheckpointDiagnostic(
                file: file, rule: "missing_tensors",
                detail: "\(names.count) announced tensor(s) never written (first: '\(names.first ?? "")')",
                hint: "write them before finish()")
        case let .sizeMismatch(file, name, expected, actual):
            CheckpointDiagnostic(
                file: file, tensor: name, rule: "size_mismatch",
                detail: "got \(actual) bytes, dtype and shape need \(expected)", hint: "check the source tensor")
        case let .quantizedTensor(file, name):
            CheckpointDiagnostic(
                file: file, tensor: name, rule: "quantized_tensor", detail: "is quantized and HDF5 stores dense tensors",
                hint: "dequantize it first")
        case let .invalidMetadata(file, key, reason):
            CheckpointDiagnostic(
                file: file, rule: "invalid_metadata", detail: "metadata '\(key)': \(reason)",
                hint: "it must be the JSON written by HDF5Reader (spec/hdf5-mapping.md)")
        case let .libraryCrashed(file, _, _), let .libraryHung(file, _, _):
            CheckpointDiagnostic(
                file: file, rule: HDF5Problem.Rule.libraryFailure.rawValue, detail: reason,
                hint: "the file is corrupt, re-download or re-export it")
        case let .workerUnavailable(file, _):
            CheckpointDiagnostic(
                file: file, rule: "worker_unavailable", detail: reason,
                hint: "reinstall qpk, or turn HDF5Isolation off to read HDF5 in-process")
        }
    }

    /// What went wrong, without the file name and hint (for validation reports).
    public var reason: String {
        switch self {
        case let .libraryCrashed(_, signal, step):
            "the isolated HDF5 worker process crashed (\(signal)) while \(step)"
        case let .libraryHung(_, seconds, step):
            "the isolated HDF5 worker process made no progress for \(seconds) s while \(step) and was stopped (QPK_HDF5_STALL_SECONDS sets the limit)"
        case let .workerUnavailable(_, reason):
            "cannot start the HDF5 worker process (\(reason))"
        default:
            diagnostic.detail
        }
    }
}

/// One finding of ``HDF5Reader/validate(url:)``.
public struct HDF5Problem: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The rule a file broke.
    public enum Rule: String, Sendable, Equatable, Codable {
        /// No HDF5 signature at offset 0 or any power-of-two userblock offset ≥ 512.
        case signature
        /// libhdf5 cannot open the file or walk its tree.
        case open
        /// A dataset (or its attributes) cannot be read to the end.
        case unreadable
        /// A dataset's element type has no qpk dtype (strings, compound, references, …).
        case unsupportedDType = "unsupported_dtype"
        /// libhdf5 crashed or hung on the file, in the isolated worker process (``HDF5Isolation``).
        case libraryFailure = "library_failure"
    }

    public var file: String
    public var dataset: String?
    public var rule: Rule
    public var message: String
    public var hint: String

    public init(file: String, dataset: String?, rule: Rule, message: String, hint: String) {
        self.file = file
        self.dataset = dataset
        self.rule = rule
        self.message = message
        self.hint = hint
    }

    /// The finding as data.
    public var diagnostic: CheckpointDiagnostic {
        CheckpointDiagnostic(file: file, tensor: dataset, rule: rule.rawValue, detail: message, hint: hint)
    }

    public var description: String { diagnostic.description }
}
