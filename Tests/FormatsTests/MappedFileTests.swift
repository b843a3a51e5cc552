import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("MappedFile: resident pages are given back once a tensor is done")
struct MappedFileTests {
    /// The process's resident set in bytes (Linux `/proc/self/statm`, second field, in pages).
    func residentBytes() throws -> Int {
        let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        return Int(fields[1])! * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test("releasing a slice drops its pages from the resident set and keeps the data readable")
    func releaseDropsResidentPages() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-mapped-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("data.bin")
        let size = 64 << 20
        try Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: url)
        let file = try MappedFile(url: url)
        // A slice starting mid-page: the first partial page is shared and must be kept.
        let slice = file.slice(100..<size)
        func checksum() -> Int { slice.withUnsafeBytes { raw in stride(from: 0, to: raw.count, by: 4096).reduce(0) { $0 &+ Int(raw[$1]) } } }
        let before = try residentBytes()
        let expected = checksum()
        let touched = try residentBytes()
        #expect(touched - before > size / 2, "reading the mapping made it resident")
        slice.releaseResidentPages()
        let released = try residentBytes()
        #expect(touched - released > size / 2, "resident \(touched) → \(released) after the release")
        #expect(checksum() == expected, "the data read back from the page cache")
        // Owned buffers ignore the request.
        let owned = TensorBytes(copying: [1, 2, 3] as [UInt8])
        owned.releaseResidentPages()
        #expect(owned.withUnsafeBytes { Array($0) } == [1, 2, 3])
    }
}
