import Foundation
import Testing
@testable import Formats
import QPKCore

@Suite("AtomicOutput: temporary file, buffered appends, rename on commit")
struct AtomicOutputTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("small, large and buffered appends land at their positions, in order")
    func mixedAppends() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let destination = dir.appendingPathComponent("out.bin")
        let output = try AtomicOutput(destination: destination, overwrite: false)
        var expected: [UInt8] = []
        // Sizes chosen to cross the 1 MiB buffer in every way: below, straddling and above it.
        for (index, size) in [10, 700_000, 500_000, 3_000_000, 1, 1_048_576, 64].enumerated() {
            let chunk = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            try output.append(chunk)
            expected += chunk
            #expect(output.position == expected.count)
        }
        try output.pad(toMultipleOf: 64)
        expected += [UInt8](repeating: 0, count: (64 - expected.count % 64) % 64)
        let patch: [UInt8] = [1, 2, 3, 4]
        try patch.withUnsafeBytes { try output.write(at: 5, $0) }
        expected.replaceSubrange(5..<9, with: patch)
        try output.commit()
        #expect(try Data(contentsOf: destination) == Data(expected))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.bin"])
    }

    @Test("an uncommitted output leaves nothing; an existing file needs overwrite")
    func dropAndRefuse() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let destination = dir.appendingPathComponent("out.bin")
        do {
            let output = try AtomicOutput(destination: destination, overwrite: false)
            try output.append([1, 2, 3])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        try Data([9]).write(to: destination)
        #expect(throws: FileAccessError.alreadyExists(destination.path)) {
            _ = try AtomicOutput(destination: destination, overwrite: false)
        }
        let replacing = try AtomicOutput(destination: destination, overwrite: true)
        try replacing.append([7])
        try replacing.commit()
        #expect(try Data(contentsOf: destination) == Data([7]))
    }
}
