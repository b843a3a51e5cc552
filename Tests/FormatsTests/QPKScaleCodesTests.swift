import Foundation
import Testing
@testable import Formats
import QPKCore

/// QPK v2 log-coded group scales (`spec/qpk-format.md` §5.8, §3.1, §4.3, §7, rules 26, 31, 32):
/// written, read back and decoded to hand-computed values, accounted for byte by byte, and every
/// rule broken by editing real bytes.
@Suite("QPK v2: log-coded group scales (§5.8)")
struct QPKScaleCodesTests {
    let dir: QPKTempDirectory
    let url: URL

    init() throws {
        dir = try QPKTempDirectory()
        url = dir.file("scales.qpk")
    }

    /// Three tensors with 3-bit codes and an odd number of groups per row, so that the packed
    /// scale codes straddle bytes: `a` 3 × 10 in groups of 4 (G = 3, 6-bit scale codes over 6
    /// octaves: 54 bits), `b` 5 × 9 in groups of 3 (G = 3, 8 bits over 8 octaves), `c` 3 × 5 in
    /// groups of 2 (G = 3, the last group short, 3 bits over 2 octaves: 27 bits).
    static let cases: [(info: TensorInfo, groupSize: Int, coding: ScaleCodes, rowScales: [Float16])] = [
        (TensorInfo(name: "a", dtype: .f32, shape: [3, 10]), 4, ScaleCodes(bits: 6, octaves: 6), [0.5, 0.1, -3]),
        (TensorInfo(name: "b", dtype: .f32, shape: [5, 9]), 3, ScaleCodes(bits: 8, octaves: 8), [0.5, 0.1, 3, 0, 1000]),
        (TensorInfo(name: "c", dtype: .f32, shape: [3, 5]), 2, ScaleCodes(bits: 3, octaves: 2), [1, 0.25, 7]),
    ]

    /// The magnitudes `m[k]` the codes below use, by hand (§5.8): the binary32 nearest to
    /// `2^(−k·O/k_max)`, as bit patterns (checked against 200-bit arithmetic with mpmath).
    /// `m[0] = 1` and `m[k_max] = 2^(−O)` are exact.
    static let magnitudeBits: [ScaleCodes: [Int: UInt32]] = [
        ScaleCodes(bits: 8, octaves: 8): [0: 0x3F80_0000, 1: 0x3F75_1016, 64: 0x3D7A_78C3, 127: 0x3B80_0000],
        ScaleCodes(bits: 6, octaves: 6): [0: 0x3F80_0000, 1: 0x3F5F_DC1B, 16: 0x3DEF_6420, 31: 0x3C80_0000],
        ScaleCodes(bits: 3, octaves: 2): [0: 0x3F80_0000, 1: 0x3F21_4518, 2: 0x3ECB_2FF5, 3: 0x3E80_0000],
    ]

    /// The scale code of group `i`: the hand-pinned steps in turn, the sign bit on every third.
    static func scaleCode(_ i: Int, _ coding: ScaleCodes) -> UInt8 {
        let steps = magnitudeBits[coding]!.keys.sorted()
        return UInt8(steps[i % steps.count]) | (i % 3 == 1 ? UInt8(1) << (coding.bits - 1) : 0)
    }

    /// The tensors of ``cases``: the reference quantizer's codes and zero-points, with the scales
    /// replaced by ``scaleCode(_:_:)`` codes under the given row scales.
    static func sampleTensors() -> [QuantizedTensor] {
        cases.enumerated().map { n, item in
            let (rows, columns) = item.info.matrixShape
            var t = QPKReference.quantize(
                QPKReference.randomValues(rows * columns, seed: 40 + UInt64(n)), info: item.info, bits: 3, groupSize: item.groupSize)
            let groups = rows * t.layout.groupsPerRow(columns: columns)
            t.layout.scaleCodes = item.coding
            t.scaleCodes = (0..<groups).map { scaleCode($0, item.coding) }
            t.rowScales = item.rowScales
            t.scales = []
            if n == 0 {  // a recorded decision carries the scale coding too (§4.3)
                var decision = QuantizationDecision(
                    method: .rtn, scheme: .affine, bits: 3, groupSize: item.groupSize, scaleSearch: .minmax,
                    outlierKind: .elements, outlierBudget: 0, maxBitsPerWeight: nil, importance: .none)
                decision.scaleCodes = item.coding
                t.decision = decision
                t.method = "rtn+minmax"
            }
            return t
        }
    }

