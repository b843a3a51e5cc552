import Foundation
import Testing
@testable import Formats
import QPKCore

/// `tensor(named:)` is answered from a name index by every file reader, so a caller that looks up
/// each tensor by name (the converter's importance estimate, diff) stays linear in the tensor
/// count. A linear scan per lookup makes these 3 × 20,000 lookups take minutes in a debug build.
@Suite("tensor lookup by name is O(1) in every reader")
struct TensorLookupTests {
    static let count = 20_000
    static let tensors = (0..<count).map { TensorInfo(name: "layers.\($0).scale", dtype: .f32, shape: [1]) }
    static let bytes = TensorBytes(copying: [UInt8](repeating: 0, count: 4))

    func lookUpEveryName(_ reader: any CheckpointReader) {
        var found = 0
        for tensor in Self.tensors where reader.tensor(named: tensor.name) == tensor { found += 1 }
        #expect(found == Self.count)
        #expect(reader.tensor(named: "absent") == nil)
    }

    @Test("safetensors, sharded safetensors and QPK readers", .timeLimit(.minutes(1)))
    func lookups() throws {
        let dir = try TemporaryDirectory()
        let single = dir.file("m.safetensors")
        let writer = try SafetensorsWriter(url: single, tensors: Self.tensors, metadata: [:], overwrite: false)
        for tensor in Self.tensors { try writer.write(tensor, storage: .dense(Self.bytes)) }
        try writer.finish()
        lookUpEveryName(try SafetensorsReader(url: single))

        let shards = dir.file("shards")
        let sharded = try ShardedSafetensorsWriter(url: shards, tensors: Self.tensors, metadata: [:], maxShardSize: 40_000, overwrite: false)
        for tensor in Self.tensors { try sharded.write(tensor, storage: .dense(Self.bytes)) }
        try sharded.finish()
        lookUpEveryName(try ShardedSafetensorsReader(url: shards))

        let qpk = dir.file("m.qpk")
        let qpkWriter = try QPKWriter(
            url: qpk, tensors: Self.tensors, metadata: [:], recipe: [:],
            provenance: QPKProvenance(sources: [], qpkVersion: "test", createdBy: "test"), overwrite: false)
        for tensor in Self.tensors { try qpkWriter.write(tensor, storage: .dense(Self.bytes)) }
        try qpkWriter.finish()
        lookUpEveryName(try QPKReader(url: qpk))
    }
}
