import Foundation
import Testing
@testable import Formats
import QPKCore

/// The worked example of `spec/qpk-format.md` §9, checked byte for byte.
@Suite("QPK: the spec's worked example")
struct QPKSpecExampleTests {
    static func writeExample(_ url: URL) throws {
        let b = TensorInfo(name: "b", dtype: .f32, shape: [2])
        let w = TensorInfo(name: "w", dtype: .f32, shape: [2, 3])
        let quantized = QuantizedTensor(
            info: w, layout: QuantizationLayout(scheme: .affine, bits: 4, groupSize: 2),
            codes: QPKReference.pack([0, 15, 7, 3, 1, 2], bits: 4),
            scales: [0.5, 1.0, 2.0, 0.25], zeros: [1, 0, 2, 8],
            outliers: OutlierSet(kind: .elements, indices: [4], values: [100], statistic: "abs_deviation", threshold: 3.5),
            error: QuantizationErrorStats(sqnrDB: 40, maxAbsError: 0.125), method: "minmax")
        let provenance = QPKProvenance(
            sources: [.init(name: "m.safetensors", size: 128, headerSHA256: SHA256Hex.digest(of: [UInt8]()))],
            qpkVersion: "1.0.0", createdBy: "spec example")
        let writer = try QPKWriter(
            url: url, tensors: [b, w], metadata: ["format": "pt"], recipe: ["bits": 4], provenance: provenance, overwrite: true)
        try writer.write(w, storage: .quantized(quantized))
        try writer.write(b, storage: .dense(QPKFixture.floatBytes([1, -2])))
        try writer.finish()
    }

    @Test("the example file has the documented layout and dequantizes as §5.4 says")
    func example() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("example.qpk")
        try Self.writeExample(url)
        let bytes = try [UInt8](Data(contentsOf: url))
        if let dump = ProcessInfo.processInfo.environment["QPK_SPEC_EXAMPLE_OUT"] {
            try Data(bytes).write(to: URL(fileURLWithPath: dump))
        }
        #expect(Array(bytes[0..<16]) == [0x89, 0x51, 0x50, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A, 1, 0, 0, 0, 0, 0, 0, 0])
        #expect(QPKFixture.preamble(bytes).headerOffset == 448)
        #expect(Array(bytes[64..<68]) == [0xF0, 0x37, 0x21, 0x00])
        #expect(Array(bytes[128..<136]) == [0x00, 0x38, 0x00, 0x3C, 0x00, 0x40, 0x00, 0x34])
        #expect(Array(bytes[192..<200]) == [0x00, 0x3C, 0x00, 0x00, 0x00, 0x40, 0x00, 0x48])
        #expect(Array(bytes[256..<260]) == [4, 0, 0, 0])
        #expect(Array(bytes[320..<324]) == [0x00, 0x00, 0xC8, 0x42])
        #expect(Array(bytes[384..<392]) == [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0])
        #expect(CRC32.checksum(bytes) == Self.expectedFileCRC, "the file changed: update spec §9.1 and this CRC")
        let reader = try QPKReader(url: url)
        #expect(reader.tensors.map(\.name) == ["b", "w"])
        guard case let .quantized(q) = try reader.storage(of: reader.tensor(named: "w")!) else {
            Issue.record("w is not quantized")
            return
        }
        // (q − z)·s: row 0 groups {0,15} s=.5 z=1, {7} s=1 z=0; row 1 groups {3,1} s=2 z=2, {2} s=.25 z=8;
        // the outlier at flat index 4 replaces (1−2)·2.
        #expect(QPKReference.dequantize(q) == [-0.5, 7, 7, 2, 100, -1.5])
        #expect(reader.record(for: "w")?.bitsPerWeight == Double(3 + 8 + 8 + 4 + 4) * 8 / 6)
    }

    static let expectedFileCRC: UInt32 = 0xB3F4_F2F8
}