    @discardableResult
    static func writeSample(_ url: URL, _ tensors: [QuantizedTensor] = sampleTensors()) throws -> [QuantizedTensor] {
        let bias = TensorInfo(name: "bias", dtype: .f32, shape: [2])
        try QPKFixture.write(url, [(bias, .dense(QPKFixture.floatBytes([1, -2])))] + tensors.map { ($0.info, .quantized($0)) })
        return tensors
    }

    /// The scale of group `i` of `case`, by hand: `σ · (f32(d_r) · m[k])` in f32 (§5.8).
    static func expectedScale(_ i: Int, groupsPerRow: Int, _ item: (info: TensorInfo, groupSize: Int, coding: ScaleCodes, rowScales: [Float16])) -> Float {
        let code = scaleCode(i, item.coding)
        let signBit = UInt8(1) << (item.coding.bits - 1)
        let magnitude = Float(item.rowScales[i / groupsPerRow]) * Float(bitPattern: magnitudeBits[item.coding]![Int(code & (signBit - 1))]!)
        return code & signBit != 0 ? -magnitude : magnitude
    }

    @Test("written, read back and decoded to the hand-computed scales and values")
    func roundTrip() throws {
        let written = try Self.writeSample(url)
        let reader = try QPKReader(url: url)
        #expect(reader.validate().isEmpty)
        for (tensor, item) in zip(written, Self.cases) {
            let name = tensor.info.name
            guard case let .quantized(read) = try reader.storage(of: tensor.info) else {
                Issue.record("\(name) not quantized")
                continue
            }
            let (rows, columns) = read.matrixShape
            let groups = read.layout.groupsPerRow(columns: columns)
            #expect(groups == 3, "\(name)")
            #expect(read.layout == tensor.layout)
            #expect(read.layout.scaleCodes == item.coding)
            #expect(read.scales.isEmpty)
            #expect(read.scaleCodes == tensor.scaleCodes, "\(name)")
            #expect(read.rowScales?.map(\.bitPattern) == item.rowScales.map(\.bitPattern))
            #expect(read.codes == tensor.codes && read.zeros.map(\.bitPattern) == tensor.zeros.map(\.bitPattern))
            #expect(read.decision == tensor.decision, "\(name)")

            let expected = (0..<(rows * groups)).map { Self.expectedScale($0, groupsPerRow: groups, item) }
            let decoded = try #require(read.decodedScales(rows: rows, groupsPerRow: groups))
            #expect(decoded.map(\.bitPattern) == expected.map(\.bitPattern), "\(name)")
            // x̂ = (q − z)·s with the hand-computed scales (§5.4).
            let codes = QPKReference.unpack(tensor.codes, bits: 3, count: rows * columns)
            let values = (0..<(rows * columns)).map { i -> Float in
                let g = (i / columns) * groups + (i % columns) / item.groupSize
                return (Float(codes[i]) - Float(tensor.zeros[g])) * expected[g]
            }
            #expect(QPKReference.dequantize(read).map(\.bitPattern) == values.map(\.bitPattern), "\(name)")
        }
        // A row scale of 0 makes every scale of its row 0 (signed: −0 for a set sign bit).
        let b = try reader.storage(of: Self.cases[1].info)
        guard case let .quantized(bRead) = b else { return }
        #expect(bRead.decodedScales(rows: 5, groupsPerRow: 3)![9..<12].allSatisfy { $0 == 0 })
    }

