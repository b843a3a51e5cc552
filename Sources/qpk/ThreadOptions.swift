import ArgumentParser
import Formats
import QPKCore

/// `--threads N`, the same option on every command that reads tensors (convert, inspect, diff,
/// validate, calibrate): how many threads qpk's work may use at once. Default: every core the process may
/// use. The thread count never changes a result or an output byte, only the time.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads (default: all cores; at least 1).")
    var threads: Int?

    /// Caps every parallel loop of the process (``Parallel/limitThreads(to:)``) and returns the
    /// thread count the command's own work should use.
    /// - Throws: ``UsageError`` (one line, exit 2) for `--threads 0` or below.
    @discardableResult
    func apply() throws -> Int {
        if let threads { try UsageError.requireCount(threads, atLeast: 1, option: "--threads") }
        Parallel.limitThreads(to: threads)
        return Parallel.coreCount
    }
}
