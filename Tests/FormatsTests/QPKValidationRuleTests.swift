import Foundation
import Testing
@testable import Formats
import QPKCore

/// One test per validation rule of `spec/qpk-format.md` §8: a valid sample file is edited to
/// break exactly that rule (with every checksum re-sealed, so no earlier rule fires).
@Suite("QPK: every validation rule has a named error")
struct QPKValidationRuleTests {
    let dir: QPKTempDirectory
    let url: URL

    init() throws {
        dir = try QPKTempDirectory()
        url = dir.file("sample.qpk")
        try QPKFixture.writeSample(url)
    }

    private func expectOpen(_ expected: QPKError, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(QPKFixture.openError(url) == expected, sourceLocation: sourceLocation)
        let problems = QPKReader.validate(url: url)
        #expect(problems.first?.error == expected, sourceLocation: sourceLocation)
        #expect(problems.first?.rule == expected.rule, sourceLocation: sourceLocation)
    }

    private func openRule(sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        QPKFixture.openError(url)?.rule
    }

    @Test("1 file_too_small: fewer than 64 bytes")
    func fileTooSmall() throws {
        try Data(QPKLayout.magic + [1, 0, 0, 0]).write(to: url)
        expectOpen(.fileTooSmall(path: url.path, size: 12))
    }

    @Test("2 bad_magic: the first 8 bytes are not the QPK magic")
    func badMagic() throws {
        try QPKFixture.editPreamble(url, sealed: false) { $0[3] = UInt8(ascii: "X") }
        expectOpen(.badMagic(path: url.path))
    }

    @Test("3 unsupported_version: version 3")
    func unsupportedVersion() throws {
        try QPKFixture.editPreamble(url) { $0[8] = 3 }
        expectOpen(.unsupportedVersion(path: url.path, version: 3))
    }

    @Test("4 reserved_not_zero: flags or a reserved byte set")
    func reservedNotZero() throws {
        try QPKFixture.editPreamble(url) { $0[12] = 1 }
        expectOpen(.reservedNotZero(path: url.path))
        try QPKFixture.writeSample(url)
        try QPKFixture.editPreamble(url) { $0[50] = 1 }
        expectOpen(.reservedNotZero(path: url.path))
    }

    @Test("5 preamble_checksum: a preamble byte changed without re-sealing")
    func preambleChecksum() throws {
        try QPKFixture.editPreamble(url, sealed: false) { $0[40] = 7 }
        #expect(openRule() == "preamble_checksum")
        guard case .preambleChecksumMismatch = QPKFixture.openError(url) else {
            Issue.record("expected preambleChecksumMismatch")
            return
        }
    }

    @Test("6 header_misplaced: unaligned, too early, empty or oversized header")
    func headerMisplaced() throws {
        for (offset, length) in [(65, 10), (0, 10), (64, 0), (64, 1 << 29)] as [(UInt64, UInt64)] {
            try QPKFixture.writeSample(url)
            try QPKFixture.editPreamble(url) {
                QPKFixture.putU64(offset, into: &$0, at: 16)
                QPKFixture.putU64(length, into: &$0, at: 24)
            }
            expectOpen(.headerMisplaced(path: url.path, offset: offset, length: length))
        }
    }

