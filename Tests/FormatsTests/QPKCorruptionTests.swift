import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("QPK: corrupt and truncated files are reported, never crash")
struct QPKCorruptionTests {
    /// A file with one tensor of every blob kind: raw `b`, and `w` with element outliers.
    static func writeAllBlobKinds(_ url: URL) throws {
        try QPKFixture.writeSample(url)
    }

    static let blobs: [(tensor: String, blob: String)] = [
        ("b", "data"), ("w", "codes"), ("w", "scales"), ("w", "zeros"), ("w", "outlier_indices"), ("w", "outlier_values"),
    ]

    @Test("a flipped byte in each kind of blob makes storage(of:) throw and validate() name the tensor and blob",
          arguments: blobs.map { "\($0.tensor).\($0.blob)" })
    func flippedBlobByte(which: String) throws {
        let parts = which.split(separator: ".").map(String.init)
        let (tensor, blob) = (parts[0], parts[1])
        let dir = try QPKTempDirectory()
        let url = dir.file("flip.qpk")
        try Self.writeAllBlobKinds(url)
        let (offset, length) = try QPKFixture.blob(url, tensor, blob)
        try QPKFixture.flipByte(url, at: offset + length / 2)
        let reader = try QPKReader(url: url)
        let info = try #require(reader.tensor(named: tensor))
        var thrown: QPKError?
        do { _ = try reader.storage(of: info) } catch { thrown = error as? QPKError }
        guard case let .blobChecksumMismatch(_, name, blobName, _, _)? = thrown else {
            Issue.record("expected blobChecksumMismatch, got \(String(describing: thrown))")
            return
        }
        #expect(name == tensor)
        #expect(blobName == blob)
        let problems = reader.validate()
        #expect(problems.count == 1)
        #expect(problems.first?.tensor == tensor)
        #expect(problems.first?.rule == "blob_checksum")
        #expect(problems.first?.message.contains("tensor '\(tensor)'") == true)
        // The other tensors still read.
        for other in reader.tensors where other.name != tensor {
            #expect(throws: Never.self) { try reader.storage(of: other) }
        }
    }

    @Test("a flipped byte anywhere in the header is reported as header_checksum")
    func flippedHeaderByte() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("h.qpk")
        try QPKFixture.writeSample(url)
        let original = try Data(contentsOf: url)
        let p = QPKFixture.preamble([UInt8](original))
        for position in stride(from: p.headerOffset, to: p.headerOffset + p.headerLength, by: 37) {
            try original.write(to: url)
            try QPKFixture.flipByte(url, at: position)
            #expect(QPKFixture.openError(url)?.rule == "header_checksum", "byte \(position)")
            #expect(QPKReader.validate(url: url).map(\.rule) == ["header_checksum"])
        }
    }

    @Test("a flipped byte in the preamble is always caught")
    func flippedPreambleByte() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("p.qpk")
        try QPKFixture.writeSample(url)
        let original = try Data(contentsOf: url)
        for position in 0..<64 {
            try original.write(to: url)
            try QPKFixture.flipByte(url, at: position)
            #expect(QPKFixture.openError(url) != nil, "byte \(position)")
        }
    }

    @Test("truncation at every length throws a QPKError and validate reports it")
    func truncationAtEveryLength() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("t.qpk")
        try QPKFixture.writeSample(url)
        let original = try Data(contentsOf: url)
        let cut = dir.file("cut.qpk")
        for length in 0..<original.count {
            try original.prefix(length).write(to: cut)
            let error = QPKFixture.openError(cut)
            #expect(error != nil, "length \(length)")
            if length >= 64 { #expect(error?.rule == "truncated", "length \(length)") }
            #expect(!QPKReader.validate(url: cut).isEmpty)
        }
    }

    @Test("random garbage after a valid preamble never crashes the reader")
    func garbage() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("g.qpk")
        var rng = SplitMix64(seed: 99)
        for _ in 0..<200 {
            let count = Int.random(in: 0..<600, using: &rng)
            var bytes = QPKLayout.magic + (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count >= 64, Bool.random(using: &rng) {
                bytes.replaceSubrange(8..<12, with: [1, 0, 0, 0])
                QPKFixture.fixPreambleCRC(&bytes)
            }
            try Data(bytes).write(to: url)
            #expect(QPKFixture.openError(url) != nil)
        }
    }
}

@Suite("QPKWriter: misuse is refused and leaves nothing behind")
struct QPKWriterMisuseTests {
    let info = TensorInfo(name: "w", dtype: .f32, shape: [2, 8])

