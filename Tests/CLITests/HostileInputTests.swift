import Foundation
import Testing

/// Hostile files (fixtures/hostile, written by fixtures/gen_hostile.py; Fuzz/Regressions, found by
/// the fuzzers) through the real binary: every command answers with one line naming the file and
/// the right exit code, and never crashes or hangs (a run that outlives its deadline is killed
/// and fails the test).
@Suite("qpk on hostile input", .serialized)
struct HostileInputTests {
    static let hostile = QpkProcess.repositoryRoot.appendingPathComponent("fixtures/hostile")
    /// libhdf5 1.10.8 dies with SIGSEGV (memcpy) on this one.
    static let crashing = hostile.appendingPathComponent("hdf5_gheap_size_huge.h5").path
    /// libhdf5 1.10.8 loops forever on this one.
    static let hanging = hostile.appendingPathComponent("hdf5_gheap_size_zero.h5").path
    /// A short stall limit keeps the hang tests quick; one test below uses the default.
    static let quickStall = ["QPK_HDF5_STALL_SECONDS": "2"]

    /// Every command on `file`: one line naming it, and the command's exit code for invalid input.
    private func expectOneLineRejection(_ file: String, environment: [String: String] = [:]) throws {
        let dir = try TemporaryDirectory()
        let output = dir.path("out.safetensors")
        let valid = QpkProcess.repositoryRoot.appendingPathComponent("fixtures/hdf5/keras2_weights.h5").path
        let cases: [(arguments: [String], status: Int32)] = [
            (["validate", file], 1),
            (["inspect", file], 1),
            (["inspect", file, "--stats"], 1),
            (["convert", file, output], 1),
            (["diff", valid, file], 1),
        ]
        for (arguments, status) in cases {
            let result = try HostileProcess.run(arguments, environment: environment, deadline: 60)
            let command = arguments.joined(separator: " ")
            #expect(!result.timedOut, "\(command): still running after 60 s")
            #expect(result.status == status, "\(command): exit \(result.status), stderr: \(result.stderr)")
            // validate reports on stdout; the other commands print one error line on stderr.
            let report = arguments[0] == "validate" ? result.stdout : result.stderr
            let lines = report.split(separator: "\n")
            #expect(lines.count == 1, "\(command): \(report)")
            #expect(lines.first?.contains(file) == true, "\(command): \(report)")
            #expect(lines.first?.contains("HDF5 worker process") == true, "\(command): \(report)")
            if arguments[0] != "validate" { #expect(result.stdout.isEmpty, "\(command): \(result.stdout)") }
        }
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path).isEmpty)
    }

    @Test("a global heap object with a huge size (SIGSEGV in libhdf5 1.10.8) is one line in every command")
    func heapObjectTooLarge() throws {
        try expectOneLineRejection(Self.crashing)
        let result = try HostileProcess.run(["validate", Self.crashing], deadline: 60)
        #expect(result.stdout.contains("crashed (SIGSEGV)"))
    }

    @Test("a global heap object of size 0 (endless loop in libhdf5 1.10.8) is one line in every command")
    func heapObjectOfSizeZero() throws {
        try expectOneLineRejection(Self.hanging, environment: Self.quickStall)
        let result = try HostileProcess.run(["inspect", Self.hanging], environment: Self.quickStall, deadline: 60)
        #expect(result.stderr.contains("no progress for 2 s"))
    }

    @Test("every HDF5 file the fuzzer found crashing or hanging libhdf5 is invalid, reported, in bounded time")
    func fuzzerRegressions() throws {
        let directory = QpkProcess.repositoryRoot.appendingPathComponent("Fuzz/Regressions/hdf5")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".h5") }.sorted()
        #expect(files.count >= 8)
        for name in files {
            let file = directory.appendingPathComponent(name).path
            let validate = try HostileProcess.run(["validate", file], environment: ["QPK_HDF5_STALL_SECONDS": "3"], deadline: 60)
            #expect(!validate.timedOut, "\(name)")
            #expect(validate.status == 1, "\(name): exit \(validate.status) \(validate.stderr)")
            let lines = validate.stdout.split(separator: "\n")
            #expect(!lines.isEmpty && lines.allSatisfy { $0.contains(file) }, "\(name): \(validate.stdout)")
            let stats = try HostileProcess.run(["inspect", file, "--stats"], environment: ["QPK_HDF5_STALL_SECONDS": "3"], deadline: 60)
            #expect(!stats.timedOut, "\(name)")
            #expect(stats.status == 0 || stats.status == 1, "\(name): exit \(stats.status)")
            if stats.status == 1 { #expect(stats.stderr.split(separator: "\n").count == 1, "\(name): \(stats.stderr)") }
        }
    }

    @Test("the default stall limit stops the endless loop within seconds")
    func defaultStallLimit() throws {
        let started = Date()
        let result = try HostileProcess.run(["validate", Self.hanging], deadline: 60)
        #expect(!result.timedOut)
        #expect(result.status == 1)
        #expect(result.stdout.contains("no progress for 10 s"))
        #expect(Date().timeIntervalSince(started) < 30)
    }

    @Test("a valid HDF5 file still reads, converts and validates through the worker")
    func validFileUnaffected() throws {
        let valid = QpkProcess.repositoryRoot.appendingPathComponent("fixtures/hdf5/keras3.weights.h5").path
        let dir = try TemporaryDirectory()
        let output = dir.path("out.safetensors")
        for arguments in [["validate", valid], ["inspect", valid, "--stats"], ["convert", valid, output], ["diff", valid, output]] {
            let result = try HostileProcess.run(arguments, deadline: 60)
            #expect(result.status == 0, "\(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }

    @Test("the hidden worker subcommand is not listed in help")
    func workerHidden() throws {
        let result = try HostileProcess.run(["--help"], deadline: 60)
        #expect(result.status == 0)
        #expect(!result.stdout.contains("__hdf5-worker"))
    }
}

/// Runs the real `qpk` binary (``QpkProcess/binary``) with a deadline: a run still going after
/// `deadline` seconds is killed (SIGKILL) and reported as timed out.
enum HostileProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var timedOut: Bool
    }

    static func run(_ arguments: [String], environment: [String: String] = [:], deadline: TimeInterval) throws -> Result {
        let process = Process()
        process.executableURL = QpkProcess.binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let dir = try TemporaryDirectory()
        let outURL = dir.url.appendingPathComponent("stdout"), errURL = dir.url.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let end = Date().addingTimeInterval(deadline)
        var timedOut = false
        while process.isRunning {
            if Date() > end {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self),
            timedOut: timedOut)
    }
}