    @Test("the header says scale_codes {bits, octaves}, sorted, and the file is version 2")
    func headerAndVersion() throws {
        try Self.writeSample(url)
        let bytes = try [UInt8](Data(contentsOf: url))
        #expect(bytes[8] == 2)
        let header = try QPKFixture.header(url)
        #expect((header["version"] as! NSNumber).intValue == 2)
        let quantization = (header["tensors"] as! [[String: Any]]).dropFirst().map { $0["quantization"] as! [String: Any] }
        for (q, item) in zip(quantization, Self.cases) {
            let codes = try #require(q["scale_codes"] as? [String: Any])
            #expect(Set(codes.keys) == ["bits", "octaves"])
            #expect((codes["bits"] as! NSNumber).intValue == item.coding.bits)
            #expect((codes["octaves"] as! NSNumber).intValue == item.coding.octaves)
        }
        let p = QPKFixture.preamble(bytes)
        let text = String(decoding: bytes[p.headerOffset..<(p.headerOffset + p.headerLength)], as: UTF8.self)
        #expect(text.contains(#""scale_codes":{"bits":6,"octaves":6}"#))
        #expect(text.contains(#""row_scales":{"crc32":"#))
        // Without scale codes the key and the blob are absent.
        var plain = QPKReference.quantize(QPKReference.randomValues(30, seed: 1), info: Self.cases[0].info, bits: 3, groupSize: 4)
        plain.error = nil
        try Self.writeSample(url, [plain])
        #expect(try [UInt8](Data(contentsOf: url))[8] == 1)
        let entry = (try QPKFixture.header(url)["tensors"] as! [[String: Any]])[1]
        #expect((entry["quantization"] as! [String: Any])["scale_codes"] == nil)
        #expect((entry["blobs"] as! [String: Any])["row_scales"] == nil)
    }

    @Test("the scales blob is the §5.2 bit stream of the codes, row_scales the fp16 row scales")
    func blobBytes() throws {
        let written = try Self.writeSample(url)
        let file = try [UInt8](Data(contentsOf: url))
        for tensor in written {
            let name = tensor.info.name
            let coding = tensor.layout.scaleCodes!
            let (offset, length) = try QPKFixture.blob(url, name, "scales")
            #expect(Array(file[offset..<(offset + length)]) == QPKReference.pack(tensor.scaleCodes!, bits: coding.bits), "\(name)")
            let (rowOffset, rowLength) = try QPKFixture.blob(url, name, "row_scales")
            let little = tensor.rowScales!.flatMap { [UInt8($0.bitPattern & 0xFF), UInt8($0.bitPattern >> 8)] }
            #expect(Array(file[rowOffset..<(rowOffset + rowLength)]) == little)
        }
    }

    @Test("§7: ceil(R·G·K/8) scale bytes plus 2·R row-scale bytes, as the byte count says")
    func byteCount() throws {
        let written = try Self.writeSample(url)
        let reader = try QPKReader(url: url)
        // a: 9 codes × 6 bits = 54 bits → 7 bytes, 3 rows; b: 15 × 8 → 15, 5 rows; c: 9 × 3 = 27 bits → 4, 3 rows.
        let byHand: [String: (scales: Int, rows: Int)] = ["a": (7, 6), "b": (15, 10), "c": (4, 6)]
        for tensor in written {
            let name = tensor.info.name
            let record = reader.record(for: name)!
            #expect(record.storedByteCount(of: .scales) == byHand[name]!.scales, "\(name)")
            #expect(record.storedByteCount(of: .rowScales) == byHand[name]!.rows, "\(name)")
            #expect(record.storedByteCount == tensor.storedByteCount, "\(name)")
            let (rows, columns) = tensor.matrixShape
            #expect(record.storedByteCount(of: .scales) == QuantizedByteCount.scales(layout: tensor.layout, groups: rows * 3))
            #expect(record.storedByteCount(of: .rowScales) == QuantizedByteCount.rowScales(layout: tensor.layout, rows: rows))
            let codes = (rows * columns * 3 + 7) / 8, zeros = 2 * rows * 3
            #expect(record.storedByteCount == codes + byHand[name]!.scales + byHand[name]!.rows + zeros)
            #expect(reader.quantizedByteCount(of: tensor.info) == record.storedByteCount)
        }
    }

    @Test("the writer rejects scale codes that break a rule or disagree with the layout")
    func writerChecks() throws {
        let good = Self.sampleTensors()[0]
        var bad = good
        bad.scales = [Float16](repeating: 1, count: 9)  // fp16 scales given as well as codes
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = good
        bad.scaleCodes![2] = 64  // not a 6-bit code
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = good
        bad.scaleCodes!.removeLast()
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = good
        bad.rowScales = [1, 2]  // three rows
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = good
        bad.rowScales![1] = .nan
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = good
        bad.layout.scaleCodes = ScaleCodes(bits: 9, octaves: 8)
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        bad = good
        bad.layout.scaleCodes = nil  // codes without the layout that says how to read them
        #expect(throws: QPKError.self) { try Self.writeSample(url, [bad]) }
        try Self.writeSample(url, [good])
    }

