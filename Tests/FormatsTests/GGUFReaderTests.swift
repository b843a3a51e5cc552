import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("GGUFReader: metadata, shapes and decoding against the gguf Python package")
struct GGUFReaderTests {
    @Test("shapes are GGUF's ne reversed (row-major) and plain tensors are zero-copy views")
    func shapes() throws {
        let dir = try TemporaryDirectory()
        let reader = try GGUFReader(url: try dir.write(GGUFBytes.valid().bytes, to: "v.gguf"))
        #expect(reader.format == .gguf)
        #expect(reader.tensors.map(\.shape) == [[4], [3, 2]])
        #expect(reader.entry(named: "b")?.ne == [2, 3])
        #expect(try loadFloats(reader, "b") == [10, 11, 12, 13, 14, 15])
        #expect(reader.metadata == ["general.name": "tiny"])
        #expect(try Checkpoint.open(dir.file("v.gguf")).format == .gguf)
    }

    @Test("typed metadata appears as one line each; long arrays are summarised")
    func metadata() throws {
        let reader = try GGUFReader(url: GGUFFixtures.url("types.gguf"))
        #expect(reader.metadata["general.name"] == "qpk GGUF fixture")
        #expect(reader.metadata["fixture.uint32"] == "7")
        #expect(reader.metadata["fixture.int64"] == "-3")
        #expect(reader.metadata["fixture.float32"] == "0.5")
        #expect(reader.metadata["fixture.bool"] == "true")
        #expect(reader.metadata["fixture.short"] == "[1, 2, 3]")
        #expect(reader.metadata["fixture.tokens"]?.hasPrefix("[20 × string: \"tok0\", \"tok1\"") == true)
        #expect(reader.value(forKey: "fixture.uint32") == .uint32(7))
    }

    @Test("every decodable type equals gguf.quants.dequantize bit for bit (fixtures/gen_gguf.py)")
    func decodesLikeReference() throws {
        let reader = try GGUFReader(url: GGUFFixtures.url("types.gguf"))
        let expected = try SafetensorsReader(url: GGUFFixtures.url("types.expected.safetensors"))
        let names = ["F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                     "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]
        #expect(Set(reader.tensors.map(\.name)) == Set(names))
        for name in names {
            let info = try #require(reader.tensor(named: name))
            let reference = try #require(expected.tensor(named: name))
            #expect(info.shape == reference.shape, "\(name)")
            guard case let .dense(bytes) = try reader.storage(of: info) else { Issue.record("\(name) not dense"); continue }
            let wanted = try expected.denseBytes(of: reference)
            if info.dtype == reference.dtype {
                #expect(Array(bytes.bytes) == Array(wanted.bytes), "\(name) differs from gguf.quants.dequantize")
            } else {
                // F16/BF16 are kept as stored; the reference holds their F32 widening.
                var decoded = [Float](repeating: 0, count: info.elementCount)
                decoded.withUnsafeMutableBufferPointer { out in
                    bytes.withUnsafeBytes { FloatCodec.decode($0, dtype: info.dtype, count: info.elementCount, into: out) }
                }
                let reference = wanted.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                #expect(decoded.map(\.bitPattern) == reference.map(\.bitPattern), "\(name)")
            }
        }
        #expect(reader.ggmlType(of: "Q4_K") == .q4_K)
        #expect(reader.tensor(named: "Q4_K")?.dtype == .f32)
        #expect(reader.tensor(named: "I16")?.dtype == .i16)
    }

    @Test("a valid type qpk cannot decode is listed, and reading it is one line naming the type")
    func undecodable() throws {
        let url = GGUFFixtures.url("undecodable.gguf")
        let reader = try GGUFReader(url: url)
        #expect(reader.ggmlType(of: "ternary") == .tq2_0)
        let info = try #require(reader.tensor(named: "ternary"))
        #expect(throws: GGUFError.undecodableType(path: url.path, tensor: "ternary", type: "TQ2_0")) {
            _ = try reader.storage(of: info)
        }
        #expect(!GGUFError.undecodableType(path: "f", tensor: "t", type: "TQ2_0").description.contains("\n"))
    }

    @Test("the type table agrees with ggml's block sizes")
    func typeTable() {
        #expect(GGMLType.q4_0.layout == (32, 18))
        #expect(GGMLType.q4_K.layout == (256, 144))
        #expect(GGMLType.q6_K.layout == (256, 210))
        #expect(GGMLType.iq4_XS.layout == (256, 136))
        #expect(GGMLType(name: "q4_k") == .q4_K)
        #expect(GGMLType(name: "iq4_nl")?.name == "IQ4_NL")
        #expect(GGMLType.q4_0.byteCount(elementCount: 64) == 36)
        #expect(GGMLType.q4_0.byteCount(elementCount: 48) == nil)
    }
}
