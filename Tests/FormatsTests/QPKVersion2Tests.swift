import Foundation
import Testing
@testable import Formats
import QPKCore

/// QPK v2 (`spec/qpk-format.md` §2, §5.3, §5.5–§5.7, §7, rules 26–30): every feature written,
/// read back and accounted for, and every new rule broken by editing real bytes.
@Suite("QPK v2: packed/implicit zero-points, group index, codebook, transform")
struct QPKVersion2Tests {
    let dir: QPKTempDirectory
    let url: URL

    init() throws {
        dir = try QPKTempDirectory()
        url = dir.file("v2.qpk")
    }

    static let wInfo = TensorInfo(name: "w", dtype: .f32, shape: [4, 10])
    static let sInfo = TensorInfo(name: "s", dtype: .f32, shape: [2, 8])
    static let gInfo = TensorInfo(name: "g", dtype: .f32, shape: [2, 12])
    static let hInfo = TensorInfo(name: "h", dtype: .f32, shape: [3, 8])

    /// `w`: packed 4-bit zero-points (integers) with element outliers; `s`: symmetric 3-bit, no
    /// zero-points stored; `g`: a group index and a codebook; `h`: a Hadamard transform.
    static func sampleTensors() -> [QuantizedTensor] {
        var w = QPKReference.quantize(QPKReference.randomValues(40, seed: 11), info: wInfo, bits: 4, groupSize: 4, outliers: .elements)
        w.layout.zeroPoints = .packed  // the reference quantizer's zero-points are already integers
        var s = QPKReference.quantize(QPKReference.randomValues(16, seed: 12), info: sInfo, bits: 3, groupSize: 8, scheme: .symmetric)
        s.layout.zeroPoints = .implicit
        var g = QPKReference.quantize(QPKReference.randomValues(24, seed: 13), info: gInfo, bits: 2, groupSize: 4)
        g.layout.hasGroupIndex = true
        g.layout.hasCodebook = true
        g.groupIndex = [1, 0, 2, 0, 2, 1, 1, 0, 2, 0, 1, 2]  // three groups of four: 2-bit entries
        g.codebook = [-0.5, 0.25, 1, 3.5]
        var h = QPKReference.quantize(QPKReference.randomValues(24, seed: 14), info: hInfo, bits: 4, groupSize: 8)
        h.layout.transform = WeightTransform(kind: .hadamard, blockSize: 4)
        h.transformSigns = [0b1010_0110]
        return [w, s, g, h]
    }

    @discardableResult
    static func writeSample(_ url: URL, _ tensors: [QuantizedTensor] = sampleTensors()) throws -> [QuantizedTensor] {
        let bias = TensorInfo(name: "b", dtype: .f32, shape: [2])
        try QPKFixture.write(url, [(bias, .dense(QPKFixture.floatBytes([1, -2])))] + tensors.map { ($0.info, .quantized($0)) })
        return tensors
    }

    /// The preamble version, after checking that the header says the same.
    private func version(_ url: URL) throws -> Int {
        let bytes = try [UInt8](Data(contentsOf: url))
        let header = (try QPKFixture.header(url)["version"] as! NSNumber).intValue
        #expect(header == Int(bytes[8]))
        return Int(bytes[8])
    }

    @Test("a file with a v2 feature is version 2, one without stays version 1")
    func versionRule() throws {
        try Self.writeSample(url)
        #expect(try version(url) == 2)
        for tensor in Self.sampleTensors() {
            try Self.writeSample(url, [tensor])
            #expect(try version(url) == 2, "\(tensor.info.name)")
        }
        var plain = Self.sampleTensors()[0]
        plain.layout.zeroPoints = .float16
        try Self.writeSample(url, [plain])
        #expect(try version(url) == 1)
        let quantization = (try QPKFixture.header(url)["tensors"] as! [[String: Any]])[1]["quantization"] as! [String: Any]
        #expect(Set(quantization.keys) == ["axis", "bits", "group_size", "method", "scheme"])
    }

