import Foundation
@testable import Convert
import QPKCore
import Formats
import Quantize

/// An in-memory checkpoint of f32 tensors; `failing` names a tensor whose read throws.
final class MemoryReader: CheckpointReader, @unchecked Sendable {
    struct Failure: Error {}

    let url: URL
    let format: CheckpointFormat = .safetensors
    let tensors: [TensorInfo]
    let metadata: [String: String]
    let values: [String: [Float]]
    let failing: String?

    init(_ items: [(String, [Int], [Float])], metadata: [String: String] = [:], failing: String? = nil) {
        // A real file, so that QPK provenance can describe the "source".
        url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/models/fracast/model.safetensors")
        tensors = items.map { TensorInfo(name: $0.0, dtype: .f32, shape: $0.1) }
        values = Dictionary(uniqueKeysWithValues: items.map { ($0.0, $0.2) })
        self.metadata = metadata
        self.failing = failing
    }

    func storage(of tensor: TensorInfo) throws -> TensorStorage {
        if tensor.name == failing { throw Failure() }
        return .dense(TensorBytes(copying: values[tensor.name]!.withUnsafeBytes { Array($0) }))
    }
}

/// Deterministic pseudo-random normal-ish values (sum of uniforms), so tests need no seed API.
func gaussianLike(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func next() -> Float {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(state >> 40) / Float(1 << 24)
    }
    return (0..<count).map { _ in (next() + next() + next() + next() - 2) * scale }
}

final class ScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-convert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: url.path))?.sorted() ?? [] }

    deinit { try? FileManager.default.removeItem(at: url) }
}
