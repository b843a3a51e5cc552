#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The worker side of ``HDF5Isolation``: what the worker process runs.
///
/// An executable that hosts the worker (qpk's hidden `__hdf5-worker` subcommand) passes the
/// arguments that follow its own (`LEVEL MEMORY_LIMIT_BYTES PATH`, as ``HDF5WorkerProcess``
/// writes them) to ``main(_:)`` and exits with its result, before doing anything else with HDF5.
public enum HDF5Worker {
    /// Runs the worker and returns the process exit status: 0 when the work finished (whatever
    /// the file's problems, which go to standard output), 2 for bad arguments.
    public static func main(_ arguments: [String]) -> Int32 {
        guard arguments.count == 3, let level = HDF5Isolation.Level(rawValue: arguments[0]),
              let memoryLimit = UInt64(arguments[1])
        else {
            FileHandle.standardError.write(Data("usage: LEVEL(structure|data) MEMORY_LIMIT_BYTES PATH\n".utf8))
            return 2
        }
        HDF5Isolation.configure(nil)
        exitWhenOrphaned()
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore)
        var memory = rlimit(rlim_cur: rlim_t(memoryLimit), rlim_max: rlim_t(memoryLimit))
        _ = setrlimit(Int32(RLIMIT_AS.rawValue), &memory)
        HDF5Progress.enable()

        let url = URL(fileURLWithPath: arguments[2])
        let problems: [HDF5Problem]
        switch level {
        case .structure:
            _ = try? HDF5Reader(inProcess: url)
            problems = []
        case .data:
            problems = HDF5Reader.validateInProcess(url: url)
        }
        var output = Data("=".utf8)
        output.append((try? JSONEncoder().encode(problems)) ?? Data("[]".utf8))
        output.append(Data("\n".utf8))
        HDF5Progress.emit(output)
        return 0
    }
}

extension HDF5Worker {
    /// A worker whose parent is gone (killed with SIGKILL, say) must not loop on forever: a
    /// thread checks once a second whether the worker was re-parented and ends it if so.
    private static func exitWhenOrphaned() {
        let parent = getppid()
        let thread = Thread {
            while true {
                sleep(1)
                if getppid() != parent { _exit(3) }
            }
        }
        thread.start()
    }
}

/// Progress reports from the worker to its watchdog: one byte on standard output at most every
/// half second, from the points where the reader moves to the next object or slab.
enum HDF5Progress {
    nonisolated(unsafe) private static var enabled = false
    nonisolated(unsafe) private static var last: Double = 0

    /// Turns reporting on (worker processes only; call before any other thread exists).
    static func enable() { enabled = true }

    /// Reports that work moved on. Called with the library lock held, so never concurrently.
    static func tick() {
        guard enabled else { return }
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        let now = Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        guard now - last >= 0.5 else { return }
        last = now
        emit(Data(".".utf8))
    }

    static func emit(_ data: Data) {
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 { if errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }
}
