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

    @Test("nothing is visible in the folder before commit (unnamed O_TMPFILE data on Linux)")
    func invisibleUntilCommit() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let destination = dir.appendingPathComponent("out.bin")
        let output = try AtomicOutput(destination: destination, overwrite: false)
        try output.append([UInt8](repeating: 7, count: 3_000_000))
        #if os(Linux)
        #expect(output.temporaryURL == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        #endif
        try output.commit()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.bin"])
        #expect(try Data(contentsOf: destination).count == 3_000_000)
    }

    @Test("a file that appears at the destination meanwhile is never clobbered without overwrite")
    func noClobberAtCommit() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let destination = dir.appendingPathComponent("out.bin")
        let output = try AtomicOutput(destination: destination, overwrite: false)
        try output.append([1, 2, 3])
        try Data([9]).write(to: destination)
        #expect(throws: FileAccessError.alreadyExists(destination.path)) { try output.commit() }
        #expect(try Data(contentsOf: destination) == Data([9]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.bin"])
    }

    @Test("a missing folder, or a folder at the destination, is a one-line cannotWrite")
    func badLocations() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("absent/out.bin")
        #expect(throws: FileAccessError.cannotWrite(missing.path, "the folder \(dir.appendingPathComponent("absent").path) does not exist; create it first")) {
            _ = try AtomicOutput(destination: missing, overwrite: false)
        }
        #expect(throws: FileAccessError.cannotWrite(dir.path, "it is a folder; remove it or choose a file name")) {
            _ = try AtomicOutput(destination: dir, overwrite: true)
        }
    }

    @Test("temporary files of dead processes are cleared; those of live ones and other files are kept")
    func staleTemporaryFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A process id that exists (ours' parent) and one that cannot (above pid_max).
        let live = ".a.h5\(TemporaryFiles.marker)\(getppid())-12345"
        let dead = ".b.h5\(TemporaryFiles.marker)99999999-678"
        let mine = ".c.h5\(TemporaryFiles.marker)\(getpid())-9"
        let unrelated = ["notes.txt", ".hidden", ".d.qpk-tmp-abc-1"]
        for name in [live, dead, mine] + unrelated { try Data([1]).write(to: dir.appendingPathComponent(name)) }
        #expect(TemporaryFiles.ownerProcess(ofTemporaryName: dead) == 99_999_999)
        #expect(TemporaryFiles.ownerProcess(ofTemporaryName: "notes.txt") == nil)
        #expect(TemporaryFiles.ownerProcess(ofTemporaryName: ".d.qpk-tmp-abc-1") == nil)
        #expect(TemporaryFiles.clearStale(in: dir) == [dead])
        // Writing an output clears them too (the next run after a kill -9).
        try Data([1]).write(to: dir.appendingPathComponent(dead))
        let output = try AtomicOutput(destination: dir.appendingPathComponent("out.bin"), overwrite: false)
        try output.commit()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            == ([live, mine, "out.bin"] + unrelated).sorted())
    }

    @Test("registered temporary files are removed by removeRegistered (the SIGINT/SIGTERM path)")
    func registeredRemoval() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let temporary = TemporaryFiles.temporaryURL(for: dir.appendingPathComponent("x.h5"))
        #expect(TemporaryFiles.ownerProcess(ofTemporaryName: temporary.lastPathComponent) == getpid())
        try Data([1]).write(to: temporary)
        TemporaryFiles.register(temporary)
        TemporaryFiles.removeRegistered()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}
