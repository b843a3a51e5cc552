import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("QPK: write then read gives back exactly what was written")
struct QPKRoundTripTests {
    /// Bytes of `count` elements of `dtype`, deterministic.
    static func rawBytes(_ info: TensorInfo, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        return (0..<info.byteCount).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    @Test("raw tensors of many dtypes and shapes come back byte for byte, in the announced order")
    func rawRoundTrip() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("raw.qpk")
        let infos = [
            TensorInfo(name: "f32", dtype: .f32, shape: [3, 5]),
            TensorInfo(name: "f16", dtype: .f16, shape: [7]),
            TensorInfo(name: "bf16", dtype: .bf16, shape: [2, 3, 4]),
            TensorInfo(name: "f64", dtype: .f64, shape: [65]),
            TensorInfo(name: "i64", dtype: .i64, shape: [2, 2]),
            TensorInfo(name: "u8", dtype: .u8, shape: [129]),
            TensorInfo(name: "bool", dtype: .bool, shape: [3]),
            TensorInfo(name: "f8", dtype: .f8e4m3, shape: [10]),
            TensorInfo(name: "f4", dtype: .f4, shape: [2, 3]),
            TensorInfo(name: "scalar", dtype: .f32, shape: []),
            TensorInfo(name: "empty", dtype: .f32, shape: [0, 4]),
        ]
        let data = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, Self.rawBytes($1, seed: UInt64($0))) })
        // Written in reverse order; the header keeps the announced order.
        try QPKFixture.write(url, infos.reversed().map { ($0, .dense(TensorBytes(copying: data[$0.name]!))) }, order: infos)
        let reader = try QPKReader(url: url)
        #expect(reader.tensors == infos)
        #expect(reader.format == .qpk)
        for info in infos {
            let bytes = try reader.denseBytes(of: info)
            #expect(bytes.withUnsafeBytes { [UInt8]($0) } == data[info.name]!, "\(info.name)")
            let record = try #require(reader.record(for: info.name))
            #expect(record.encoding == .raw)
            #expect(!record.isQuantized)
            #expect(record.storedBytes == info.byteCount)
            #expect(record.layout == nil)
            if info.elementCount > 0 { #expect(record.bitsPerWeight == Double(info.dtype.bitWidth)) }
        }
        #expect(reader.validate().isEmpty)
    }

    static let cases: [(shape: [Int], group: Int)] = [([64, 7], 64), ([5, 130], 64), ([5, 130], 130), ([2, 3, 10], 4), ([33], 32)]

    @Test("affine and symmetric tensors at 2, 3, 4 and 8 bits, partial last groups and per-row, round-trip exactly",
          arguments: [2, 3, 4, 8])
    func quantizedRoundTrip(bits: Int) throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("q\(bits).qpk")
        var items: [(TensorInfo, TensorStorage)] = []
        var originals: [String: QuantizedTensor] = [:]
        for (i, c) in Self.cases.enumerated() {
            for scheme in QuantizationScheme.allCases {
                let info = TensorInfo(name: "t\(i).\(scheme.rawValue)", dtype: i % 2 == 0 ? .f32 : .bf16, shape: c.shape)
                let q = QPKReference.quantize(
                    QPKReference.randomValues(info.elementCount, seed: UInt64(100 * bits + i)), info: info, bits: bits,
                    groupSize: c.group, scheme: scheme)
                items.append((info, .quantized(q)))
                originals[info.name] = q
            }
        }
        try QPKFixture.write(url, items)
        let reader = try QPKReader(url: url)
        for (info, _) in items {
            guard case let .quantized(back) = try reader.storage(of: info) else {
                Issue.record("\(info.name) did not come back quantized")
                continue
            }
            let original = originals[info.name]!
            #expect(back.info == original.info)
            #expect(back.layout == original.layout)
            #expect(back.codes == original.codes)
            #expect(back.scales.map(\.bitPattern) == original.scales.map(\.bitPattern))
            #expect(back.zeros.map(\.bitPattern) == original.zeros.map(\.bitPattern))
            #expect(back.error == original.error)
            #expect(back.method == "minmax")
            #expect(back.outliers == nil)
            #expect(QPKReference.dequantize(back) == QPKReference.dequantize(original))
            let record = try #require(reader.record(for: info.name))
            #expect(record.bits == bits)
            #expect(record.groupSize == original.layout.groupSize)
            #expect(record.storedByteCount == original.storedByteCount)
            #expect(abs(record.bitsPerWeight - original.bitsPerWeight) < 1e-12)
        }
        #expect(reader.validate().isEmpty)
    }

    @Test("every outlier kind round-trips with its indices, values, statistic and threshold",
          arguments: OutlierSet.Kind.allCases)
    func outliersRoundTrip(kind: OutlierSet.Kind) throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("o.qpk")
        let info = TensorInfo(name: "layer.weight", dtype: .f32, shape: [5, 130])
        let values = QPKReference.randomValues(info.elementCount, seed: 7)
        let q = QPKReference.quantize(values, info: info, bits: 4, groupSize: 64, outliers: kind, outlierCount: 3)
        try QPKFixture.write(url, [(info, .quantized(q))], recipe: ["method": "prequant", "outlier_budget": 0.005])
        let reader = try QPKReader(url: url)
        guard case let .quantized(back) = try reader.storage(of: info) else {
            Issue.record("not quantized")
            return
        }
        #expect(back.outliers == q.outliers)
        #expect(back.outliers?.statistic == "abs_max")
        #expect(back.outliers?.threshold == 1.25)
        let record = try #require(reader.record(for: info.name))
        #expect(record.outliers == QPKOutlierRecord(kind: kind, count: 3, statistic: "abs_max", threshold: 1.25))
        let covered = kind == .rows ? 3 * 130 : kind == .columns ? 3 * 5 : 3
        #expect(record.outlierParameterCount == covered)
        #expect(record.storedByteCount(of: .outlierIndices) == 12)
        #expect(record.storedByteCount(of: .outlierValues) == covered * 4)
        // Outlier positions dequantize to the exact source values.
        let restored = QPKReference.dequantize(back)
        for (i, value) in restored.enumerated() where restored[i] != values[i] {
            #expect(abs(value - values[i]) <= Float(q.error!.maxAbsError) + 1e-6)
        }
        #expect(reader.outlierParameterCount == covered)
        #expect(reader.quantizedParameterCount == 650)
        #expect(reader.outlierBudget == 0.005)
        let header = try QPKFixture.header(url)
        let totals = header["outliers"] as! [String: Any]
        #expect((totals["parameters"] as! NSNumber).intValue == covered)
        #expect((totals["quantized_parameters"] as! NSNumber).intValue == 650)
        #expect(reader.validate().isEmpty)
    }

    @Test("metadata, recipe, provenance and non-finite error stats are preserved")
    func fileWideFields() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("p.qpk")
        let info = TensorInfo(name: "w", dtype: .f16, shape: [2, 4])
        var q = QPKReference.quantize([0, 1, 2, 3, 4, 5, 6, 7], info: info, bits: 8, groupSize: 4)
        q.error = QuantizationErrorStats(sqnrDB: .infinity, maxAbsError: 0)
        let recipe: [String: QPKJSONValue] = [
            "method": "prequant", "bits": 4, "outlier_budget": 0.005, "clip": true, "groups": [32, 64],
            "nested": ["a": nil, "b": "x/y"],
        ]
        let metadata = ["format": "pt", "path/with/slash": "{\"json\": 1}", "unicode": "ß→∞"]
        try QPKFixture.write(url, [(info, .quantized(q))], metadata: metadata, recipe: recipe)
        let reader = try QPKReader(url: url)
        #expect(reader.metadata == metadata)
        #expect(reader.recipe == recipe)
        #expect(reader.provenance == QPKFixture.provenance)
        #expect(reader.record(for: "w")?.error == QuantizationErrorStats(sqnrDB: .infinity, maxAbsError: 0))
        #expect(reader.record(for: "missing") == nil)
        #expect(throws: CheckpointError.noSuchTensor(url.path, "nope")) {
            try reader.storage(of: TensorInfo(name: "nope", dtype: .f32, shape: [1]))
        }
    }

    @Test("every blob starts at a multiple of 64 and the gaps are zero")
    func alignment() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("a.qpk")
        try QPKFixture.writeSample(url)
        let reader = try QPKReader(url: url)
        var count = 0
        for record in reader.records {
            for (kind, blob) in record.blobs {
                #expect(blob.offset % 64 == 0, "\(record.info.name).\(kind)")
                count += 1
            }
        }
        #expect(count == 2 + 5 + 3)
        let bytes = try [UInt8](Data(contentsOf: url))
        #expect(QPKFixture.preamble(bytes).headerOffset % 64 == 0)
        #expect(QPKReader.validate(url: url).isEmpty)
    }

    @Test("the header hash covers 8 + N bytes of a safetensors file and 1 MiB of anything else")
    func provenanceHash() throws {
        let dir = try QPKTempDirectory()
        let header = Array("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}".utf8)
        var safetensors = [UInt8]()
        safetensors.appendLittleEndian(UInt64(header.count))
        safetensors += header + [0, 0, 128, 63]
        let st = dir.file("m.safetensors")
        try Data(safetensors).write(to: st)
        #expect(try QPKProvenance.sha256Hex(ofHeaderOf: st) == SHA256Hex.digest(of: Array(safetensors[0..<(8 + header.count)])))
        let source = try QPKProvenance.source(describing: st)
        #expect(source == .init(name: "m.safetensors", size: safetensors.count, headerSHA256: try QPKProvenance.sha256Hex(ofHeaderOf: st)))

        let described = try QPKProvenance.describing(sources: [st], createdBy: "qpk convert m.safetensors m.qpk")
        #expect(described == QPKProvenance(sources: [source], qpkVersion: QPKProvenance.currentQPKVersion, createdBy: "qpk convert m.safetensors m.qpk"))
        #expect(try QPKProvenance.describing(sources: []).createdBy.hasPrefix("qpk"))

        let big = (0..<(3 << 19)).map { UInt8(truncatingIfNeeded: $0 * 13) }
        let other = dir.file("other.h5")
        try Data(big).write(to: other)
        #expect(try QPKProvenance.sha256Hex(ofHeaderOf: other) == SHA256Hex.digest(of: Array(big[0..<(1 << 20)])))
        let small = dir.file("small.bin")
        try Data([1, 2, 3]).write(to: small)
        #expect(try QPKProvenance.sha256Hex(ofHeaderOf: small) == SHA256Hex.digest(of: [1, 2, 3]))
    }

    @Test("the magic is recognised from its first 4 bytes and safetensors/HDF5 prefixes are not")
    func magic() {
        #expect(QPKLayout.magic.withUnsafeBytes { QPKReader.hasQPKMagic($0) })
        #expect([UInt8]([0x89, 0x51, 0x50, 0x4B]).withUnsafeBytes { QPKReader.hasQPKMagic($0) })
        #expect(![UInt8]([0x89, 0x51, 0x50]).withUnsafeBytes { QPKReader.hasQPKMagic($0) })
        #expect(![UInt8]([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]).withUnsafeBytes { QPKReader.hasQPKMagic($0) })
        #expect(![UInt8]([0x58, 0, 0, 0, 0, 0, 0, 0, 0x7B]).withUnsafeBytes { QPKReader.hasQPKMagic($0) })
        #expect(![UInt8]([0x89, 0x51, 0x50, 0x4B, 0x0D, 0x0A, 0x1A, 0x0B]).withUnsafeBytes { QPKReader.hasQPKMagic($0) })
    }
}
