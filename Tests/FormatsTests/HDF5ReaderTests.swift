import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("HDF5Reader: h5py-written files")
struct HDF5ReaderTests {
    @Test("Keras 2 model.save: tensors follow layer_names, weight_names, then optimizer weight_names")
    func keras2ModelOrder() throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("keras2_model.h5"))
        #expect(reader.kerasLayout == .keras2Model)
        #expect(reader.tensors.map(\.name) == [
            "model_weights/dense_1/dense_1/kernel:0", "model_weights/dense_1/dense_1/bias:0",
            "model_weights/dense/dense/kernel:0", "model_weights/dense/dense/bias:0",
            "optimizer_weights/Adam/iter:0", "optimizer_weights/Adam/dense/kernel/m:0",
            "optimizer_weights/Adam/dense_1/kernel/m:0",
        ])
        // dense_1 kernel = arange(6) * 0.5 + 100, shape (3, 2)
        #expect(try HDF5Fixtures.floats(reader, "model_weights/dense_1/dense_1/kernel:0") == [100, 100.5, 101, 101.5, 102, 102.5])
        #expect(reader.tensor(named: "model_weights/dense_1/dense_1/kernel:0")?.shape == [3, 2])
        let iter = try #require(reader.tensor(named: "optimizer_weights/Adam/iter:0"))
        #expect(iter.shape == [] && iter.dtype == .i64)
        #expect(try HDF5Fixtures.bytes(reader, iter.name) == [7, 0, 0, 0, 0, 0, 0, 0])
        // Root str attributes are plain metadata; model_config is the JSON Keras wrote.
        #expect(reader.metadata["keras_version"] == "2.15.0")
        #expect(reader.metadata["model_config"]?.contains("\"Sequential\"") == true)
        // The layer without weights survives as an empty group with its float64[0] attribute.
        #expect(reader.metadata[HDF5Metadata.groupsKey] == "[\"/model_weights/activation\"]")
        let weightNames = try #require(reader.attributes["/model_weights/activation"]?["weight_names"])
        #expect(weightNames.type == "float64" && weightNames.shape == [0])
    }

    @Test("Keras 2 save_weights: order from root layer_names, whole or split into layer_names0/1")
    func keras2WeightsOrder() throws {
        let expected = ["layer_z", "layer_y", "layer_x", "layer_w"].flatMap { ["\($0)/\($0)/w:0", "\($0)/\($0)/b:0"] }
        for file in ["keras2_weights.h5", "keras2_split.h5"] {
            let reader = try HDF5Reader(url: HDF5Fixtures.url(file))
            #expect(reader.kerasLayout == .keras2Weights)
            #expect(reader.tensors.map(\.name) == expected, "\(file)")
            #expect(try HDF5Fixtures.floats(reader, "layer_y/layer_y/b:0") == [-10, -9])
        }
    }

    @Test("Keras 3 .weights.h5: vars ordered numerically, bfloat16 opaque read as BF16")
    func keras3() throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("keras3.weights.h5"))
        #expect(reader.kerasLayout == .keras3Weights)
        let dense = reader.tensors.map(\.name).filter { $0.hasPrefix("layers/dense/") }
        #expect(dense == (0..<12).map { "layers/dense/vars/\($0)" })
        #expect(reader.tensors.first?.name == "layers/dense/vars/0")
        #expect(reader.tensors.last?.name == "optimizer/vars/1")
        #expect(try HDF5Fixtures.floats(reader, "layers/dense/vars/11") == [1100, 1101])
        let bf = try #require(reader.tensor(named: "layers/embedding/vars/0"))
        #expect(bf.dtype == .bf16 && bf.shape == [2, 3])
        let bits = try reader.denseBytes(of: bf).withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
        #expect(bits.map(FloatCodec.float(fromBFloat16:)) == [-1, -0.5, 0, 0.5, 1, 1.5])
        // The dtype attribute was consumed by the type mapping, so it is not duplicated in metadata.
        #expect(reader.attributes["/layers/embedding/vars/0"]?["dtype"] != nil)
        #expect(reader.metadata[HDF5Metadata.attributesKey]?.contains("/layers/embedding/vars/0") == false)
    }

    @Test("every numeric dtype is read little-endian with its values")
    func dtypes() throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("dtypes.h5"))
        let expected: [String: DType] = [
            "float16": .f16, "float32": .f32, "float64": .f64, "int8": .i8, "int16": .i16, "int32": .i32,
            "int64": .i64, "uint8": .u8, "uint16": .u16, "uint32": .u32, "uint64": .u64,
        ]
        for (name, dtype) in expected {
            let info = try #require(reader.tensor(named: "dtypes/\(name)"))
            #expect(info.dtype == dtype && info.shape == [2, 3], "\(name)")
            let values = try reader.denseBytes(of: info).withUnsafeBytes { raw -> [Double] in
                switch dtype {
                case .f16: raw.bindMemory(to: Float16.self).map(Double.init)
                case .f32: raw.bindMemory(to: Float.self).map(Double.init)
                case .f64: Array(raw.bindMemory(to: Double.self))
                case .i8: raw.bindMemory(to: Int8.self).map(Double.init)
                case .i16: raw.bindMemory(to: Int16.self).map(Double.init)
                case .i32: raw.bindMemory(to: Int32.self).map(Double.init)
                case .i64: raw.bindMemory(to: Int64.self).map(Double.init)
                case .u8: raw.bindMemory(to: UInt8.self).map(Double.init)
                case .u16: raw.bindMemory(to: UInt16.self).map(Double.init)
                case .u32: raw.bindMemory(to: UInt32.self).map(Double.init)
                default: raw.bindMemory(to: UInt64.self).map { Double($0) }
                }
            }
            #expect(values == [1, 2, 3, 4, 5, 6], "\(name)")
        }
        #expect(reader.tensor(named: "dtypes/bool")?.dtype == .bool)
        #expect(try HDF5Fixtures.bytes(reader, "dtypes/bool") == [1, 0, 1, 1])
        let extremes = try reader.denseBytes(of: #require(reader.tensor(named: "dtypes/int64_extremes")))
            .withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        #expect(extremes == [.min, -1, .max])
        let unsigned = try reader.denseBytes(of: #require(reader.tensor(named: "dtypes/uint64_extremes")))
            .withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
        #expect(unsigned == [0, .max])
        // Big-endian storage comes back in native little-endian order.
        #expect(try HDF5Fixtures.floats(reader, "dtypes/float32_big_endian") == [0, 1.5, 3])
    }

    @Test("contiguous, chunked and gzip+shuffle datasets read identically; scalars and empty tensors too")
    func layouts() throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("dtypes.h5"))
        for (name, scale) in [("contiguous", 0.01), ("chunked", 0.02), ("gzip_shuffle", 0.03)] {
            let values = try HDF5Fixtures.floats(reader, "storage/\(name)")
            #expect(values == (0..<1024).map { Float(Double($0) * scale) }, "\(name)")
        }
        let scalar = try #require(reader.tensor(named: "storage/scalar"))
        #expect(scalar.shape == [] && scalar.dtype == .f64)
        #expect(try reader.denseBytes(of: scalar).withUnsafeBytes { $0.load(as: Double.self) } == 3.25)
        let empty = try #require(reader.tensor(named: "storage/empty"))
        #expect(empty.shape == [0, 4])
        #expect(try reader.denseBytes(of: empty).count == 0)
    }

    @Test("bounded slabs: reading row by row gives the same bytes as one read")
    func slabs() throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("dtypes.h5"))
        let plan = try #require(reader.plan(named: "storage/gzip_shuffle"))
        let whole = try HDF5Fixtures.bytes(reader, "storage/gzip_shuffle")
        var pieced = [UInt8](repeating: 0, count: plan.byteCount)
        var slabs = 0
        try pieced.withUnsafeMutableBytes { target in
            try reader.read(plan, slabBytes: 100) { offset, count in
                slabs += 1
                #expect(count == 64)  // one 16-float row per slab when a slab may hold only 100 bytes
                return target.baseAddress! + offset
            }
        }
        #expect(slabs == 64 && pieced == whole)
    }

    @Test("non-numeric datasets are listed in skipped and do not fail the open")
    func skipped() throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("dtypes.h5"))
        #expect(reader.tensor(named: "text") == nil)
        #expect(reader.skipped.contains { $0.path == "/text" && $0.reason == "string dataset" })
    }

    @Test("every string attribute encoding is read with its exact kind")
    func attributeEncodings() throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("dtypes.h5"))
        let attrs = try #require(reader.attributes["/attrs"])
        #expect(attrs["fixed_ascii"] == HDF5Attribute(
            type: "string", shape: [], values: .strings(["fixed"]), charset: "ascii", length: 5, padding: "nullpad"))
        #expect(attrs["vlen_ascii"] == HDF5Attribute(
            type: "string", shape: [], values: .strings(["vlen ascii"]), charset: "ascii", padding: "nullterm"))
        #expect(attrs["vlen_utf8"] == .string("caf\u{e9} \u{2713}"))
        #expect(attrs["fixed_ascii_array"] == HDF5Attribute(
            type: "string", shape: [3], values: .strings(["a", "bb", "ccc"]), charset: "ascii", length: 3, padding: "nullpad"))
        #expect(attrs["vlen_ascii_array"]?.strings == ["x", "yy"])
        #expect(attrs["vlen_ascii_array"]?.charset == "ascii" && attrs["vlen_ascii_array"]?.length == nil)
        #expect(attrs["vlen_utf8_array"]?.strings == ["\u{fc}", "z"])
        #expect(attrs["int_scalar"] == HDF5Attribute(type: "int32", shape: [], values: .integers([-5])))
        #expect(attrs["uint8_array"] == HDF5Attribute(type: "uint8", shape: [2], values: .unsignedIntegers([0, 255])))
        #expect(attrs["float32_scalar"] == HDF5Attribute(type: "float32", shape: [], values: .floats([Double(Float(0.1))])))
        #expect(attrs["bool_scalar"] == HDF5Attribute(type: "bool", shape: [], values: .bools([true])))
        #expect(attrs["matrix"] == HDF5Attribute(type: "int16", shape: [2, 3], values: .integers([0, 1, 2, 3, 4, 5])))
        #expect(attrs["empty"] == HDF5Attribute(type: "float32", shape: nil, values: .floats([])))
        #expect(reader.attributes["/attrs/x"]?["units"] == .string("m"))
    }

    @Test("a truncated file is an HDF5Error and a validate problem, never a crash or stack dump")
    func truncated() throws {
        let url = HDF5Fixtures.url("truncated.h5")
        #expect(HDF5Reader.hasHDF5Signature(url))
        #expect(throws: HDF5Error.self) { try HDF5Reader(url: url) }
        do { _ = try HDF5Reader(url: url) } catch let error as HDF5Error {
            #expect(error.description.contains("truncated or corrupt"))
            #expect(!error.description.contains("\n"))
        }
        let problems = HDF5Reader.validate(url: url)
        #expect(problems.count == 1 && problems.first?.rule == .open)
    }

    @Test("validate: fixtures are clean except the string dataset; a non-HDF5 file fails the signature")
    func validate() throws {
        for file in ["keras2_model.h5", "keras2_weights.h5", "keras2_split.h5", "keras3.weights.h5"] {
            #expect(HDF5Reader.validate(url: HDF5Fixtures.url(file)).isEmpty, "\(file)")
        }
        let problems = HDF5Reader.validate(url: HDF5Fixtures.url("dtypes.h5"))
        #expect(problems.map(\.rule) == [.unsupportedDType] && problems.first?.dataset == "text")
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let junk = directory.appendingPathComponent("junk.h5")
        try Data("definitely not hdf5".utf8).write(to: junk)
        #expect(!HDF5Reader.hasHDF5Signature(junk))
        #expect(HDF5Reader.validate(url: junk).map(\.rule) == [.signature])
        #expect(throws: HDF5Error.notHDF5(file: junk.path)) { try HDF5Reader(url: junk) }
    }

    @Test("a signature after a 512-byte user block is found")
    func userBlock() throws {
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("ub.h5")
        try (Data(count: 512) + Data(HDF5Reader.signature) + Data(count: 100)).write(to: url)
        #expect(HDF5Reader.hasHDF5Signature(url))
        let shifted = directory.appendingPathComponent("shifted.h5")
        try (Data(count: 100) + Data(HDF5Reader.signature) + Data(count: 1000)).write(to: shifted)
        #expect(!HDF5Reader.hasHDF5Signature(shifted))
    }

    @Test("parallel reads from many threads return the right bytes")
    func concurrentReads() async throws {
        let reader = try HDF5Reader(url: HDF5Fixtures.url("dtypes.h5"))
        let names = ["storage/contiguous", "storage/chunked", "storage/gzip_shuffle"]
        let expected = try names.map { try HDF5Fixtures.bytes(reader, $0) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for round in 0..<24 {
                group.addTask {
                    let index = round % names.count
                    return try HDF5Fixtures.bytes(reader, names[index]) == expected[index]
                }
            }
            for try await same in group { #expect(same) }
        }
    }
}

@Suite("HDF5Reader: hostile input")
struct HDF5HostileInputTests {
    @Test("corrupting any of many bytes gives problems or a valid read, never a crash")
    func corruptedBytes() throws {
        let original = try Data(contentsOf: HDF5Fixtures.url("keras2_model.h5"))
        let directory = try HDF5Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (index, offset) in stride(from: 8, to: original.count, by: 397).enumerated() {
            var bytes = original
            bytes[offset] ^= 0xA5
            let url = directory.appendingPathComponent("c\(index).h5")
            try bytes.write(to: url)
            let problems = HDF5Reader.validate(url: url)
            for problem in problems { #expect(!problem.description.contains("\n")) }
        }
    }
}
