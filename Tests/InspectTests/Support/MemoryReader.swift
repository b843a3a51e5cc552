import Foundation
import Formats
@testable import Inspect
import QPKCore
import Quantize

/// A checkpoint held in memory, for tests: dense tensors as encoded bytes, or quantized tensors.
final class MemoryReader: CheckpointReader, @unchecked Sendable {
    let url: URL
    let format: CheckpointFormat
    let metadata: [String: String]
    private(set) var tensors: [TensorInfo] = []
    private var stored: [String: TensorStorage] = [:]

    init(name: String = "memory.safetensors", format: CheckpointFormat = .safetensors, metadata: [String: String] = [:]) {
        url = URL(fileURLWithPath: "/tmp/\(name)")
        self.format = format
        self.metadata = metadata
    }

    /// Adds a dense tensor whose values are encoded as `dtype`.
    @discardableResult
    func add(_ name: String, _ values: [Float], shape: [Int]? = nil, dtype: DType = .f32) -> MemoryReader {
        let info = TensorInfo(name: name, dtype: dtype, shape: shape ?? [values.count])
        var bytes = [UInt8](repeating: 0, count: info.byteCount)
        values.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { FloatCodec.encode(src, as: dtype, into: $0) }
        }
        tensors.append(info)
        stored[name] = .dense(TensorBytes(copying: bytes))
        return self
    }

    /// Adds raw bytes for a tensor of any dtype.
    func add(_ name: String, bytes: [UInt8], dtype: DType, shape: [Int]) {
        tensors.append(TensorInfo(name: name, dtype: dtype, shape: shape))
        stored[name] = .dense(TensorBytes(copying: bytes))
    }

    /// Adds a quantized tensor.
    func add(_ quantized: QuantizedTensor) {
        tensors.append(quantized.info)
        stored[quantized.info.name] = .quantized(quantized)
    }

    func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let storage = stored[tensor.name] else { throw CheckpointError.noSuchTensor(url.path, tensor.name) }
        return storage
    }
}

/// A 4-bit affine quantized tensor of 2×4 values with known codes: row r, column c has code
/// `c + 4r`, scale 0.5, zero 8, so its values are `(c + 4r − 8) · 0.5`.
func smallQuantized(name: String = "q.weight", outliers: OutlierSet? = nil) -> QuantizedTensor {
    let codes: [UInt8] = [0x10, 0x32, 0x54, 0x76]  // LSB-first nibbles 0,1,2,...,7
    return QuantizedTensor(
        info: TensorInfo(name: name, dtype: .f32, shape: [2, 4]),
        layout: QuantizationLayout(scheme: .affine, bits: 4, groupSize: 4),
        codes: codes, scales: [0.5, 0.5], zeros: [8, 8], outliers: outliers,
        error: QuantizationErrorStats(sqnrDB: 21.5, maxAbsError: 0.25), method: "minmax")
}