    @Test("every v2 feature round-trips through writer and reader, and the bytes add up (§7)")
    func roundTrip() throws {
        let written = try Self.writeSample(url)
        let reader = try QPKReader(url: url)
        #expect(reader.validate().isEmpty)
        for tensor in written {
            guard case let .quantized(read) = try reader.storage(of: tensor.info) else {
                Issue.record("\(tensor.info.name) not quantized")
                continue
            }
            #expect(read.layout == tensor.layout)
            #expect(read.codes == tensor.codes)
            #expect(read.scales.map(\.bitPattern) == tensor.scales.map(\.bitPattern))
            // Compared as values: a packed or implicit zero-point has no sign, so −0 reads back as 0.
            #expect(read.zeros.map(Float.init) == tensor.zeros.map(Float.init), "\(tensor.info.name)")
            #expect(read.groupIndex == tensor.groupIndex)
            #expect(read.codebook?.map(\.bitPattern) == tensor.codebook?.map(\.bitPattern))
            #expect(read.transformSigns == tensor.transformSigns)
            #expect(read.outliers == tensor.outliers)
            let record = reader.record(for: tensor.info.name)!
            #expect(record.storedByteCount == tensor.storedByteCount, "\(tensor.info.name)")
        }
        // Sizes by hand (§7): w 4×10 g4 packed: codes 20, scales 2·12, zeros ceil(12·4/8) = 6.
        let w = reader.record(for: "w")!
        #expect(w.storedByteCount(of: .zeros) == 6)
        #expect(reader.record(for: "s")!.blobs[.zeros] == nil)
        let g = reader.record(for: "g")!
        // The group index packs 12 entries of ceil(log2 3) = 2 bits into 3 bytes (§5.5).
        #expect(g.storedByteCount(of: .groupIndex) == 3 && g.storedByteCount(of: .codebook) == 8)
        #expect(reader.record(for: "h")!.storedByteCount(of: .transformSigns) == 1)
        let header = (try QPKFixture.header(url)["tensors"] as! [[String: Any]]).map { $0["quantization"] as? [String: Any] }
        #expect(header[1]?["zero_points"] as? String == "packed")
        #expect(header[2]?["zero_points"] as? String == "none")
        #expect(header[3]?["group_index"] as? Bool == true && header[3]?["codebook"] as? Bool == true)
        #expect((header[4]?["transform"] as? [String: Any])?["block_size"] as? Int == 4)
    }

    @Test("packed zero-points are the §5.2 bit stream of the integer zero-points")
    func packedBytes() throws {
        let w = try Self.writeSample(url)[0]
        let (offset, length) = try QPKFixture.blob(url, "w", "zeros")
        let bytes = Array(try [UInt8](Data(contentsOf: url))[offset..<(offset + length)])
        #expect(bytes == QPKReference.pack(w.zeros.map { UInt8(Float($0)) }, bits: 4))
    }

