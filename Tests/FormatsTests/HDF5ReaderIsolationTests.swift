import Foundation
import Testing
@testable import Formats

/// The watchdog side of ``HDF5Isolation``, driven by stand-in workers written in sh: how a
/// worker's death, silence, progress and report become outcomes. (The real worker, qpk's
/// `__hdf5-worker`, is tested through the binary in Tests/CLITests/HostileInputTests.swift.)
@Suite("HDF5Reader isolation: the worker watchdog")
struct HDF5ReaderIsolationTests {
    /// A worker that runs `script` with `$1 $2 $3` = level, memory limit, path.
    private func shell(_ script: String, stallSeconds: Double = 5) -> HDF5Isolation.Worker {
        HDF5Isolation.Worker(
            executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script, "worker"],
            stallSeconds: stallSeconds, memoryLimitBytes: 1 << 30)
    }

    @Test("a worker killed by a signal is a crash naming the signal and the step")
    func crash() {
        let outcome = HDF5WorkerProcess.run(shell("kill -SEGV $$"), level: .structure, path: "/x/m.h5")
        guard case let .failed(error) = outcome else { Issue.record("\(outcome)"); return }
        #expect(error == .libraryCrashed(file: "/x/m.h5", signal: "SIGSEGV", step: "reading the file's structure"))
        #expect(error.description.hasPrefix("/x/m.h5: library_failure: the isolated HDF5 worker process crashed (SIGSEGV)"))
        #expect(!error.description.contains("\n"))
    }

    @Test("a silent worker is killed after the stall limit and reported as hung")
    func hang() {
        let started = Date()
        let outcome = HDF5WorkerProcess.run(shell("exec sleep 60", stallSeconds: 1), level: .data, path: "/x/m.h5")
        guard case let .failed(error) = outcome else { Issue.record("\(outcome)"); return }
        #expect(error == .libraryHung(file: "/x/m.h5", seconds: 1, step: "reading the datasets"))
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("a worker that keeps reporting progress may take longer than the stall limit")
    func progressKeepsWorkerAlive() {
        let script = "i=0; while [ $i -lt 5 ]; do printf .; sleep 0.4; i=$((i+1)); done; printf '=[]\\n'"
        let outcome = HDF5WorkerProcess.run(shell(script, stallSeconds: 1), level: .data, path: "/x/m.h5")
        guard case let .survived(level, problems) = outcome else { Issue.record("\(outcome)"); return }
        #expect(level == .data)
        #expect(problems.isEmpty)
    }

    @Test("the worker gets level, memory limit and path, and its problems come back decoded")
    func reportedProblems() {
        let script = """
            [ "$1" = data ] && [ "$2" = 1073741824 ] && [ "$3" = "/x/a b.h5" ] || exit 7
            printf '..=[{"file":"/x/a b.h5","dataset":"w","rule":"unreadable","message":"m","hint":"h"}]\\n'
            """
        let outcome = HDF5WorkerProcess.run(shell(script), level: .data, path: "/x/a b.h5")
        guard case let .survived(_, problems) = outcome else { Issue.record("\(outcome)"); return }
        #expect(problems == [HDF5Problem(file: "/x/a b.h5", dataset: "w", rule: .unreadable, message: "m", hint: "h")])
    }

    @Test("a worker that exits without its report counts as crashed")
    func exitWithoutReport() {
        let outcome = HDF5WorkerProcess.run(shell("printf ...; exit 3"), level: .structure, path: "/x/m.h5")
        guard case let .failed(error) = outcome else { Issue.record("\(outcome)"); return }
        #expect(error == .libraryCrashed(file: "/x/m.h5", signal: "exit status 3", step: "reading the file's structure"))
    }

    @Test("a worker executable that does not exist is reported, not silently skipped")
    func missingExecutable() {
        let worker = HDF5Isolation.Worker(executable: URL(fileURLWithPath: "/nonexistent/qpk"), arguments: [])
        let outcome = HDF5WorkerProcess.run(worker, level: .structure, path: "/x/m.h5")
        guard case let .failed(error) = outcome else { Issue.record("\(outcome)"); return }
        guard case .workerUnavailable = error else { Issue.record("\(error)"); return }
        #expect(error.description.contains("/nonexistent/qpk"))
    }

    @Test("without a configured worker the reader runs in-process")
    func offByDefault() throws {
        #expect(HDF5Isolation.worker == nil)
        #expect(try HDF5Isolation.check(HDF5Fixtures.url("keras2_model.h5"), level: .data) == nil)
    }
}
