import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("GGUFReader: every structural rule has a named error and a hand-built file that breaks it")
struct GGUFValidationRuleTests {
    let dir: TemporaryDirectory
    var path: String { dir.file("test.gguf").path }

    init() throws { dir = try TemporaryDirectory() }

    @Test("the hand-built reference file is valid")
    func validFile() throws {
        #expect(try ggufError(GGUFBytes.valid().bytes, in: dir) == nil)
    }

    @Test("a file not starting with GGUF is BadMagic, including an empty file")
    func badMagic() throws {
        var bytes = GGUFBytes.valid().bytes
        bytes[0] = UInt8(ascii: "X")
        #expect(try ggufError(bytes, in: dir) == .badMagic(path: path))
        #expect(try ggufError([], in: dir) == .badMagic(path: path))
        #expect(try ggufError(Array("GGU".utf8), in: dir) == .badMagic(path: path))
    }

    @Test("versions other than 2 and 3 are UnsupportedVersion; a byte-swapped 3 is named big-endian")
    func unsupportedVersion() throws {
        for version: UInt32 in [0, 1, 4, 0x0300_0000] {
            let error = try ggufError(GGUFBytes.header(version: version, tensors: 0, kvs: 0).bytes, in: dir)
            #expect(error == .unsupportedVersion(path: path, version: version))
        }
        #expect(GGUFError.unsupportedVersion(path: "x", version: 0x0300_0000).description.contains("big-endian"))
        #expect(try ggufError(GGUFBytes.header(version: 2, tensors: 0, kvs: 0).bytes, in: dir) == nil)
    }

