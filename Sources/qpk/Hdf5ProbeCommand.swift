import ArgumentParser
import Formats
import Foundation

/// The hidden `__hdf5-worker` subcommand: the worker process of ``HDF5Isolation``.
///
/// Every qpk command reads HDF5 through a worker that is this same binary started again with
/// `__hdf5-worker LEVEL MEMORY_LIMIT_BYTES PATH`, so a file that crashes or hangs libhdf5 ends
/// the worker, not the command (spec/hdf5-mapping.md, "Hostile input").
struct Hdf5ProbeCommand: ParsableCommand {
    static let name = "__hdf5-worker"

    static let configuration = CommandConfiguration(
        commandName: name, abstract: "Internal: the isolated libhdf5 worker.", shouldDisplay: false)

    @Argument(parsing: .captureForPassthrough)
    var arguments: [String] = []

    func run() throws {
        Foundation.exit(HDF5Worker.main(arguments))
    }

    /// Routes every HDF5 file this process opens through the worker, unless
    /// `QPK_HDF5_ISOLATION=off` asks for in-process libhdf5 (trusted files; measurements).
    static func enableIsolation() {
        guard ProcessInfo.processInfo.environment["QPK_HDF5_ISOLATION"] != "off" else { return }
        HDF5Isolation.configure(.currentExecutable(arguments: [name]))
    }
}
