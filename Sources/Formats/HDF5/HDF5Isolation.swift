#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Keeps libhdf5's crashes and hangs on hostile files out of the calling process.
///
/// libhdf5 1.10.8 (Debian 12's) dies with SIGSEGV on some corrupt files and loops forever on
/// others, where newer HDF5 releases report an error (spec/hdf5-mapping.md, "Hostile input").
/// No check in front of the library can cover defects nobody has found yet, so when isolation is
/// configured every HDF5 file is first processed by a *worker process* that runs exactly the
/// code the reader is about to run in-process. Only when the worker survives does the calling
/// process touch the file; a worker that dies becomes ``HDF5Error/libraryCrashed(file:signal:step:)``
/// and one that stops making progress is killed and becomes ``HDF5Error/libraryHung(file:seconds:step:)``.
///
/// Two levels are checked, each at most once per file version (path, device, inode, size and
/// modification time) in a process:
/// - ``Level/structure``: opening the file and walking its tree and attributes (what
///   ``HDF5Reader/init(url:)`` does). Cheap: no dataset data is read.
/// - ``Level/data``: also reading every tensor dataset to the end, in the same slabs
///   ``HDF5Reader/storage(of:)`` uses. ``HDF5Reader/validate(url:)`` takes its problems straight
///   from the worker, so validating reads the data once; the first `storage(of:)` call of a
///   reader waits for it.
///
/// The qpk executable turns isolation on at start-up (its hidden `__hdf5-worker` subcommand hosts
/// ``HDF5Worker``). A library user can do the same with any qpk binary, or host ``HDF5Worker`` in
/// their own executable; without a configured worker the reader runs libhdf5 in-process, as
/// before.
public enum HDF5Isolation {
    /// How deep a worker goes into a file; see ``HDF5Isolation``.
    public enum Level: String, Sendable, Comparable {
        case structure
        case data

        public static func < (lhs: Level, rhs: Level) -> Bool { lhs == .structure && rhs == .data }
    }

    /// The worker process configuration.
    public struct Worker: Sendable, Equatable {
        /// The executable to start.
        public var executable: URL
        /// Arguments before the worker's own (`LEVEL PATH`), e.g. `["__hdf5-worker"]`.
        public var arguments: [String]
        /// A worker that reports no progress for this long is killed (it reports after every
        /// object of the tree and every slab of data, so this bounds one libhdf5 call, not a file).
        public var stallSeconds: Double
        /// The worker's address-space limit (`RLIMIT_AS`), so a declared multi-terabyte
        /// allocation fails inside the worker instead of swapping the machine to death.
        public var memoryLimitBytes: UInt64

        public init(
            executable: URL, arguments: [String], stallSeconds: Double = 10,
            memoryLimitBytes: UInt64 = Worker.defaultMemoryLimit
        ) {
            self.executable = executable
            self.arguments = arguments
            self.stallSeconds = stallSeconds
            self.memoryLimitBytes = memoryLimitBytes
        }

        /// This machine's physical memory, at least 4 GiB.
        public static var defaultMemoryLimit: UInt64 { max(4 << 30, ProcessInfo.processInfo.physicalMemory) }

        /// The running executable itself (`/proc/self/exe`) with `arguments`: for programs that
        /// host ``HDF5Worker`` behind a subcommand, like qpk. `QPK_HDF5_STALL_SECONDS` in the
        /// environment overrides the stall limit.
        public static func currentExecutable(arguments: [String]) -> Worker {
            var worker = Worker(executable: URL(fileURLWithPath: "/proc/self/exe"), arguments: arguments)
            if let text = ProcessInfo.processInfo.environment["QPK_HDF5_STALL_SECONDS"],
               let seconds = Double(text), seconds > 0 {
                worker.stallSeconds = seconds
            }
            return worker
        }
    }

    private static let state = IsolationState()

    /// Turns isolation on (`worker`) or off (`nil`, the default) for this process.
    public static func configure(_ worker: Worker?) {
        state.withLock { $0.worker = worker; $0.outcomes = [:] }
    }

    /// The configured worker, if any.
    public static var worker: Worker? { state.withLock { $0.worker } }

    /// Makes sure the worker survived `level` on `url` (running it if this file version has not
    /// been checked yet) and returns the problems it reported (only ``Level/data`` reports any).
    /// Returns `nil` when isolation is off.
    /// - Throws: ``HDF5Error/libraryCrashed(file:signal:step:)``, ``HDF5Error/libraryHung(file:seconds:step:)``
    ///   or ``HDF5Error/workerUnavailable(file:reason:)``.
    static func check(_ url: URL, level: Level) throws -> [HDF5Problem]? {
        guard let worker = Self.worker else { return nil }
        let key = FileVersion(url)
        if let known = state.withLock({ $0.outcomes[key] }) {
            switch known {
            case let .failed(error): throw error
            case let .survived(checked, problems) where checked >= level: return problems
            case .survived: break
            }
        }
        let outcome = HDF5WorkerProcess.run(worker, level: level, path: url.path)
        state.withLock { $0.outcomes[key] = outcome }
        switch outcome {
        case let .failed(error): throw error
        case let .survived(_, problems): return problems
        }
    }
}

/// What a worker run established about one file version.
enum HDF5WorkerOutcome: Sendable {
    /// The worker finished `level` and reported `problems`.
    case survived(HDF5Isolation.Level, [HDF5Problem])
    case failed(HDF5Error)
}

/// A file's identity for the outcome cache: a changed file is checked again.
struct FileVersion: Hashable, Sendable {
    var path: String
    var device: UInt64 = 0
    var inode: UInt64 = 0
    var size: Int64 = -1
    var modified: Int64 = 0
    var modifiedNanoseconds: Int64 = 0

    init(_ url: URL) {
        path = url.standardizedFileURL.path
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
    }
}

/// The process-wide isolation settings and outcome cache, behind a lock.
private final class IsolationState: @unchecked Sendable {
    struct Contents {
        var worker: HDF5Isolation.Worker?
        var outcomes: [FileVersion: HDF5WorkerOutcome] = [:]
    }

    private let lock = NSLock()
    private var contents = Contents()

    func withLock<T>(_ body: (inout Contents) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&contents)
    }
}