    @Test("the writer rejects v2 data that breaks a rule")
    func writerChecks() throws {
        var tensors = Self.sampleTensors()
        var bad = tensors[0]
        bad.zeros[0] = 2.5  // packed zero-points are integers
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = tensors[1]
        bad.layout.scheme = .affine  // none needs symmetric
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = tensors[2]
        bad.groupIndex = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]  // group 0 holds 5 > 4 columns
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = tensors[2]
        bad.codebook![1] = .infinity
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = tensors[3]
        bad.layout.transform!.blockSize = 16  // does not divide 8 columns
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = tensors[3]
        bad.transformSigns = nil
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        tensors.removeAll()
    }

    // MARK: - Rules

    private func editQuantization(_ name: String, _ edit: @escaping (inout [String: Any]) -> Void) throws {
        try QPKFixture.editTensor(url, name) { t in
            var q = t["quantization"] as! [String: Any]
            edit(&q)
            t["quantization"] = q
        }
    }

    @Test("3 unsupported_version: version 3 (1 and 2 are read)")
    func unsupportedVersion() throws {
        try Self.writeSample(url)
        try QPKFixture.editPreamble(url) { $0[8] = 3 }
        #expect(QPKFixture.openError(url) == .unsupportedVersion(path: url.path, version: 3))
    }

    @Test("26 v2_feature_in_v1: a version-1 file with a v2 feature")
    func featureInVersion1() throws {
        try Self.writeSample(url, [Self.sampleTensors()[3]])
        try QPKFixture.editPreamble(url) { $0[8] = 1 }
        try QPKFixture.editHeader(url) { $0["version"] = 1 }
        #expect(QPKFixture.openError(url) == .featureNeedsVersion2(path: url.path, tensor: "h", feature: "a transform"))
        #expect(QPKReader.validate(url: url).map(\.rule) == ["v2_feature_in_v1"])
    }

    @Test("27 invalid_zero_points: unknown value, or none without symmetric")
    func invalidZeroPoints() throws {
        try Self.writeSample(url)
        try editQuantization("w") { $0["zero_points"] = "u4" }
        #expect(QPKFixture.openError(url)?.rule == "invalid_zero_points")
        #expect(QPKFixture.openError(url)?.tensor == "w")
        try Self.writeSample(url)
        try editQuantization("s") { $0["scheme"] = "affine" }
        #expect(QPKFixture.openError(url) == .invalidZeroPoints(
            path: url.path, tensor: "s", reason: "zero_points 'none' with scheme 'affine', not 'symmetric'"))
    }

    @Test("20 blob_length: a packed zero-point blob of the f16 length")
    func packedLength() throws {
        try Self.writeSample(url)
        try QPKFixture.editTensor(url, "w") { t in
            var blobs = t["blobs"] as! [String: [String: Any]]
            blobs["zeros"]!["length"] = 24
            t["blobs"] = blobs
        }
        #expect(QPKFixture.openError(url) == .blobLengthMismatch(path: url.path, tensor: "w", blob: "zeros", expected: 6, found: 24))
        // A `zeros` blob with zero_points none is one blob too many.
        try Self.writeSample(url)
        let zeros = try QPKFixture.blob(url, "w", "zeros")
        try QPKFixture.editTensor(url, "s") { t in
            var blobs = t["blobs"] as! [String: Any]
            blobs["zeros"] = ["offset": zeros.offset, "length": 0, "crc32": 0]
            t["blobs"] = blobs
        }
        #expect(QPKFixture.openError(url)?.rule == "blob_set")
    }

    @Test("28 invalid_transform: unknown kind, block not a power of two, not dividing C")
    func invalidTransform() throws {
        for transform: [String: Any] in [["kind": "dct", "block_size": 4], ["kind": "hadamard", "block_size": 6],
                                          ["kind": "hadamard", "block_size": 16], ["kind": "hadamard", "block_size": 1]] {
            try Self.writeSample(url)
            try editQuantization("h") { $0["transform"] = transform }
            #expect(QPKFixture.openError(url)?.rule == "invalid_transform", "\(transform)")
            #expect(QPKFixture.openError(url)?.tensor == "h")
        }
    }

    @Test("29 group_index: an entry ≥ G, or a group over group_size columns")
    func groupIndex() throws {
        // Entries are 2 bits (G = 3): entry 3 set to 3 is out of range; entry 0 set to 0 gives
        // group 0 five columns.
        for (position, value) in [(3, UInt8(3)), (0, UInt8(0))] {
            try Self.writeSample(url)
            try QPKFixture.rewriteBlob(url, "g", "group_index") { blob in
                let shift = UInt8(2 * position % 8)
                blob[2 * position / 8] = blob[2 * position / 8] & ~(0b11 << shift) | value << shift
            }
            let reader = try QPKReader(url: url)
            #expect(reader.validate().map(\.rule) == ["group_index"], "\(value)")
            #expect(throws: QPKError.self) { try reader.storage(of: Self.gInfo) }
        }
    }

    @Test("30 codebook_not_finite: a NaN or infinite codebook entry")
    func codebookNotFinite() throws {
        for pattern: UInt16 in [0x7E00, 0xFC00] {
            try Self.writeSample(url)
            try QPKFixture.rewriteBlob(url, "g", "codebook") { $0[4] = UInt8(pattern & 0xFF); $0[5] = UInt8(pattern >> 8) }
            let reader = try QPKReader(url: url)
            #expect(reader.validate().map(\.error) == [.codebookNotFinite(path: url.path, tensor: "g", entry: 2)])
            #expect(throws: QPKError.self) { try reader.storage(of: Self.gInfo) }
        }
    }

    @Test("24 symmetric_zero_point also holds for packed zero-points")
    func symmetricPacked() throws {
        var s = Self.sampleTensors()[1]
        s.layout.zeroPoints = .packed
        try Self.writeSample(url, [s])
        try QPKFixture.rewriteBlob(url, "s", "zeros") { $0[0] = 0b0000_0011 }  // first zero-point 3, not 4
        #expect(try QPKReader(url: url).validate().map(\.rule) == ["symmetric_zero_point"])
    }
}