    @Test("a tensor or KV count the rest of the file cannot hold is CountBeyondFile, before any allocation")
    func countBeyondFile() throws {
        #expect(try ggufError(GGUFBytes.header(tensors: 0, kvs: .max).bytes, in: dir)
            == .countBeyondFile(path: path, what: "metadata key-value pairs", count: .max))
        #expect(try ggufError(GGUFBytes.header(tensors: 1 << 40, kvs: 0).bytes, in: dir)
            == .countBeyondFile(path: path, what: "tensors", count: 1 << 40))
    }

    @Test("a file whose tensor infos end short of the aligned data section is Truncated, even for an empty tensor")
    func dataSectionBeyondTheEnd() throws {
        // Found by the GGUF fuzzer: one empty F32 tensor, the file ending before the padding to
        // the data section; its zero-byte range lay past the end of the file.
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("empty", ne: [0], type: 0, offset: 0)
        let error = try #require(try ggufError(b.bytes, in: dir))
        #expect(error.ruleName == "Truncated" && error.diagnostic.rule == "truncated")
        // The same file with its padding is valid, and its empty tensor reads as zero bytes.
        b.pad()
        try Data(b.bytes).write(to: dir.file("padded.gguf"))
        let reader = try GGUFReader(url: dir.file("padded.gguf"))
        let tensor = try #require(reader.tensor(named: "empty"))
        guard case let .dense(bytes) = try reader.storage(of: tensor) else { Issue.record("not dense"); return }
        #expect(bytes.count == 0)
    }

    @Test("a zero dimension makes an empty tensor whatever the others: no overflow in its counts")
    func zeroDimensionBeforeHugeOnes() {
        // Like Fuzz/Regressions/gguf/zero-dimension-before-huge-ones.gguf (shape [6.98e17, 2^20, 117440512, 0]).
        let info = TensorInfo(name: "t", dtype: .f32, shape: [1 << 32, 1 << 32, 0])
        #expect(info.elementCount == 0 && info.byteCount == 0)
        #expect(info.matrixShape == (0, 0))
        #expect(TensorInfo(name: "t", dtype: .f32, shape: [3, 0]).matrixShape == (3, 0))
    }

    @Test("the fuzzer's regression inputs are reported, never crash")
    func fuzzRegressions() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fuzz/Regressions/gguf")
        let inputs = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(!inputs.isEmpty)
        for name in inputs {
            let url = folder.appendingPathComponent(name)
            if let reader = try? GGUFReader(url: url) {
                for tensor in reader.tensors { _ = try? reader.storage(of: tensor) }
            }
        }
    }

    @Test("a header, KV, string, array or tensor info cut short is Truncated")
    func truncated() throws {
        #expect(try ggufError(Array("GGUF".utf8) + [3, 0], in: dir)?.ruleName == "Truncated")
        // A string whose length runs past the end.
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.u64(1000)
        b.bytes += Array(repeating: UInt8(ascii: "k"), count: 20)
        #expect(try ggufError(b.bytes, in: dir) == .truncated(path: path, tensor: nil, what: "the key of metadata pair 0"))
        // A value cut in the middle.
        b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("key")
        b.u32(10)
        b.bytes += [1, 2, 3]
        #expect(try ggufError(b.bytes, in: dir) == .truncated(path: path, tensor: nil, what: "the value of metadata key 'key'"))
        // An array longer than the file.
        b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("arr")
        b.u32(9)
        b.u32(4)
        b.u64(1 << 50)
        b.bytes += Array(repeating: 0, count: 16)
        #expect(try ggufError(b.bytes, in: dir)?.ruleName == "Truncated")
        // A tensor info cut after its dimensions.
        b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.string("t")
        b.u32(3)
        for _ in 0..<3 { b.u64(4) }
        b.bytes += [0, 0]
        #expect(try ggufError(b.bytes, in: dir) == .truncated(path: path, tensor: "t", what: "the tensor info"))
    }

    @Test("a value type outside 0…12 is UnknownValueType, for values and array elements")
    func unknownValueType() throws {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("odd")
        b.u32(13)
        b.u64(0)
        #expect(try ggufError(b.bytes, in: dir) == .unknownValueType(path: path, key: "odd", type: 13))
        b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("arr")
        b.u32(9)
        b.u32(99)
        b.u64(0)
        #expect(try ggufError(b.bytes, in: dir) == .unknownValueType(path: path, key: "arr", type: 99))
    }

    @Test("a key, string or tensor name that is not UTF-8 is InvalidUTF8")
    func invalidUTF8() throws {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.u64(2)
        b.bytes += [0xC3, 0x28]
        b.u32(0)
        b.u8(0)
        #expect(try ggufError(b.bytes, in: dir)?.ruleName == "InvalidUTF8")
    }

    @Test("an array of more than 2^24 elements is ArrayTooLong, even when the file holds it")
    func arrayTooLong() throws {
        var b = GGUFBytes.header(tensors: 0, kvs: 1)
        b.string("huge")
        b.u32(9)
        b.u32(0)
        b.u64((1 << 24) + 1)
        b.bytes += [UInt8](repeating: 0, count: (1 << 24) + 1)
        #expect(try ggufError(b.bytes, in: dir) == .arrayTooLong(path: path, key: "huge", count: (1 << 24) + 1))
    }

    @Test("a key that appears twice is DuplicateKey")
    func duplicateKey() throws {
        var b = GGUFBytes.header(tensors: 0, kvs: 2)
        for _ in 0..<2 {
            b.string("k")
            b.u32(0)
            b.u8(1)
        }
        #expect(try ggufError(b.bytes, in: dir) == .duplicateKey(path: path, key: "k"))
    }

    @Test("general.alignment that is not a uint32 power of two is InvalidAlignment; a valid one is used")
    func invalidAlignment() throws {
        func file(_ type: UInt32, _ write: (inout GGUFBytes) -> Void) -> [UInt8] {
            var b = GGUFBytes.header(tensors: 0, kvs: 1)
            b.string("general.alignment")
            b.u32(type)
            write(&b)
            return b.bytes
        }
        #expect(try ggufError(file(4) { $0.u32(24) }, in: dir) == .invalidAlignment(path: path, detail: "is 24, not a power of two"))
        #expect(try ggufError(file(4) { $0.u32(0) }, in: dir)?.ruleName == "InvalidAlignment")
        #expect(try ggufError(file(10) { $0.u64(32) }, in: dir) == .invalidAlignment(path: path, detail: "has type uint64, not uint32"))
        // Alignment 64: the data section starts at the next multiple of 64.
        var b = GGUFBytes.header(tensors: 1, kvs: 1)
        b.string("general.alignment")
        b.u32(4)
        b.u32(64)
        b.tensorInfo("t", ne: [1], type: 0, offset: 0)
        b.pad(64)
        b.u32(Float(7).bitPattern)
        let reader = try GGUFReader(url: try dir.write(b.bytes, to: "aligned.gguf"))
        #expect(reader.header.alignment == 64 && reader.header.dataStart % 64 == 0)
        #expect(try loadFloats(reader, "t") == [7])
    }

    @Test("two tensors with one name is DuplicateTensorName")
    func duplicateTensorName() throws {
        var b = GGUFBytes.header(tensors: 2, kvs: 0)
        b.tensorInfo("w", ne: [1], type: 0, offset: 0)
        b.tensorInfo("w", ne: [1], type: 0, offset: 32)
        b.pad()
        b.bytes += Array(repeating: 0, count: 36)
        #expect(try ggufError(b.bytes, in: dir) == .duplicateTensorName(path: path, tensor: "w"))
    }

    @Test("more than 4 dimensions is TooManyDimensions")
    func tooManyDimensions() throws {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("t", ne: [1, 1, 1, 1, 1], type: 0, offset: 0)
        b.pad()
        b.bytes += Array(repeating: 0, count: 4)
        #expect(try ggufError(b.bytes, in: dir) == .tooManyDimensions(path: path, tensor: "t", dimensions: 5))
    }

    @Test("a ggml type number that is not a type is UnknownTensorType")
    func unknownTensorType() throws {
        for type: UInt32 in [4, 5, 31, 1000] {
            var b = GGUFBytes.header(tensors: 1, kvs: 0)
            b.tensorInfo("t", ne: [32], type: type, offset: 0)
            b.pad()
            b.bytes += Array(repeating: 0, count: 256)
            #expect(try ggufError(b.bytes, in: dir) == .unknownTensorType(path: path, tensor: "t", type: type))
        }
    }

    @Test("a dimension over Int64.max or an element count that overflows is DimensionOverflow")
    func dimensionOverflow() throws {
        for ne: [UInt64] in [[UInt64(Int64.max) + 1], [1 << 32, 1 << 32], [1 << 62, 4]] {
            var b = GGUFBytes.header(tensors: 1, kvs: 0)
            b.tensorInfo("t", ne: ne, type: 0, offset: 0)
            b.pad()
            #expect(try ggufError(b.bytes, in: dir) == .dimensionOverflow(path: path, tensor: "t"))
        }
    }

    @Test("a first dimension that is not whole blocks is RowNotBlockAligned")
    func rowNotBlockAligned() throws {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("q", ne: [48, 2], type: GGMLType.q4_0.rawValue, offset: 0)
        b.pad()
        b.bytes += Array(repeating: 0, count: 64)
        #expect(try ggufError(b.bytes, in: dir) == .rowNotBlockAligned(path: path, tensor: "q", type: "Q4_0", rowLength: 48, blockSize: 32))
    }

    @Test("a data offset that is not a multiple of the alignment is TensorDataMisaligned")
    func misaligned() throws {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("t", ne: [1], type: 0, offset: 4)
        b.pad()
        b.bytes += Array(repeating: 0, count: 8)
        #expect(try ggufError(b.bytes, in: dir) == .tensorDataMisaligned(path: path, tensor: "t", offset: 4, alignment: 32))
    }

    @Test("data running past the end of the file is TensorDataOutOfBounds, also for a truncated download")
    func outOfBounds() throws {
        var bytes = GGUFBytes.valid().bytes
        bytes.removeLast(4)
        #expect(try ggufError(bytes, in: dir) == .tensorDataOutOfBounds(path: path, tensor: "b", end: 56, dataSize: 52))
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("t", ne: [1], type: 0, offset: UInt64.max - 31)
        b.pad()
        #expect(try ggufError(b.bytes, in: dir)?.ruleName == "TensorDataOutOfBounds")
    }

    @Test("two tensors sharing bytes is TensorDataOverlap")
    func overlap() throws {
        var b = GGUFBytes.header(tensors: 2, kvs: 0)
        b.tensorInfo("a", ne: [16], type: 0, offset: 0)
        b.tensorInfo("b", ne: [8], type: 0, offset: 32)
        b.pad()
        b.bytes += Array(repeating: 0, count: 64)
        #expect(try ggufError(b.bytes, in: dir) == .tensorDataOverlap(path: path, tensor: "b", other: "a"))
    }

    @Test("every message is one line naming the file, the tensor where there is one, and the rule")
    func messages() throws {
        var b = GGUFBytes.header(tensors: 1, kvs: 0)
        b.tensorInfo("blk.0.w", ne: [1], type: 0, offset: 4)
        b.pad()
        b.bytes += Array(repeating: 0, count: 8)
        let error = try #require(try ggufError(b.bytes, in: dir))
        #expect(!error.description.contains("\n"))
        #expect(error.description.hasPrefix("\(path): tensor 'blk.0.w': tensor_data_misaligned: "))
    }

    @Test("random corruption of a valid file never crashes: it opens or fails with a named rule")
    func fuzz() throws {
        let valid = GGUFBytes.valid().bytes
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &generator)) }
            let url = try dir.write(bytes, to: "fuzz.gguf")
            do {
                let reader = try GGUFReader(url: url)
                for tensor in reader.tensors where reader.ggmlType(of: tensor.name)?.isDecodable == true {
                    _ = try reader.storage(of: tensor)
                }
            } catch is GGUFError {
            }
        }
    }
}

func loadFloats(_ reader: GGUFReader, _ name: String) throws -> [Float] {
    let info = try #require(reader.tensor(named: name))
    guard case let .dense(bytes) = try reader.storage(of: info) else { return [] }
    return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self).prefix(info.elementCount)) }
}
