import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("GGUFWriter: version 3, aligned data, read back by GGUFReader")
struct GGUFWriterTests {
    @Test("tensors written in any order read back with their shapes, types and metadata")
    func roundTrip() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("out.gguf")
        let a = TensorInfo(name: "a", dtype: .f32, shape: [3])
        let q = TensorInfo(name: "q", dtype: .f32, shape: [2, 32])
        let writer = try GGUFWriter(
            url: url, tensors: [.init(info: a, type: .f32), .init(info: q, type: .q8_0)],
            metadata: [("general.name", .string("x")), ("n", .array(.int32, [.int32(1), .int32(-2)]))], overwrite: false)
        var block = [UInt8](repeating: 0, count: 68)
        for row in 0..<2 {
            let base = row * 34
            block[base + 0] = 0x00
            block[base + 1] = 0x3C  // fp16 1.0
            for j in 0..<32 { block[base + 2 + j] = UInt8(bitPattern: Int8(j - 16)) }
        }
        try writer.write(q, storage: .dense(TensorBytes(copying: block)))
        try writer.write(a, storage: .dense(TensorBytes(copying: [Float(1), 2, 3].flatMap { withUnsafeBytes(of: $0) { Array($0) } })))
        try writer.finish()
        let reader = try GGUFReader(url: url)
        #expect(reader.header.version == 3)
        #expect(reader.tensors.map(\.name) == ["a", "q"])
        #expect(reader.ggmlType(of: "q") == .q8_0)
        #expect(reader.entry(named: "q")?.ne == [32, 2])
        #expect(reader.entry(named: "q")!.offset % 32 == 0)
        #expect(reader.value(forKey: "n") == .array(.int32, [.int32(1), .int32(-2)]))
        #expect(try loadFloats(reader, "a") == [1, 2, 3])
        #expect(try loadFloats(reader, "q") == (0..<64).map { Float($0 % 32 - 16) })
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
        #expect(size % 32 == 0)
    }

    @Test("wrong byte counts, unannounced and unwritten tensors are errors and leave no file")
    func misuse() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("bad.gguf")
        let q = TensorInfo(name: "q", dtype: .f32, shape: [48])
        #expect(throws: GGUFWriterError.rowNotBlockAligned(path: url.path, tensor: "q", type: "Q4_0", rowLength: 48)) {
            _ = try GGUFWriter(url: url, tensors: [.init(info: q, type: .q4_0)], metadata: [], overwrite: false)
        }
        let fiveD = TensorInfo(name: "t", dtype: .f32, shape: [1, 1, 1, 1, 2])
        #expect(throws: GGUFWriterError.tooManyDimensions(path: url.path, tensor: "t", dimensions: 5)) {
            _ = try GGUFWriter(url: url, tensors: [.init(info: fiveD, type: .f32)], metadata: [], overwrite: false)
        }
        let a = TensorInfo(name: "a", dtype: .f32, shape: [2])
        let writer = try GGUFWriter(url: url, tensors: [.init(info: a, type: .f32)], metadata: [], overwrite: false)
        #expect(throws: GGUFWriterError.wrongByteCount(path: url.path, tensor: "a", expected: 8, actual: 4)) {
            try writer.write(a, storage: .dense(TensorBytes(copying: [UInt8](repeating: 0, count: 4))))
        }
        #expect(throws: GGUFWriterError.missingTensors(path: url.path, tensors: ["a"])) { try writer.finish() }
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }
}
