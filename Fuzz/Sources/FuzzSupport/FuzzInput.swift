import Foundation
import Formats
import Inspect
import Quantize

/// What every target does with one input: write it to a file in a private RAM-backed directory
/// (the readers take paths and map files, exactly as the CLI does), then open it, read every
/// tensor and run the validator. Any outcome is fine except a crash, a hang or a sanitizer report;
/// readers must report bad bytes as thrown errors or validation problems.
public enum FuzzInput {
    /// A directory private to this process, on tmpfs when there is one.
    /// Directories of processes that died (crashed fork-mode jobs skip `atexit`) are removed.
    public static let directory: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where name.hasPrefix("qpk-fuzz-") {
            if let pid = Int32(name.dropFirst("qpk-fuzz-".count)), kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: base + "/" + name)
            }
        }
        let url = URL(fileURLWithPath: base).appendingPathComponent("qpk-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: FuzzInput.directory) }
        return url
    }()

    /// Writes `data` (size bytes) to `name` inside ``directory`` and returns its URL.
    public static func write(_ data: UnsafePointer<UInt8>, _ size: Int, as name: String) -> URL {
        let url = directory.appendingPathComponent(name)
        try! Data(bytes: data, count: size).write(to: url)
        return url
    }

    /// Opens `url` with the reader for its detected format, reads every tensor (dequantizing
    /// quantized ones, as `convert`, `diff` and `inspect --stats` do), then validates it.
    public static func exercise(_ url: URL) {
        if let reader = try? Checkpoint.open(url) {
            _ = reader.metadata.count
            for tensor in reader.tensors {
                guard let storage = try? reader.storage(of: tensor) else { continue }
                switch storage {
                case let .dense(bytes): _ = bytes.count
                case .quantized:
                    // Bounded so one input cannot allocate gigabytes on purpose.
                    if tensor.elementCount <= 1 << 20 { _ = try? Dequantizer.floats(storage, info: tensor) }
                }
            }
        }
        _ = try? CheckpointValidator.validate(url)
    }
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Starts libFuzzer with this process's arguments. SwiftPM links every executable with `main`
/// aliased to `<Target>_main`, so each target defines that symbol and calls this instead of
/// relying on libFuzzer's own `main`.
public func runFuzzer(
    _ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
    _ test: @escaping @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32 {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return runDriver(&count, &arguments, test)
}
