import Foundation
import QPKCore

/// The checkpoint formats qpk reads and writes.
public enum CheckpointFormat: String, Sendable, Codable, CaseIterable {
    case safetensors
    case hdf5
    case qpk
    case gguf
}

/// Read access to a checkpoint in any format: tensor descriptions up front, data on demand.
///
/// Readers map or read lazily: asking for `tensors` costs only the header, and each
/// ``storage(of:)`` call touches only that tensor's bytes, so memory stays bounded by the largest
/// tensor. Readers are safe to use from several threads at once.
public protocol CheckpointReader: AnyObject, Sendable {
    /// The file (or directory, or index file) that was opened.
    var url: URL { get }
    var format: CheckpointFormat { get }
    /// Every tensor, in the file's order.
    var tensors: [TensorInfo] { get }
    /// File-level metadata: safetensors `__metadata__`, HDF5 attributes as documented by the HDF5
    /// reader, QPK's carried-over source metadata.
    var metadata: [String: String] { get }
    /// The stored data of `tensor`.
    /// - Throws: a format error naming the tensor when its bytes cannot be read or are corrupt.
    func storage(of tensor: TensorInfo) throws -> TensorStorage
    /// The bytes `tensor` occupies when the format stores it quantized, or `nil` when it is stored
    /// dense in its dtype. The default is `nil`; QPK answers from its header, without reading data.
    func quantizedByteCount(of tensor: TensorInfo) -> Int?
    /// The tensor called `name`, if any. Readers answer from a name index in O(1), so callers
    /// that look tensors up one by one stay linear in the tensor count.
    func tensor(named name: String) -> TensorInfo?
}

extension CheckpointReader {
    public func quantizedByteCount(of tensor: TensorInfo) -> Int? { nil }

    /// Whether `tensor` is stored quantized.
    public func isQuantized(_ tensor: TensorInfo) -> Bool { quantizedByteCount(of: tensor) != nil }

    /// The tensor called `name`, if any: a linear scan, for readers without a name index.
    public func tensor(named name: String) -> TensorInfo? {
        tensors.first { $0.name == name }
    }

    /// The tensor's bytes, which must be stored dense.
    public func denseBytes(of tensor: TensorInfo) throws -> TensorBytes {
        switch try storage(of: tensor) {
        case let .dense(bytes): return bytes
        case .quantized: throw CheckpointError.quantizedTensor(url.path, tensor.name)
        }
    }
}

/// Streaming write access to a checkpoint.
///
/// The caller announces every tensor (in the desired order) to the writer's initializer, then
/// calls ``write(_:storage:)`` once per tensor, in any order, and finally ``finish()``.
/// A writer that fails or is dropped before `finish()` leaves nothing at the destination.
public protocol CheckpointWriter: AnyObject {
    /// Writes one tensor's data. `storage` must be `.dense` bytes in `info.dtype` unless the
    /// format stores quantized tensors (QPK).
    func write(_ info: TensorInfo, storage: TensorStorage) throws
    /// Completes the file and moves it into place.
    func finish() throws
}

/// Errors common to every checkpoint format.
public enum CheckpointError: CheckpointDiagnosable, Sendable, Equatable {
    case unknownFormat(String)
    case quantizedTensor(String, String)
    case noSuchTensor(String, String)
    case unsupportedDType(String, String, DType)

    public var diagnostic: CheckpointDiagnostic {
        switch self {
        case let .unknownFormat(path):
            CheckpointDiagnostic(
                file: path, rule: "unknown_format", detail: "not a safetensors, HDF5, QPK or GGUF file (unrecognised magic bytes)")
        case let .quantizedTensor(path, name):
            CheckpointDiagnostic(file: path, tensor: name, rule: "quantized_tensor", detail: "is quantized", hint: "dequantize it first")
        case let .noSuchTensor(path, name):
            CheckpointDiagnostic(file: path, tensor: name, rule: "no_such_tensor", detail: "there is no tensor of this name")
        case let .unsupportedDType(path, name, dtype):
            CheckpointDiagnostic(
                file: path, tensor: name, rule: "unsupported_dtype",
                detail: "dtype \(dtype.rawValue) cannot be converted to or from float")
        }
    }
}
