#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QPKCore

/// qpk's named temporary outputs: how they are named, their removal when qpk is interrupted, and
/// the clearing of those a killed run left behind.
///
/// Writers prefer unnamed files (``AtomicOutput`` uses `O_TMPFILE` on Linux), which vanish with
/// the process whatever kills it. Where a name is needed (HDF5, whose library opens files by
/// path; file systems without `O_TMPFILE`), the temporary file is `.<name>.qpk-tmp-<pid>-<random>`
/// beside its destination, and:
/// - it is registered while it exists, and ``removeOnTermination()`` makes SIGINT, SIGTERM and
///   SIGHUP delete every registered file before the process exits (128 + the signal number);
/// - a `kill -9`, a power cut or a crash can still leave it, so every writer first calls
///   ``clearStale(in:)`` on its folder, which deletes the temporary files whose process id no
///   longer names a running process.
public enum TemporaryFiles {
    /// The part of a temporary name between the destination's name and the process id.
    public static let marker = ".qpk-tmp-"

    /// A fresh temporary path for `destination`, in the same folder (so a rename is atomic).
    public static func temporaryURL(for destination: URL) -> URL {
        destination.deletingLastPathComponent().appendingPathComponent(
            ".\(destination.lastPathComponent)\(marker)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    }

    // MARK: Registry

    private static let lock = NSLock()
    nonisolated(unsafe) private static var registered: Set<String> = []
    nonisolated(unsafe) private static var signalSources: [any DispatchSourceSignal] = []

    /// Records that `url` is a temporary output of this process (removed on SIGINT/SIGTERM).
    public static func register(_ url: URL) {
        lock.lock()
        registered.insert(url.path)
        lock.unlock()
    }

    /// Forgets `url` (it was renamed into place or deleted).
    public static func unregister(_ url: URL) {
        lock.lock()
        registered.remove(url.path)
        lock.unlock()
    }

    /// The registered temporary paths.
    static var registeredPaths: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return registered
    }

    /// Deletes every registered temporary output (files and folders).
    public static func removeRegistered() {
        lock.lock()
        let paths = registered
        registered.removeAll()
        lock.unlock()
        for path in paths {
            if unlink(path) != 0 { try? FileManager.default.removeItem(atPath: path) }
        }
    }

    /// Makes SIGINT, SIGTERM and SIGHUP delete the registered temporary outputs, then exit with
    /// status 128 + the signal number (as a shell reports a process killed by it).
    ///
    /// The signals are blocked from their default action and delivered to a dispatch source on its
    /// own queue, so the clean-up runs as ordinary code, not in a signal handler. Call it once, at
    /// start-up (the CLI does); calling it again does nothing.
    public static func removeOnTermination() {
        lock.lock()
        defer { lock.unlock() }
        guard signalSources.isEmpty else { return }
        let queue = DispatchQueue(label: "qpk.termination")
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                removeRegistered()
                _exit(128 + signalNumber)
            }
            source.resume()
            signalSources.append(source)
        }
    }

    // MARK: Stale files

    /// The process id in a temporary name `.<name>.qpk-tmp-<pid>-<random>`, or `nil` when `name`
    /// is not one.
    public static func ownerProcess(ofTemporaryName name: String) -> Int32? {
        guard name.hasPrefix("."), let range = name.range(of: marker, options: .backwards) else { return nil }
        let rest = name[range.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
        guard rest.count == 2, let pid = Int32(rest[0]), pid > 0, UInt32(rest[1]) != nil else { return nil }
        return pid
    }

    /// Whether a process with id `pid` exists (`kill(pid, 0)`; EPERM means it exists but is
    /// someone else's).
    static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// Deletes the temporary outputs in `folder` whose owning process no longer exists, and
    /// returns their names. Files of running processes (another qpk writing beside us) are kept;
    /// a process id reused by an unrelated process only delays the clean-up to a later run.
    @discardableResult
    public static func clearStale(in folder: URL) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return [] }
        var cleared: [String] = []
        for name in names {
            guard let pid = ownerProcess(ofTemporaryName: name), pid != getpid(), !processExists(pid) else { continue }
            let path = folder.appendingPathComponent(name).path
            if unlink(path) == 0 || (try? FileManager.default.removeItem(atPath: path)) != nil { cleared.append(name) }
        }
        return cleared
    }
}