    // MARK: - Rules

    private func editQuantization(_ name: String, _ edit: @escaping (inout [String: Any]) -> Void) throws {
        try QPKFixture.editTensor(url, name) { t in
            var q = t["quantization"] as! [String: Any]
            edit(&q)
            t["quantization"] = q
        }
    }

    @Test("31 invalid_scale_codes: bits or octaves missing, out of range or not integers")
    func invalidScaleCodes() throws {
        let broken: [Any] = [
            ["bits": 9, "octaves": 8], ["bits": 1, "octaves": 8], ["bits": 8, "octaves": 0], ["bits": 8, "octaves": 33],
            ["bits": 8], ["octaves": 8], ["bits": "8", "octaves": 8], ["bits": 8, "octaves": 2.5], true,
        ]
        for value in broken {
            try Self.writeSample(url)
            try editQuantization("b") { $0["scale_codes"] = value }
            let error = QPKFixture.openError(url)
            #expect(error?.rule == "invalid_scale_codes", "\(value)")
            #expect(error?.tensor == "b")
            #expect(QPKReader.validate(url: url).map(\.rule) == ["invalid_scale_codes"], "\(value)")
        }
        try Self.writeSample(url)
        try editQuantization("a") { $0["scale_codes"] = ["bits": 6] }
        #expect(QPKFixture.openError(url) == .invalidScaleCodes(path: url.path, tensor: "a", reason: "scale_codes lacks 'octaves'"))
        #expect(QPKFixture.openError(url)?.description.contains("invalid_scale_codes") == true)
    }

    @Test("32 row_scale_not_finite: a NaN or infinite row scale, on validate and on read")
    func rowScaleNotFinite() throws {
        for pattern: UInt16 in [0x7E00, 0x7C00, 0xFC00] {
            try Self.writeSample(url)
            try QPKFixture.rewriteBlob(url, "b", "row_scales") { $0[6] = UInt8(pattern & 0xFF); $0[7] = UInt8(pattern >> 8) }
            let reader = try QPKReader(url: url)  // a content rule: the file still opens
            #expect(reader.validate().map(\.error) == [.rowScaleNotFinite(path: url.path, tensor: "b", row: 3)])
            #expect(reader.validate().map(\.rule) == ["row_scale_not_finite"])
            #expect(throws: QPKError.rowScaleNotFinite(path: url.path, tensor: "b", row: 3)) { try reader.storage(of: Self.cases[1].info) }
            // The other tensors still read.
            _ = try reader.storage(of: Self.cases[0].info)
        }
    }

    @Test("26 v2_feature_in_v1: scale_codes in a version-1 file")
    func featureInVersion1() throws {
        try Self.writeSample(url, [Self.sampleTensors()[2]])
        try QPKFixture.editPreamble(url) { $0[8] = 1 }
        try QPKFixture.editHeader(url) { $0["version"] = 1 }
        #expect(QPKFixture.openError(url) == .featureNeedsVersion2(path: url.path, tensor: "c", feature: "scale_codes"))
        #expect(QPKReader.validate(url: url).map(\.rule) == ["v2_feature_in_v1"])
    }

    @Test("20 blob_length and 16 blob_set: fp16-length scales, a missing or stray row_scales blob")
    func blobRules() throws {
        try Self.writeSample(url)
        try QPKFixture.editTensor(url, "a") { t in
            var blobs = t["blobs"] as! [String: [String: Any]]
            blobs["scales"]!["length"] = 18  // 2·R·G, the fp16 length
            t["blobs"] = blobs
        }
        #expect(QPKFixture.openError(url) == .blobLengthMismatch(path: url.path, tensor: "a", blob: "scales", expected: 7, found: 18))
        try Self.writeSample(url)
        try QPKFixture.editTensor(url, "a") { t in
            var blobs = t["blobs"] as! [String: Any]
            blobs["row_scales"] = nil
            t["blobs"] = blobs
        }
        #expect(QPKFixture.openError(url)?.rule == "blob_set")
        // Without scale_codes, a row_scales blob is one too many (and the scales length is fp16's).
        try Self.writeSample(url)
        try editQuantization("c") { $0["scale_codes"] = nil }
        #expect(QPKFixture.openError(url) == .blobSetMismatch(path: url.path, tensor: "c", reason: "unexpected blob(s) row_scales"))
    }
}