    @Test("7 truncated: the header runs past the end of the file, or its end overflows")
    func truncated() throws {
        let size = try Data(contentsOf: url).count
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(size - 1))
        try handle.close()
        expectOpen(.truncated(path: url.path, needed: UInt64(size), size: size - 1))
        try QPKFixture.writeSample(url)
        try QPKFixture.editPreamble(url) { QPKFixture.putU64(UInt64.max - 63, into: &$0, at: 16) }
        expectOpen(.truncated(path: url.path, needed: .max, size: size))
    }

    @Test("8 trailing_bytes: data after the header")
    func trailingBytes() throws {
        let size = try Data(contentsOf: url).count
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([0]))
        try handle.close()
        expectOpen(.trailingBytes(path: url.path, expected: UInt64(size), size: size + 1))
    }

    @Test("9 header_checksum: a header byte changed")
    func headerChecksum() throws {
        let bytes = try [UInt8](Data(contentsOf: url))
        try QPKFixture.flipByte(url, at: QPKFixture.preamble(bytes).headerOffset + 5)
        #expect(openRule() == "header_checksum")
    }

    @Test("10 invalid_header: not JSON, not UTF-8, missing keys, wrong format, wrong types")
    func invalidHeader() throws {
        let bad: [[UInt8]] = [
            Array("not json".utf8), [0xFF, 0xFE, 0x7B, 0x7D], [0xEF, 0xBB, 0xBF] + Array("{}".utf8), Array("[1,2]".utf8),
        ]
        for header in bad {
            try QPKFixture.writeSample(url)
            try QPKFixture.replaceHeader(url, with: header)
            #expect(openRule() == "invalid_header", "\(header)")
        }
        let edits: [(inout [String: Any]) -> Void] = [
            { $0["tensors"] = nil },
            { $0["format"] = "gguf" },
            { $0["version"] = 2 },
            { $0["metadata"] = ["n": 1] },
            { $0["provenance"] = "someone" },
            { $0["outliers"] = nil },
        ]
        for edit in edits {
            try QPKFixture.writeSample(url)
            try QPKFixture.editHeader(url, edit)
            guard case .invalidHeader = QPKFixture.openError(url) else {
                Issue.record("expected invalidHeader, got \(String(describing: QPKFixture.openError(url)))")
                continue
            }
        }
    }

    @Test("10a duplicate_key: a key twice in one object, at the top level or nested")
    func duplicateKey() throws {
        let original = try [UInt8](Data(contentsOf: url))
        let headerOffset = QPKFixture.preamble(original).headerOffset
        let header = String(decoding: original[headerOffset...], as: UTF8.self)
        // A second, empty "tensors" at the end: Foundation would keep the first, Python the last.
        try QPKFixture.replaceHeader(url, with: Array((header.dropLast() + #","tensors":[]}"#).utf8))
        expectOpen(.duplicateKey(path: url.path, key: "tensors"))
        // A duplicate inside a blob reference.
        try QPKFixture.writeSample(url)
        let nested = header.replacingOccurrences(of: #""crc32":"#, with: #""length":0,"crc32":"#)
        try QPKFixture.replaceHeader(url, with: Array(nested.utf8))
        expectOpen(.duplicateKey(path: url.path, key: "length"))
        #expect(QPKError.duplicateKey(path: "f", key: "k").rule == "duplicate_key")
    }

    @Test("11 duplicate_tensor: two tensors share a name")
    func duplicateTensor() throws {
        try QPKFixture.editTensor(url, "c") { $0["name"] = "b" }
        expectOpen(.duplicateTensor(path: url.path, tensor: "b"))
    }

    @Test("12 unknown_dtype")
    func unknownDType() throws {
        try QPKFixture.editTensor(url, "b") { $0["dtype"] = "F33" }
        expectOpen(.unknownDType(path: url.path, tensor: "b", dtype: "F33"))
    }

    @Test("13 invalid_shape: a negative dimension, an overflowing count, a partial byte")
    func invalidShape() throws {
        for shape in [[-1, 3], [Int.max / 2, 4], [3]] {
            try QPKFixture.writeSample(url)
            try QPKFixture.editTensor(url, "b") {
                $0["shape"] = shape
                if shape == [3] { $0["dtype"] = "F4" }
            }
            #expect(openRule() == "invalid_shape", "\(shape)")
            #expect(QPKFixture.openError(url)?.tensor == "b")
        }
    }

    @Test("14 unknown_encoding")
    func unknownEncoding() throws {
        try QPKFixture.editTensor(url, "w") { $0["encoding"] = "lut" }
        expectOpen(.unknownEncoding(path: url.path, tensor: "w", encoding: "lut"))
    }

    @Test("15 invalid_quantization: bits, group size, axis, scheme, dtype, missing object")
    func invalidQuantization() throws {
        let edits: [(inout [String: Any]) -> Void] = [
            { t in var q = t["quantization"] as! [String: Any]; q["bits"] = 5; t["quantization"] = q },
            { t in var q = t["quantization"] as! [String: Any]; q["group_size"] = 0; t["quantization"] = q },
            { t in var q = t["quantization"] as! [String: Any]; q["axis"] = 1; t["quantization"] = q },
            { t in var q = t["quantization"] as! [String: Any]; q["scheme"] = "nf4"; t["quantization"] = q },
            { t in t["dtype"] = "I32" },
            { t in t["quantization"] = nil },
        ]
        for edit in edits {
            try QPKFixture.writeSample(url)
            try QPKFixture.editTensor(url, "w", edit)
            #expect(openRule() == "invalid_quantization")
            #expect(QPKFixture.openError(url)?.tensor == "w")
        }
    }

    @Test("16 blob_set: a required blob missing, or an unexpected one")
    func blobSet() throws {
        try QPKFixture.editTensor(url, "w") { t in var b = t["blobs"] as! [String: Any]; b["zeros"] = nil; t["blobs"] = b }
        #expect(openRule() == "blob_set")
        try QPKFixture.writeSample(url)
        try QPKFixture.editTensor(url, "b") { t in
            var b = t["blobs"] as! [String: Any]; b["codes"] = b["data"]; t["blobs"] = b
        }
        #expect(openRule() == "blob_set")
        #expect(QPKFixture.openError(url)?.tensor == "b")
    }

    private func editBlob(_ tensor: String, _ kind: String, _ edit: @escaping (inout [String: Any]) -> Void) throws {
        try QPKFixture.editTensor(url, tensor) { t in
            var blobs = t["blobs"] as! [String: [String: Any]]
            edit(&blobs[kind]!)
            t["blobs"] = blobs
        }
    }

    @Test("17 blob_misaligned: an offset that is not a multiple of 64")
    func blobMisaligned() throws {
        let (offset, _) = try QPKFixture.blob(url, "w", "scales")
        try editBlob("w", "scales") { $0["offset"] = offset + 2 }
        expectOpen(.blobMisaligned(path: url.path, tensor: "w", blob: "scales", offset: offset + 2))
    }

    @Test("18 blob_out_of_bounds: into the preamble, past the header, overflowing, negative")
    func blobOutOfBounds() throws {
        let headerOffset = QPKFixture.preamble(try [UInt8](Data(contentsOf: url))).headerOffset
        for offset in [0, headerOffset, Int.max - 63, -64] {
            try QPKFixture.writeSample(url)
            try editBlob("b", "data") { $0["offset"] = offset }
            #expect(openRule() == "blob_out_of_bounds", "\(offset)")
            #expect(QPKFixture.openError(url)?.tensor == "b")
        }
    }

    @Test("19 blob_overlap: two tensors pointing at the same bytes")
    func blobOverlap() throws {
        let (offset, _) = try QPKFixture.blob(url, "b", "data")
        try editBlob("c", "data") { $0["offset"] = offset }
        expectOpen(.blobOverlap(path: url.path, tensor: "c", blob: "data", otherTensor: "b", otherBlob: "data"))
    }

    @Test("20 blob_length: a length that differs from the shape and encoding")
    func blobLength() throws {
        try editBlob("w", "codes") { $0["length"] = 19 }
        expectOpen(.blobLengthMismatch(path: url.path, tensor: "w", blob: "codes", expected: 20, found: 19))
    }

    @Test("21 invalid_outlier_record: unknown kind, negative or excessive count, wrong totals")
    func invalidOutlierRecord() throws {
        let edits: [(inout [String: Any]) -> Void] = [
            { t in var o = t["outliers"] as! [String: Any]; o["kind"] = "diagonal"; t["outliers"] = o },
            { t in var o = t["outliers"] as! [String: Any]; o["count"] = -1; t["outliers"] = o },
            { t in var o = t["outliers"] as! [String: Any]; o["count"] = 41; t["outliers"] = o },
        ]
        for edit in edits {
            try QPKFixture.writeSample(url)
            try QPKFixture.editTensor(url, "w", edit)
            #expect(openRule() == "invalid_outlier_record")
            #expect(QPKFixture.openError(url)?.tensor == "w")
        }
        try QPKFixture.writeSample(url)
        try QPKFixture.editHeader(url) { $0["outliers"] = ["parameters": 4, "quantized_parameters": 56] }
        guard case .outlierTotalsMismatch = QPKFixture.openError(url) else {
            Issue.record("expected outlierTotalsMismatch")
            return
        }
    }

    @Test("22 blob_checksum: a changed byte in a blob is reported by tensor and blob")
    func blobChecksum() throws {
        let (offset, _) = try QPKFixture.blob(url, "w", "zeros")
        try QPKFixture.flipByte(url, at: offset + 1)
        let reader = try QPKReader(url: url)
        let problems = reader.validate()
        #expect(problems.count == 1)
        #expect(problems.first?.tensor == "w")
        #expect(problems.first?.rule == "blob_checksum")
        #expect(problems.first?.message.contains("blob 'zeros'") == true)
        #expect(throws: QPKError.self) { try reader.storage(of: reader.tensor(named: "w")!) }
        #expect(throws: Never.self) { try reader.storage(of: reader.tensor(named: "b")!) }
    }

    @Test("23 outlier_indices: indices that repeat, decrease or leave the tensor")
    func outlierIndices() throws {
        for bad: UInt32 in [0, 40, 1_000_000] {
            try QPKFixture.writeSample(url)
            try QPKFixture.rewriteBlob(url, "w", "outlier_indices") { bytes in
                // Make the last index `bad`: ≤ its predecessor for 0, out of range for 40 and up.
                QPKFixture.putU32(bad, into: &bytes, at: bytes.count - 4)
            }
            let reader = try QPKReader(url: url)
            #expect(reader.validate().map(\.rule) == ["outlier_indices"], "\(bad)")
            #expect(throws: QPKError.self) { try reader.storage(of: reader.tensor(named: "w")!) }
        }
    }

    @Test("24 symmetric_zero_point: a symmetric tensor whose zero-point is not 2^(bits-1)")
    func symmetricZeroPoint() throws {
        try QPKFixture.rewriteBlob(url, "s", "zeros") { bytes in
            bytes[0] = 0x00
            bytes[1] = 0x3C  // fp16 1.0
        }
        let problems = try QPKReader(url: url).validate()
        #expect(problems.map(\.error) == [.symmetricZeroPoint(path: url.path, tensor: "s", found: 1, expected: 4)])
    }

    @Test("25 nonzero_padding: a padding byte between blobs is not zero")
    func nonZeroPadding() throws {
        let (offset, length) = try QPKFixture.blob(url, "b", "data")
        try QPKFixture.flipByte(url, at: offset + length)
        let problems = try QPKReader(url: url).validate()
        #expect(problems.map(\.error) == [.nonZeroPadding(path: url.path, offset: offset + length)])
    }

    @Test("structural problems in several tensors are all reported by validate(url:)")
    func severalProblems() throws {
        try QPKFixture.editHeader(url) { header in
            var tensors = header["tensors"] as! [[String: Any]]
            tensors[0]["dtype"] = "X"
            tensors[1]["encoding"] = "Y"
            header["tensors"] = tensors
        }
        #expect(QPKReader.validate(url: url).map(\.rule) == ["unknown_dtype", "unknown_encoding"])
        #expect(QPKReader.validate(url: dir.file("absent.qpk")).count == 1)
    }

    @Test("every error description is one line naming the file and the rule")
    func descriptions() throws {
        let errors: [QPKError] = [
            .fileTooSmall(path: "f", size: 1), .truncated(path: "f", needed: 9, size: 3),
            .blobChecksumMismatch(path: "f", tensor: "t", blob: "codes", stored: 1, computed: 2),
            .tensorsNotWritten(path: "f", tensors: ["a"]),
        ]
        for error in errors {
            #expect(!error.description.contains("\n"))
            #expect(error.description.hasPrefix("f: "))
            #expect(error.description.contains(": \(error.rule): "))
            #expect(error.diagnostic.rule == error.rule && error.diagnostic.file == "f")
        }
        #expect(QPKError.blobChecksumMismatch(path: "f", tensor: "t", blob: "codes", stored: 1, computed: 2).description
            .contains("tensor 't'"))
    }
}
