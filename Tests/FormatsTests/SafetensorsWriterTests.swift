import Foundation
import Testing
@testable import Formats
import QPKCore

/// Little-endian bytes of `values`.
private func bytes<T: FixedWidthInteger>(_ values: [T]) -> TensorStorage {
    var out: [UInt8] = []
    for value in values { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
    return .dense(TensorBytes(copying: out))
}

private func floatBytes(_ values: [Float]) -> TensorStorage { bytes(values.map(\.bitPattern)) }

/// The JSON header of a safetensors file, with its padding.
private func headerText(_ url: URL) throws -> String {
    let data = try Data(contentsOf: url)
    let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    return String(decoding: data[8..<(8 + length)], as: UTF8.self)
}

@Suite("SafetensorsWriter")
struct SafetensorsWriterTests {
    @Test("rewriting the reference's mixed file reproduces it byte for byte, whatever the write order")
    func byteIdenticalToReference() throws {
        let source = try SafetensorsReader(url: SafetensorsFixtures.url("mixed.safetensors"))
        let dir = try TemporaryDirectory()
        let target = dir.file("copy.safetensors")
        let writer = try SafetensorsWriter(url: target, tensors: source.tensors.shuffled(), metadata: source.metadata, overwrite: false)
        for tensor in source.tensors.reversed() { try writer.write(tensor, storage: source.storage(of: tensor)) }
        try writer.finish()
        #expect(try Data(contentsOf: target) == Data(contentsOf: source.url))
    }

    @Test("every dtype fixture round-trips byte for byte")
    func dtypeRoundTrip() throws {
        let dir = try TemporaryDirectory()
        for name in try FileManager.default.contentsOfDirectory(atPath: SafetensorsFixtures.root.path) where name.hasPrefix("dtype_") {
            let source = try SafetensorsReader(url: SafetensorsFixtures.url(name))
            let target = dir.file(name)
            let writer = try SafetensorsWriter(url: target, tensors: source.tensors, metadata: source.metadata, overwrite: false)
            for tensor in source.tensors { try writer.write(tensor, storage: source.storage(of: tensor)) }
            try writer.finish()
            #expect(try Data(contentsOf: target) == Data(contentsOf: source.url), "\(name)")
        }
    }

    /// The data buffer must match byte for byte; the header may differ only in the order of the
    /// `__metadata__` keys (the reference writes them in random hash-map order, qpk sorts them).
    @Test("real checkpoints are rewritten with identical tensors and data", arguments: [
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/models/fracast/model.safetensors").path,
    ] + (ProcessInfo.processInfo.environment["QPK_MINILM"].map { [$0] } ?? []))
    func realCheckpoints(path: String) throws {
        let source = try SafetensorsReader(url: URL(fileURLWithPath: path))
        let dir = try TemporaryDirectory()
        let target = dir.file("copy.safetensors")
        let writer = try SafetensorsWriter(url: target, tensors: source.tensors, metadata: source.metadata, overwrite: false)
        for tensor in source.tensors { try writer.write(tensor, storage: source.storage(of: tensor)) }
        try writer.finish()
        let copy = try SafetensorsReader(url: target)
        #expect(copy.tensors == source.tensors)
        #expect(copy.metadata == source.metadata)
        #expect(copy.headerLength == source.headerLength)
        #expect(copy.file.bytes.count == source.file.bytes.count)
        let dataStart = 8 + source.headerLength
        let sameData = memcmp(copy.file.bytes.baseAddress! + dataStart, source.file.bytes.baseAddress! + dataStart,
                              source.file.bytes.count - dataStart) == 0
        #expect(sameData)
        if source.metadata.count <= 1 {
            #expect(memcmp(copy.file.bytes.baseAddress!, source.file.bytes.baseAddress!, dataStart) == 0)
        }
    }

    @Test("the header is padded with spaces to a multiple of 8 for every name length")
    func headerPadding() throws {
        let dir = try TemporaryDirectory()
        for length in 1...17 {
            let info = TensorInfo(name: String(repeating: "n", count: length), dtype: .u8, shape: [3])
            let url = dir.file("pad\(length).safetensors")
            let writer = try SafetensorsWriter(url: url, tensors: [info], metadata: [:], overwrite: false)
            try writer.write(info, storage: bytes([UInt8(1), 2, 3]))
            try writer.finish()
            let header = try headerText(url)
            #expect(header.utf8.count % 8 == 0)
            #expect(header.trimmingCharacters(in: .init(charactersIn: " ")).hasSuffix("}"))
            #expect(!header.contains("\0"))
            let reader = try SafetensorsReader(url: url)
            #expect(loadValues(try reader.denseBytes(of: info), as: UInt8.self) == [1, 2, 3])
        }
    }

    @Test("tensors are laid out in the reference order: dtype rank descending, then name")
    func referenceOrder() throws {
        let dtypes: [(String, DType)] = [
            ("a_i32", .i32), ("b_f32", .f32), ("c_u32", .u32), ("d_f64", .f64), ("e_i64", .i64), ("f_u64", .u64),
            ("g_c64", .c64), ("h_bool", .bool), ("i_u8", .u8), ("j_i8", .i8), ("k_e5", .f8e5m2), ("l_e4", .f8e4m3),
            ("m_e8", .f8e8m0), ("n_e4z", .f8e4m3fnuz), ("o_e5z", .f8e5m2fnuz), ("p_i16", .i16), ("q_u16", .u16),
            ("r_f16", .f16), ("s_bf16", .bf16), ("a2_f32", .f32),
        ]
        let tensors = dtypes.map { TensorInfo(name: $0.0, dtype: $0.1, shape: [1]) }
        let dir = try TemporaryDirectory()
        let url = dir.file("order.safetensors")
        let writer = try SafetensorsWriter(url: url, tensors: tensors, metadata: [:], overwrite: false)
        for tensor in tensors {
            try writer.write(tensor, storage: .dense(TensorBytes(copying: [UInt8](repeating: 7, count: tensor.byteCount))))
        }
        try writer.finish()
        // The order safetensors 0.8 (Python) produced for exactly these tensors.
        let reference = [
            "f_u64", "e_i64", "d_f64", "g_c64", "a2_f32", "b_f32", "c_u32", "a_i32", "s_bf16", "r_f16", "q_u16",
            "p_i16", "o_e5z", "n_e4z", "m_e8", "l_e4", "k_e5", "j_i8", "i_u8", "h_bool",
        ]
        #expect(writer.layoutOrder.map(\.name) == reference)
        #expect(try SafetensorsReader(url: url).tensors.map(\.name) == reference)
    }

    @Test("metadata is preserved, written first, compact, with slashes unescaped")
    func metadata() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("meta.safetensors")
        let info = TensorInfo(name: "w/x", dtype: .f32, shape: [])
        let metadata = ["format": "pt", "path": "a/b", "quote": "say \"hi\"\n", "unicode": "é😀"]
        let writer = try SafetensorsWriter(url: url, tensors: [info], metadata: metadata, overwrite: false)
        try writer.write(info, storage: floatBytes([1.5]))
        try writer.finish()
        let header = try headerText(url)
        #expect(header.hasPrefix(#"{"__metadata__":{"format":"pt","path":"a/b","quote":"say \"hi\"\n","unicode":"é😀"},"w/x":"#))
        #expect(!header.contains("\\/"))
        #expect(!header.contains(": "))
        #expect(try SafetensorsReader(url: url).metadata == metadata)
    }

    @Test("writes may come in any order; empty tensors and scalars are fine")
    func anyOrder() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("order.safetensors")
        let tensors = (0..<10).map { TensorInfo(name: "t\($0)", dtype: .f32, shape: $0 == 3 ? [] : [$0, 2]) }
        let writer = try SafetensorsWriter(url: url, tensors: tensors, metadata: [:], overwrite: false)
        var generator = SplitMix64(seed: 42)
        for tensor in tensors.shuffled(using: &generator) {
            let count = tensor.elementCount
            try writer.write(tensor, storage: floatBytes((0..<count).map { Float($0) + Float(tensor.name.utf8.last!) }))
        }
        try writer.finish()
        let reader = try SafetensorsReader(url: url)
        for tensor in tensors {
            let values = loadValues(try reader.denseBytes(of: tensor), as: UInt32.self).map(Float.init(bitPattern:))
            #expect(values == (0..<tensor.elementCount).map { Float($0) + Float(tensor.name.utf8.last!) })
        }
    }

    @Test("an existing file is refused without overwrite and replaced with it")
    func overwrite() throws {
        let dir = try TemporaryDirectory()
        let url = try dir.write([1, 2, 3], to: "exists.safetensors")
        let info = TensorInfo(name: "a", dtype: .u8, shape: [1])
        #expect(throws: FileAccessError.alreadyExists(url.path)) {
            try SafetensorsWriter(url: url, tensors: [info], metadata: [:], overwrite: false)
        }
        #expect(try Data(contentsOf: url) == Data([1, 2, 3]))
        let writer = try SafetensorsWriter(url: url, tensors: [info], metadata: [:], overwrite: true)
        try writer.write(info, storage: bytes([UInt8(9)]))
        try writer.finish()
        #expect(try SafetensorsReader(url: url).tensors == [info])
    }

    @Test("a writer that fails or is dropped leaves no file and no temporary file")
    func failedWriterLeavesNothing() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("out.safetensors")
        let a = TensorInfo(name: "a", dtype: .f32, shape: [2])
        let b = TensorInfo(name: "b", dtype: .f32, shape: [0])
        do {
            let writer = try SafetensorsWriter(url: url, tensors: [a, b], metadata: [:], overwrite: false)
            try writer.write(a, storage: floatBytes([1, 2]))
            #expect(throws: SafetensorsWriterError.missingTensors(path: url.path, tensors: ["b"])) { try writer.finish() }
        }
        #expect(try dir.contents() == [])
        do {
            let writer = try SafetensorsWriter(url: url, tensors: [a], metadata: [:], overwrite: false)
            try writer.write(a, storage: floatBytes([1, 2]))
        }
        #expect(try dir.contents() == [])
    }

    @Test("wrong bytes, quantized storage, strangers and repeats are typed errors")
    func misuse() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("out.safetensors")
        let path = url.path
        let a = TensorInfo(name: "a", dtype: .f32, shape: [2])
        let writer = try SafetensorsWriter(url: url, tensors: [a], metadata: [:], overwrite: false)
        #expect(throws: SafetensorsWriterError.wrongByteCount(path: path, tensor: "a", expected: 8, actual: 4)) {
            try writer.write(a, storage: floatBytes([1]))
        }
        let quantized = QuantizedTensor(
            info: a, layout: QuantizationLayout(scheme: .affine, bits: 4, groupSize: 64),
            codes: [0], scales: [1], zeros: [0], method: "minmax")
        #expect(throws: SafetensorsWriterError.quantizedStorage(path: path, tensor: "a")) {
            try writer.write(a, storage: .quantized(quantized))
        }
        #expect(throws: SafetensorsWriterError.unannouncedTensor(path: path, tensor: "b")) {
            try writer.write(TensorInfo(name: "b", dtype: .f32, shape: [2]), storage: floatBytes([1, 2]))
        }
        #expect(throws: SafetensorsWriterError.unannouncedTensor(path: path, tensor: "a")) {
            try writer.write(TensorInfo(name: "a", dtype: .f16, shape: [4]), storage: floatBytes([1, 2]))
        }
        try writer.write(a, storage: floatBytes([1, 2]))
        #expect(throws: SafetensorsWriterError.tensorWrittenTwice(path: path, tensor: "a")) {
            try writer.write(a, storage: floatBytes([1, 2]))
        }
        try writer.finish()
        #expect(throws: SafetensorsWriterError.alreadyFinished(path: path)) { try writer.finish() }
        #expect(try SafetensorsReader(url: url).tensors == [a])
    }

    @Test("bad announcements are refused before anything is created")
    func badAnnouncements() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("out.safetensors")
        let a = TensorInfo(name: "a", dtype: .f32, shape: [2])
        #expect(throws: SafetensorsWriterError.duplicateTensor(path: url.path, tensor: "a")) {
            try SafetensorsWriter(url: url, tensors: [a, a], metadata: [:], overwrite: false)
        }
        #expect(throws: SafetensorsWriterError.invalidShape(path: url.path, tensor: "f4")) {
            try SafetensorsWriter(url: url, tensors: [TensorInfo(name: "f4", dtype: .f4, shape: [3])], metadata: [:], overwrite: false)
        }
        #expect(throws: SafetensorsWriterError.invalidShape(path: url.path, tensor: "huge")) {
            try SafetensorsWriter(url: url, tensors: [TensorInfo(name: "huge", dtype: .f32, shape: [1 << 40, 1 << 40])], metadata: [:], overwrite: false)
        }
        #expect(throws: SafetensorsWriterError.reservedName(path: url.path, name: "__metadata__")) {
            try SafetensorsWriter(url: url, tensors: [TensorInfo(name: "__metadata__", dtype: .u8, shape: [1])], metadata: [:], overwrite: false)
        }
        #expect(try dir.contents() == [])
    }

    @Test("Python safetensors loads what qpk writes, bit for bit", .enabled(if: PythonReference.isAvailable))
    func pythonInterop() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("interop.safetensors")
        let w = TensorInfo(name: "layer.weight", dtype: .f32, shape: [3, 4])
        let h = TensorInfo(name: "layer.half", dtype: .f16, shape: [5])
        let s = TensorInfo(name: "scalar", dtype: .i64, shape: [])
        let e = TensorInfo(name: "empty", dtype: .u8, shape: [0])
        let writer = try SafetensorsWriter(url: url, tensors: [w, h, s, e], metadata: ["format": "pt", "k/v": "x"], overwrite: false)
        try writer.write(s, storage: bytes([Int64(-7)]))
        try writer.write(w, storage: floatBytes((0..<12).map { Float($0) / 3 }))
        try writer.write(e, storage: .dense(TensorBytes(copying: [UInt8]())))
        try writer.write(h, storage: bytes((0..<5).map { Float16(Double($0) - 2.25).bitPattern }))
        try writer.finish()
        let script = """
        import sys, numpy as np
        from safetensors import safe_open
        with safe_open(sys.argv[1], "np") as f:
            assert f.metadata() == {"format": "pt", "k/v": "x"}, f.metadata()
            w = f.get_tensor("layer.weight")
            assert w.dtype == np.float32 and w.shape == (3, 4)
            assert (w.view(np.uint32) == (np.arange(12, dtype=np.float32) / np.float32(3)).reshape(3, 4).view(np.uint32)).all()
            h = f.get_tensor("layer.half")
            assert h.dtype == np.float16 and (h == np.arange(5) - 2.25).all()
            s = f.get_tensor("scalar")
            assert s.shape == () and s.dtype == np.int64 and s == -7
            e = f.get_tensor("empty")
            assert e.shape == (0,) and e.dtype == np.uint8
        print("ok")
        """
        #expect(try PythonReference.run(script, arguments: [url.path]) == "ok")
    }
}

/// Runs the Python reference (`python3` with `safetensors` and numpy) when the machine has it.
enum PythonReference {
    static let isAvailable: Bool = (try? run("import safetensors, numpy; print('ok')")) == "ok"

    /// Runs `script` with `python3 -c` and returns its trimmed standard output.
    static func run(_ script: String, arguments: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