    @Test("a tensor that was not announced, or written twice, is refused")
    func notAnnouncedOrTwice() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("m.qpk")
        let writer = try QPKWriter(url: url, tensors: [info], metadata: [:], recipe: [:], provenance: QPKFixture.provenance, overwrite: false)
        let dense = TensorStorage.dense(QPKFixture.floatBytes([Float](repeating: 1, count: 16)))
        #expect(throws: QPKError.tensorNotAnnounced(path: url.path, tensor: "x")) {
            try writer.write(TensorInfo(name: "x", dtype: .f32, shape: [2, 8]), storage: dense)
        }
        #expect(throws: QPKError.tensorNotAnnounced(path: url.path, tensor: "w")) {
            try writer.write(TensorInfo(name: "w", dtype: .f32, shape: [16]), storage: dense)
        }
        try writer.write(info, storage: dense)
        #expect(throws: QPKError.tensorWrittenTwice(path: url.path, tensor: "w")) { try writer.write(info, storage: dense) }
        try writer.finish()
        #expect(throws: QPKError.writerFinished(path: url.path)) { try writer.finish() }
    }

    @Test("finish() with a missing tensor throws and no file appears")
    func missingTensor() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("m.qpk")
        do {
            let writer = try QPKWriter(url: url, tensors: [info], metadata: [:], recipe: [:], provenance: QPKFixture.provenance, overwrite: false)
            #expect(throws: QPKError.tensorsNotWritten(path: url.path, tensors: ["w"])) { try writer.finish() }
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }

    @Test("an existing destination is kept unless overwrite is set")
    func overwrite() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("m.qpk")
        try Data([1]).write(to: url)
        #expect(throws: FileAccessError.alreadyExists(url.path)) {
            _ = try QPKWriter(url: url, tensors: [], metadata: [:], recipe: [:], provenance: QPKFixture.provenance, overwrite: false)
        }
        let writer = try QPKWriter(url: url, tensors: [], metadata: [:], recipe: [:], provenance: QPKFixture.provenance, overwrite: true)
        try writer.finish()
        #expect(try QPKReader(url: url).tensors.isEmpty)
    }

    @Test("duplicate announced names, wrong byte counts and inconsistent quantized data are refused")
    func inconsistentData() throws {
        let dir = try QPKTempDirectory()
        let url = dir.file("m.qpk")
        #expect(throws: QPKError.duplicateTensor(path: url.path, tensor: "w")) {
            _ = try QPKWriter(url: url, tensors: [info, info], metadata: [:], recipe: [:], provenance: QPKFixture.provenance, overwrite: false)
        }
        let writer = try QPKWriter(url: url, tensors: [info], metadata: [:], recipe: [:], provenance: QPKFixture.provenance, overwrite: false)
        func rule(_ storage: TensorStorage) -> String? {
            do { try writer.write(info, storage: storage); return nil } catch { return (error as? QPKError)?.rule }
        }
        #expect(rule(.dense(QPKFixture.floatBytes([1, 2, 3]))) == "invalid_storage")
        let good = QPKReference.quantize(QPKReference.randomValues(16, seed: 3), info: info, bits: 4, groupSize: 8)
        var q = good
        q.codes.removeLast()
        #expect(rule(.quantized(q)) == "invalid_storage")
        q = good
        q.scales.append(1)
        #expect(rule(.quantized(q)) == "invalid_storage")
        q = good
        q.layout.bits = 5
        #expect(rule(.quantized(q)) == "invalid_storage")
        q = good
        q.outliers = OutlierSet(kind: .elements, indices: [3, 2], values: [1, 2], statistic: "s", threshold: 0)
        #expect(rule(.quantized(q)) == "invalid_storage")
        q.outliers = OutlierSet(kind: .rows, indices: [1], values: [1, 2], statistic: "s", threshold: 0)
        #expect(rule(.quantized(q)) == "invalid_storage")
        q.outliers = OutlierSet(kind: .columns, indices: [8], values: [1, 2], statistic: "s", threshold: 0)
        #expect(rule(.quantized(q)) == "invalid_storage")
        q = QPKReference.quantize(QPKReference.randomValues(16, seed: 3), info: info, bits: 4, groupSize: 8, scheme: .symmetric)
        q.zeros[0] = 7
        #expect(rule(.quantized(q)) == "invalid_storage")
        #expect(rule(.quantized(good)) == nil)
    }
}
