#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The calling side of ``HDF5Isolation``: starts one worker, watches its progress and turns its
/// fate into an ``HDF5WorkerOutcome``.
///
/// The worker is started with `posix_spawn` (no fork of this possibly multi-threaded process runs
/// any code but `exec`), its standard output is a pipe and its standard error `/dev/null`. It writes
/// a byte now and then while it works (``HDF5Progress``) and, when done, `=` followed by its
/// problems as JSON and a newline. A worker silent for ``HDF5Isolation/Worker/stallSeconds`` is
/// killed with SIGKILL.
enum HDF5WorkerProcess {
    private static let spawnLock = NSLock()

    static func run(_ worker: HDF5Isolation.Worker, level: HDF5Isolation.Level, path: String) -> HDF5WorkerOutcome {
        let step = level == .structure ? "reading the file's structure" : "reading the datasets"
        // The pipe and the spawn happen under one lock, so a worker started by another thread in
        // between never inherits this worker's pipe before it is marked close-on-exec.
        spawnLock.lock()
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            spawnLock.unlock()
            return .failed(.workerUnavailable(file: path, reason: "pipe: \(String(cString: strerror(errno)))"))
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let arguments = [worker.executable.path] + worker.arguments + [level.rawValue, String(worker.memoryLimitBytes), path]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, worker.executable.path, &actions, nil, &argv, environ)
        close(fds[1])
        spawnLock.unlock()
        defer { close(fds[0]) }
        guard spawned == 0 else {
            return .failed(.workerUnavailable(
                file: path, reason: "\(worker.executable.path): \(String(cString: strerror(spawned)))"))
        }

        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var lastProgress = monotonicSeconds()
        var open = true
        var status: Int32 = 0
        while true {
            if open {
                var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
                let ready = poll(&poller, 1, 200)
                if ready > 0 {
                    let count = read(fds[0], &chunk, chunk.count)
                    if count > 0 {
                        output += chunk[0..<count]
                        lastProgress = monotonicSeconds()
                        continue
                    }
                    if count == 0 || errno != EINTR { open = false }
                } else if ready < 0, errno != EINTR {
                    open = false
                }
            } else {
                let done = waitpid(pid, &status, WNOHANG)
                if done == pid { break }
                if done < 0, errno != EINTR { return .failed(.workerUnavailable(file: path, reason: "waitpid failed")) }
                usleep(20_000)
            }
            if monotonicSeconds() - lastProgress > worker.stallSeconds {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0, errno == EINTR {}
                return .failed(.libraryHung(file: path, seconds: Int(worker.stallSeconds.rounded(.up)), step: step))
            }
        }
        // waitpid's status word: the low 7 bits are the terminating signal, 0 for a normal exit.
        let signal = status & 0x7f
        if signal != 0 { return .failed(.libraryCrashed(file: path, signal: signalName(signal), step: step)) }
        let exitCode = (status >> 8) & 0xff
        guard exitCode == 0, let marker = output.lastIndex(of: UInt8(ascii: "=")),
              let problems = try? JSONDecoder().decode([HDF5Problem].self, from: Data(output[(marker + 1)...]))
        else {
            return .failed(.libraryCrashed(file: path, signal: "exit status \(exitCode)", step: step))
        }
        return .survived(level, problems)
    }

    private static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    private static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGBUS: "SIGBUS"
        case SIGABRT: "SIGABRT"
        case SIGILL: "SIGILL"
        case SIGFPE: "SIGFPE"
        case SIGTRAP: "SIGTRAP"
        case SIGKILL: "SIGKILL, probably out of memory"
        case SIGXCPU: "SIGXCPU"
        default: "signal \(signal)"
        }
    }
}
