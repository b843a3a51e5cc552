import Foundation
import Testing
@testable import Formats
import QPKCore

/// Cross-checks the Swift writer against `tests/interop/qpk_read.py`, an independent numpy reader
/// written from the spec alone. Skipped when python3 with numpy is not installed.
@Suite("QPK: the independent Python reader agrees", .enabled(if: QPKInterop.pythonAvailable))
struct QPKInteropTests {
    @Test("qpk_read.py verifies every CRC and reproduces the recorded error of every quantized tensor")
    func pythonReaderAgrees() throws {
        let dir = try QPKTempDirectory()
        let qpk = dir.file("sample.qpk"), source = dir.file("sample.safetensors")
        try QPKInterop.writeSample(qpk: qpk, source: source)
        // A copy the lead can run by hand: python3 tests/interop/qpk_read.py /tmp/qpk-interop-sample.qpk
        //   --check-against /tmp/qpk-interop-sample.safetensors
        try? FileManager.default.removeItem(atPath: "/tmp/qpk-interop-sample.qpk")
        try? FileManager.default.removeItem(atPath: "/tmp/qpk-interop-sample.safetensors")
        try? FileManager.default.copyItem(at: qpk, to: URL(fileURLWithPath: "/tmp/qpk-interop-sample.qpk"))
        try? FileManager.default.copyItem(at: source, to: URL(fileURLWithPath: "/tmp/qpk-interop-sample.safetensors"))

        let (status, output) = try QPKInterop.run([qpk.path, "--check-against", source.path])
        #expect(status == 0, "\(output)")
        #expect(output.contains("valid QPK v1, \(QPKInterop.tensorCount) tensors"))
        #expect(!output.contains("MISMATCH"))

        // A flipped code byte is caught by the Python reader too, by tensor name.
        let (offset, length) = try QPKFixture.blob(qpk, "w4.rows", "codes")
        try QPKFixture.flipByte(qpk, at: offset + length / 2)
        let (badStatus, badOutput) = try QPKInterop.run([qpk.path])
        #expect(badStatus == 1)
        #expect(badOutput.contains("blob_checksum") && badOutput.contains("'w4.rows'"), "\(badOutput)")
    }
}

enum QPKInterop {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tests/interop/qpk_read.py")

    static let pythonAvailable: Bool = (try? run(["-c", "import numpy"], script: false).status) == 0

    /// 16 quantized tensors (4 bit widths × 4 layouts) and 2 raw ones.
    static let tensorCount = 18

    static func run(_ arguments: [String], script useScript: Bool = true) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + (useScript ? [script.path] : []) + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A safetensors source (written by hand, F32/BF16/I64) and its QPK conversion covering every
    /// bit width, both schemes, partial groups, per-row groups and every outlier kind.
    static func writeSample(qpk: URL, source: URL) throws {
        var entries: [(TensorInfo, [UInt8], TensorStorage)] = []
        var seed: UInt64 = 10
        func floats(_ info: TensorInfo) -> [Float] {
            seed += 1
            return QPKReference.randomValues(info.elementCount, seed: seed)
        }
        func bytes(_ values: [Float], _ dtype: DType) -> [UInt8] {
            dtype == .bf16
                ? values.flatMap { v in withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian) { Array($0) } }
                : values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        }
        for bits in [2, 3, 4, 8] {
            for (shape, group, scheme, kind) in [
                ([64, 7], 64, QuantizationScheme.affine, OutlierSet.Kind?.none),
                ([5, 130], 64, .symmetric, .columns),
                ([5, 130], 130, .affine, .rows),
                ([3, 4, 20], 8, .affine, .elements),
            ] {
                let name = "w\(bits).\(kind?.rawValue ?? "none")"
                let dtype: DType = bits == 3 ? .bf16 : .f32
                let info = TensorInfo(name: name, dtype: dtype, shape: shape)
                var values = floats(info)
                if dtype == .bf16 { values = values.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) } }
                let q = QPKReference.quantize(values, info: info, bits: bits, groupSize: group, scheme: scheme, outliers: kind, outlierCount: 2)
                entries.append((info, bytes(values, dtype), .quantized(q)))
            }
        }
        let bias = TensorInfo(name: "bias", dtype: .f32, shape: [7])
        let biasBytes = bytes(floats(bias), .f32)
        entries.append((bias, biasBytes, .dense(TensorBytes(copying: biasBytes))))
        let ids = TensorInfo(name: "position_ids", dtype: .i64, shape: [1, 5])
        let idBytes = (0..<5).flatMap { i in withUnsafeBytes(of: Int64(i).littleEndian) { Array($0) } }
        entries.append((ids, idBytes, .dense(TensorBytes(copying: idBytes))))
        precondition(entries.count == tensorCount)

        // safetensors: u64 header length, JSON header (padded with spaces to 8), data.
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var data = [UInt8]()
        for (info, raw, _) in entries {
            header[info.name] = ["dtype": info.dtype.rawValue, "shape": info.shape, "data_offsets": [data.count, data.count + raw.count]]
            data += raw
        }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var file = [UInt8]()
        file.appendLittleEndian(UInt64(json.count))
        try Data(file + json + data).write(to: source)

        let provenance = QPKProvenance(
            sources: [try QPKProvenance.source(describing: source)], qpkVersion: "0.1.0-test", createdBy: "QPKInteropTests")
        let writer = try QPKWriter(
            url: qpk, tensors: entries.map(\.0), metadata: ["format": "pt"], recipe: ["method": "minmax"],
            provenance: provenance, overwrite: true)
        for (info, _, storage) in entries.reversed() { try writer.write(info, storage: storage) }
        try writer.finish()
    }
}
