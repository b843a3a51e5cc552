import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("ImportanceMatrix: llama.cpp's imatrix, GGUF written and read, legacy .dat read")
struct ImportanceMatrixTests {
    static let sample = ImportanceMatrix(
        entries: [
            "blk.0.attn_q.weight": .init(sumOfSquares: [4, 8, 12], counts: [4]),
            "blk.0.ffn_down.weight": .init(sumOfSquares: [1, 2, 3, 4, 5, 6], counts: [2, 1]),
        ],
        datasets: ["calib.txt"], chunkCount: 3, chunkSize: 128)

    @Test("the GGUF form round-trips: general.type, datasets, chunk counts, NAME.in_sum2 [experts, columns], NAME.counts")
    func ggufRoundTrip() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("m.imatrix.gguf")
        try Self.sample.write(to: url, overwrite: false)
        let reader = try GGUFReader(url: url)
        #expect(reader.value(forKey: "general.type") == .string("imatrix"))
        #expect(reader.value(forKey: "imatrix.chunk_count") == .uint32(3))
        #expect(reader.value(forKey: "imatrix.chunk_size") == .uint32(128))
        #expect(reader.tensors.map(\.name) == [
            "blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
            "blk.0.ffn_down.weight.in_sum2", "blk.0.ffn_down.weight.counts",
        ])
        #expect(reader.entry(named: "blk.0.ffn_down.weight.in_sum2")?.ne == [3, 2])
        #expect(reader.entry(named: "blk.0.ffn_down.weight.counts")?.ne == [1, 2])
        #expect(try ImportanceMatrix(contentsOf: url) == Self.sample)
    }

    @Test("the mean square per column pools the experts: Σ sums / Σ counts")
    func meanSquares() {
        #expect(Self.sample.entries["blk.0.attn_q.weight"]!.meanSquares == [1, 2, 3])
        #expect(Self.sample.entries["blk.0.ffn_down.weight"]!.meanSquares == [5.0 / 3, 7.0 / 3, 3])
        #expect(ImportanceMatrix.Entry(sumOfSquares: [1, 1], counts: [0]).meanSquares == [0, 0])
    }

    /// The legacy layout, little-endian: count; per entry name length, name, ncall, value count,
    /// values (mean · ncall); chunk count; dataset length and name.
    static func legacyBytes(entries: [(String, Int32, [Float])], chunks: Int32?, dataset: String?) -> [UInt8] {
        var bytes: [UInt8] = []
        func int32(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        int32(Int32(entries.count))
        for (name, calls, values) in entries {
            int32(Int32(name.utf8.count))
            bytes += Array(name.utf8)
            int32(calls)
            int32(Int32(values.count))
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 } }
        }
        if let chunks { int32(chunks) }
        if let dataset {
            int32(Int32(dataset.utf8.count))
            bytes += Array(dataset.utf8)
        }
        return bytes
    }

    @Test("a legacy .dat file reads with its means exact (values are mean · ncall, counts ncall)")
    func legacy() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("old.dat")
        try Data(Self.legacyBytes(entries: [("blk.1.attn_k.weight", 10, [20, 5])], chunks: 10, dataset: "wiki.txt")).write(to: url)
        let matrix = try ImportanceMatrix(contentsOf: url)
        #expect(matrix.entries["blk.1.attn_k.weight"]?.meanSquares == [2, 0.5])
        #expect(matrix.datasets == ["wiki.txt"])
        #expect(matrix.chunkCount == 10)
    }

    @Test("a legacy file cut anywhere is `truncated` or empty, never a crash")
    func legacyTruncated() throws {
        let dir = try TemporaryDirectory()
        let whole = Self.legacyBytes(entries: [("a.weight", 1, [1, 2, 3])], chunks: 1, dataset: "d")
        let entryEnd = 4 + 4 + 8 + 4 + 4 + 12
        for cut in 0..<entryEnd {
            let url = dir.file("cut\(cut).dat")
            try Data(whole.prefix(cut)).write(to: url)
            #expect(throws: ImportanceMatrixError.self) { try ImportanceMatrix(contentsOf: url) }
        }
        let url = dir.file("huge.dat")
        try Data(Self.legacyBytes(entries: [("a.weight", 1, [1])], chunks: nil, dataset: nil).prefix(4) + [0xff, 0xff, 0xff, 0x7f]).write(to: url)
        #expect(throws: ImportanceMatrixError.self) { try ImportanceMatrix(contentsOf: url) }
    }

    @Test("negative or non-finite values, zero ncall and duplicate names are refused by rule")
    func legacyInvalid() throws {
        let dir = try TemporaryDirectory()
        let cases: [([(String, Int32, [Float])], String)] = [
            ([("a.weight", 1, [-1])], "invalid_entry"),
            ([("a.weight", 1, [.nan])], "invalid_entry"),
            ([("a.weight", 0, [1])], "invalid_entry"),
            ([("a.weight", 1, [1]), ("a.weight", 1, [2])], "duplicate_entry"),
        ]
        for (index, (entries, rule)) in cases.enumerated() {
            let url = dir.file("bad\(index).dat")
            try Data(Self.legacyBytes(entries: entries, chunks: 1, dataset: nil)).write(to: url)
            do {
                _ = try ImportanceMatrix(contentsOf: url)
                Issue.record("case \(index) was accepted")
            } catch let error as ImportanceMatrixError {
                #expect(error.diagnostic.rule == rule)
                #expect(error.diagnostic.tensor == "a.weight")
            }
        }
    }

    @Test("a GGUF model is not an importance matrix: `not_importance_matrix`, naming the file")
    func notAnImatrix() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("model.gguf")
        let info = TensorInfo(name: "w", dtype: .f32, shape: [1])
        let writer = try GGUFWriter(url: url, tensors: [.init(info: info, type: .f32)], metadata: [], overwrite: false)
        try writer.write(info, storage: .dense(TensorBytes(copying: [0, 0, 0x80, 0x3f] as [UInt8])))
        try writer.finish()
        do {
            _ = try ImportanceMatrix(contentsOf: url)
            Issue.record("accepted")
        } catch let error as ImportanceMatrixError {
            #expect(error.diagnostic.rule == "not_importance_matrix")
            #expect(error.description.hasPrefix(url.path + ": not_importance_matrix: "))
        }
    }

    @Test("in_sum2 without its counts tensor is an invalid entry")
    func missingCounts() throws {
        let dir = try TemporaryDirectory()
        let url = dir.file("partial.gguf")
        let info = TensorInfo(name: "w.weight.in_sum2", dtype: .f32, shape: [1, 1])
        let writer = try GGUFWriter(
            url: url, tensors: [.init(info: info, type: .f32)], metadata: [("general.type", .string("imatrix"))], overwrite: false)
        try writer.write(info, storage: .dense(TensorBytes(copying: [0, 0, 0x80, 0x3f] as [UInt8])))
        try writer.finish()
        #expect(throws: ImportanceMatrixError.invalidEntry(path: url.path, tensor: "w.weight.in_sum2", detail: "no w.weight.counts tensor beside it")) {
            try ImportanceMatrix(contentsOf: url)
        }
    }
}
